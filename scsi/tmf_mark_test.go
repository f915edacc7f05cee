package scsi_test

import (
	"testing"

	"github.com/srptgt/srptgt/scsi"
)

// TestTMFScopeIsArrival: SAM-5 7.1 — a task management function affects the
// tasks that arrived before it, never one that arrived later with the same
// tag (a transport runs the function concurrently with newer commands).
func TestTMFScopeIsArrival(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	rel := g.hold("read", off(3))
	defer rel()
	mark := r.n.Mark() // the ABORT TASK for tag 7 arrives here
	late := readCmd(r.lun, 7, 3, scsi.Simple)
	done := launch(r.n, late)
	g.waitEnter(t, "read 1536")
	if res := r.n.AbortTask(r.lun, 7, mark); res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK: %v", res)
	}
	if res := r.n.QueryTask(r.lun, 7, mark); res != scsi.TMFComplete {
		t.Fatalf("QUERY TASK with the earlier mark: %v", res)
	}
	if res := r.n.AbortTaskSet(r.lun, mark); res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK SET: %v", res)
	}
	rel()
	waitDone(t, "the later command", done)
	goodCmd(t, "a command that arrived after the abort", late)
}
