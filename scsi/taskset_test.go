package scsi_test

import (
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// How long a negative check waits for something that must not happen.
const settle = 50 * time.Millisecond

// readCmd is a one-block READ(16) of lba with a task attribute and tag.
func readCmd(lun uint64, tag uint64, lba uint64, attr scsi.TaskAttr) *scsi.Command {
	return &scsi.Command{CDB: scsitest.RW16(0x88, 0, lba, 1), LUN: lun, Tag: tag, Attr: attr, DataIn: make([]byte, 512)}
}

// launch enters c into its task set now (arrival order is call order)
// and executes it in a goroutine; the channel closes when Execute returns.
func launch(n *scsi.Nexus, c *scsi.Command) <-chan struct{} {
	done := make(chan struct{})
	n.Start(c)
	go func() {
		defer close(done)
		n.Execute(c)
	}()
	return done
}

func waitDone(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not finish", what)
	}
}

func notDone(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s finished too early", what)
	case <-time.After(settle):
	}
}

func goodCmd(t *testing.T, what string, c *scsi.Command) {
	t.Helper()
	if c.Aborted() || c.Status != scsi.StatusGood || c.InLen != 512 {
		t.Fatalf("%s: aborted %v status %#x sense % x InLen %d", what, c.Aborted(), c.Status, c.SenseData(), c.InLen)
	}
}

func off(lba int64) int64 { return lba * 512 }

// TestTaskAttributes: SAM-5 8.6 with QUEUE ALGORITHM MODIFIER 1. SIMPLE
// tasks run concurrently; an ORDERED task waits for every older task and
// holds back newer SIMPLE and ORDERED tasks until it ends; a HEAD OF QUEUE
// task runs at once, and a SIMPLE task waits for an older HEAD OF QUEUE
// task to end.
func TestTaskAttributes(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	relA := g.hold("read", off(1))
	relB := g.hold("read", off(2))
	defer relA()
	defer relB()

	a := readCmd(r.lun, 1, 1, scsi.Simple)
	doneA := launch(r.n, a)
	g.waitEnter(t, "read 512")
	// A second SIMPLE runs beside the first.
	s := readCmd(r.lun, 9, 9, scsi.Simple)
	doneS := launch(r.n, s)
	g.waitEnter(t, "read 4608")
	waitDone(t, "SIMPLE beside SIMPLE", doneS)

	b := readCmd(r.lun, 2, 2, scsi.Ordered)
	doneB := launch(r.n, b)
	c := readCmd(r.lun, 3, 3, scsi.Simple)
	doneC := launch(r.n, c)
	// B waits for A; C waits for B.
	g.quiet(t, settle)
	if res := r.n.QueryTask(r.lun, 2, r.n.Mark()); res != scsi.TMFSucceeded {
		t.Fatalf("QUERY TASK of the blocked ORDERED task: %v", res)
	}
	// HEAD OF QUEUE runs at once, past the ORDERED task and its follower.
	d := readCmd(r.lun, 4, 4, scsi.HeadOfQueue)
	doneD := launch(r.n, d)
	g.waitEnter(t, "read 2048")
	waitDone(t, "HEAD OF QUEUE", doneD)
	goodCmd(t, "HEAD OF QUEUE", d)
	notDone(t, "ORDERED behind a running SIMPLE", doneB)

	relA()
	waitDone(t, "A", doneA)
	goodCmd(t, "A", a)
	g.waitEnter(t, "read 1024") // B runs now...
	g.quiet(t, settle)          // ...and C still waits for it to end.
	notDone(t, "SIMPLE behind a running ORDERED", doneC)
	// A HEAD OF QUEUE task runs even while the ORDERED task does.
	h := readCmd(r.lun, 5, 5, scsi.HeadOfQueue)
	waitDone(t, "HEAD OF QUEUE beside ORDERED", launch(r.n, h))
	g.waitEnter(t, "read 2560")
	relB()
	waitDone(t, "B", doneB)
	g.waitEnter(t, "read 1536")
	waitDone(t, "C", doneC)
	goodCmd(t, "B", b)
	goodCmd(t, "C", c)

	// An ORDERED task after an ORDERED task: one at a time.
	relO := g.hold("read", off(6))
	o1 := readCmd(r.lun, 6, 6, scsi.Ordered)
	doneO1 := launch(r.n, o1)
	g.waitEnter(t, "read 3072")
	o2 := readCmd(r.lun, 7, 7, scsi.Ordered)
	doneO2 := launch(r.n, o2)
	g.quiet(t, settle)
	relO()
	waitDone(t, "first ORDERED", doneO1)
	waitDone(t, "second ORDERED", doneO2)
	goodCmd(t, "second ORDERED", o2)
}

// TestSimpleAfterHeadOfQueue: SAM-5 8.6.2 (SIMPLE): "The task shall not
// enter the enabled task state until all older HEAD OF QUEUE and older
// ORDERED tasks in the task set have completed."
func TestSimpleAfterHeadOfQueue(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	rel := g.hold("read", off(1))
	defer rel()
	h := readCmd(r.lun, 1, 1, scsi.HeadOfQueue)
	doneH := launch(r.n, h)
	g.waitEnter(t, "read 512")
	s := readCmd(r.lun, 2, 2, scsi.Simple)
	doneS := launch(r.n, s)
	g.quiet(t, settle)
	notDone(t, "SIMPLE behind HEAD OF QUEUE", doneS)
	// Another HEAD OF QUEUE task still runs at once.
	h2 := readCmd(r.lun, 3, 3, scsi.HeadOfQueue)
	waitDone(t, "second HEAD OF QUEUE", launch(r.n, h2))
	g.waitEnter(t, "read 1536")
	rel()
	waitDone(t, "HEAD OF QUEUE", doneH)
	waitDone(t, "SIMPLE", doneS)
	g.waitEnter(t, "read 1024")
	goodCmd(t, "SIMPLE", s)
}

// TestAbortTask: SAM-5 7.2. ABORT TASK of a task that waits in the task
// set ends it without executing it; of a running task, the function
// completes only once the task has ended (moves no more data). An aborted
// command gets no response (Aborted reports true).
func TestAbortTask(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	relA := g.hold("read", off(1))
	defer relA()
	a := readCmd(r.lun, 1, 1, scsi.Simple)
	doneA := launch(r.n, a)
	g.waitEnter(t, "read 512")
	b := readCmd(r.lun, 2, 2, scsi.Ordered)
	doneB := launch(r.n, b)

	// Blocked task.
	if res := r.n.AbortTask(r.lun, 2, r.n.Mark()); res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK: %v", res)
	}
	waitDone(t, "aborted blocked task", doneB)
	if !b.Aborted() {
		t.Fatal("blocked task not reported aborted")
	}
	if res := r.n.QueryTask(r.lun, 2, r.n.Mark()); res != scsi.TMFComplete {
		t.Fatalf("QUERY TASK after abort: %v", res)
	}

	// Running task: the TMF waits for it.
	if res := r.n.QueryTask(r.lun, 1, r.n.Mark()); res != scsi.TMFSucceeded {
		t.Fatalf("QUERY TASK of running task: %v", res)
	}
	tmf := make(chan scsi.TMFResult, 1)
	go func() { tmf <- r.n.AbortTask(r.lun, 1, r.n.Mark()) }()
	select {
	case res := <-tmf:
		t.Fatalf("ABORT TASK returned %v while the task was still in the store", res)
	case <-time.After(settle):
	}
	relA()
	select {
	case res := <-tmf:
		if res != scsi.TMFComplete {
			t.Fatalf("ABORT TASK: %v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ABORT TASK never returned")
	}
	waitDone(t, "aborted running task", doneA)
	if !a.Aborted() {
		t.Fatal("running task not reported aborted")
	}
	g.quiet(t, settle) // B never reached the store
	// The LU goes on: the same tags are free again.
	c := readCmd(r.lun, 1, 1, scsi.Simple)
	r.n.Execute(c)
	goodCmd(t, "after abort", c)
	// A task that already completed is not found: FUNCTION COMPLETE.
	if res := r.n.AbortTask(r.lun, 1, r.n.Mark()); res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK of a completed task: %v", res)
	}
	// Through scsitest the aborted command has no response.
	relX := g.hold("read", off(8))
	errc := make(chan error, 1)
	go func() {
		_, err := r.ini.Do(t.Context(), &scsitest.Request{LUN: r.lun, CDB: scsitest.RW16(0x88, 0, 8, 1), InLen: 512, Tag: 88})
		errc <- err
	}()
	g.waitEnter(t, "read 4096")
	go func() { relXAfter(settle, relX) }()
	r.n.AbortTask(r.lun, 88, r.n.Mark())
	if err := <-errc; err != scsitest.ErrAborted {
		t.Fatalf("aborted request: %v", err)
	}
}

func relXAfter(d time.Duration, rel func()) { time.Sleep(d); rel() }

// TestTMFs covers ABORT TASK SET (7.3), CLEAR TASK SET (7.5), CLEAR ACA
// (7.4), LOGICAL UNIT RESET (7.7), QUERY TASK (7.8) of SAM-5, and their
// unit attentions: COMMANDS CLEARED BY ANOTHER INITIATOR to the other
// nexuses whose tasks a CLEAR TASK SET aborted (TAS 0), BUS DEVICE RESET
// FUNCTION OCCURRED to every nexus after a LOGICAL UNIT RESET.
func TestTMFs(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	n2, d2 := r.attach(other)
	tur := scsitest.TestUnitReady()

	// Wrong LUN: INCORRECT LOGICAL UNIT NUMBER.
	bad := scsi.EncodeLUN(5)
	for name, res := range map[string]scsi.TMFResult{
		"ABORT TASK": r.n.AbortTask(bad, 1, r.n.Mark()), "ABORT TASK SET": r.n.AbortTaskSet(bad, r.n.Mark()), "CLEAR TASK SET": r.n.ClearTaskSet(bad, r.n.Mark()),
		"LOGICAL UNIT RESET": r.n.LUReset(bad, r.n.Mark()), "CLEAR ACA": r.n.ClearACA(bad), "QUERY TASK": r.n.QueryTask(bad, 1, r.n.Mark()),
		"W-LUN": r.n.AbortTaskSet(0xC101<<48, r.n.Mark()),
	} {
		if res != scsi.TMFIncorrectLUN {
			t.Errorf("%s on a LUN with no LU: %v", name, res)
		}
	}
	// No ACA condition is ever established (NormACA 0): nothing to clear.
	if res := r.n.ClearACA(r.lun); res != scsi.TMFComplete {
		t.Fatalf("CLEAR ACA: %v", res)
	}
	if res := r.n.QueryTask(r.lun, 12345, r.n.Mark()); res != scsi.TMFComplete {
		t.Fatalf("QUERY TASK of no task: %v", res)
	}

	// ABORT TASK SET aborts this nexus's tasks only.
	rel1 := g.hold("read", off(1))
	rel2 := g.hold("read", off(2))
	a := readCmd(r.lun, 1, 1, scsi.Simple)
	b := readCmd(r.lun, 2, 2, scsi.Ordered) // blocked behind a
	o := readCmd(r.lun, 1, 2, scsi.Simple)  // nexus 2, same tag as a: tags are per nexus
	doneA, doneB := launch(r.n, a), launch(r.n, b)
	g.waitEnter(t, "read 512")
	doneO := launch(n2, o)
	tmf := make(chan scsi.TMFResult, 1)
	go func() { tmf <- r.n.AbortTaskSet(r.lun, r.n.Mark()) }()
	waitDone(t, "blocked task of the nexus", doneB)
	notDone(t, "ABORT TASK SET with a running task", chanOf(tmf))
	rel1()
	if res := <-tmf; res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK SET: %v", res)
	}
	waitDone(t, "a", doneA)
	if !a.Aborted() || !b.Aborted() {
		t.Fatal("ABORT TASK SET left a task of the nexus")
	}
	// o (nexus 2) was queued behind ORDERED b; it runs now, not aborted.
	g.waitEnter(t, "read 1024")
	rel2()
	waitDone(t, "other nexus's task", doneO)
	goodCmd(t, "other nexus's task", o)
	// ABORT TASK SET establishes no unit attention.
	r.good(r.do(tur, nil, 0))
	r.good(doOn(t, d2, r.lun, tur, nil, 0))

	// CLEAR TASK SET from nexus 1 aborts nexus 2's task too; nexus 2 gets
	// COMMANDS CLEARED BY ANOTHER INITIATOR, nexus 1 nothing.
	rel3 := g.hold("read", off(3))
	c := readCmd(r.lun, 3, 3, scsi.Simple)
	doneC := launch(n2, c)
	g.waitEnter(t, "read 1536")
	go func() { tmf <- r.n.ClearTaskSet(r.lun, r.n.Mark()) }()
	notDone(t, "CLEAR TASK SET with a running task", chanOf(tmf))
	rel3()
	if res := <-tmf; res != scsi.TMFComplete {
		t.Fatalf("CLEAR TASK SET: %v", res)
	}
	waitDone(t, "cleared task", doneC)
	if !c.Aborted() {
		t.Fatal("CLEAR TASK SET left the other nexus's task")
	}
	r.good(r.do(tur, nil, 0))
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2F00}, false)
	r.good(doOn(t, d2, r.lun, tur, nil, 0))
	// With no task of nexus 2 in the set, no unit attention for it.
	r.n.ClearTaskSet(r.lun, r.n.Mark())
	r.good(doOn(t, d2, r.lun, tur, nil, 0))

	// LOGICAL UNIT RESET: every task ends, every nexus gets 29h/03h, in
	// the format D_SENSE selects.
	rel4 := g.hold("read", off(4))
	e := readCmd(r.lun, 4, 4, scsi.Simple)
	doneE := launch(n2, e)
	g.waitEnter(t, "read 2048")
	r.setDSense(true)
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2A01}, true)
	go func() { tmf <- r.n.LUReset(r.lun, r.n.Mark()) }()
	notDone(t, "LOGICAL UNIT RESET with a running task", chanOf(tmf))
	rel4()
	if res := <-tmf; res != scsi.TMFComplete {
		t.Fatalf("LOGICAL UNIT RESET: %v", res)
	}
	waitDone(t, "reset task", doneE)
	if !e.Aborted() {
		t.Fatal("LOGICAL UNIT RESET left a task")
	}
	// The reset restored the default mode pages: fixed format again.
	r.dsns = false
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x2903})
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2903}, false)
	r.good(r.do(tur, nil, 0))
}

func chanOf(c chan scsi.TMFResult) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		res := <-c
		c <- res
		close(out)
	}()
	return out
}

// TestDetachAndRemove: a nexus that goes away (Detach) and a LU removed
// from the target have their tasks aborted, and both calls return only
// once those tasks have ended.
func TestDetachAndRemove(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	n2, _ := r.attach(other)
	rel := g.hold("read", off(1))
	a := readCmd(r.lun, 1, 1, scsi.Simple)
	doneA := launch(n2, a)
	g.waitEnter(t, "read 512")
	detached := make(chan struct{})
	go func() { r.tgt.Detach(n2); close(detached) }()
	notDone(t, "Detach with a running task", detached)
	rel()
	waitDone(t, "Detach", detached)
	waitDone(t, "task of the detached nexus", doneA)
	if !a.Aborted() {
		t.Fatal("Detach left the task")
	}

	// Start then Abandon: the task leaves the set unexecuted.
	c := readCmd(r.lun, 5, 5, scsi.Simple)
	r.n.Start(c)
	if res := r.n.QueryTask(r.lun, 5, r.n.Mark()); res != scsi.TMFSucceeded {
		t.Fatalf("QUERY TASK of a started task: %v", res)
	}
	r.n.Abandon(c)
	if res := r.n.QueryTask(r.lun, 5, r.n.Mark()); res != scsi.TMFComplete {
		t.Fatalf("QUERY TASK of an abandoned task: %v", res)
	}
	g.quiet(t, settle)

	rel = g.hold("read", off(2))
	b := readCmd(r.lun, 2, 2, scsi.Simple)
	doneB := launch(r.n, b)
	g.waitEnter(t, "read 1024")
	removed := make(chan struct{})
	go func() {
		if _, err := r.tgt.RemoveLU("d0"); err != nil {
			t.Error(err)
		}
		close(removed)
	}()
	notDone(t, "RemoveLU with a running task", removed)
	rel()
	waitDone(t, "RemoveLU", removed)
	waitDone(t, "task of the removed LU", doneB)
	if !b.Aborted() {
		t.Fatal("RemoveLU left the task")
	}
	expectOn(t, r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 5, asc: 0x2500}, false)
}
