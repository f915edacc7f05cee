package frontend_test

import (
	"testing"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
)

// vscsiif ABORT (of an rqid no longer outstanding, and of one in flight)
// and RESET are answered with SUCCESS or FAILED, and I/O carries on.
func TestVSCSIAbortReset(t *testing.T) {
	e := newEnv(t, "g1")
	f := e.dialVSCSI(e.guest("g1"))
	clearUA(t, f, 0)
	ctx := ctxT(t)
	p, err := f.Submit(ctx, &frontend.Request{CDB: scsitest.RW10(0x28, 0, 0, 64), InLen: 64 * 512})
	if err != nil {
		t.Fatal(err)
	}
	rslt, err := f.Abort(ctx, 0, p.Rqid)
	if err != nil || rslt != vscsiif.RsltResetSuccess && rslt != vscsiif.RsltResetFailed {
		t.Fatalf("abort: %#x %v", rslt, err)
	}
	var res frontend.Result
	if _, err := p.Wait(ctx, &res, nil); err != nil && err != scsitest.ErrAborted {
		t.Fatalf("aborted command: %v", err)
	} else {
		t.Logf("abort %#x; the command: %v", rslt, err)
	}
	rslt, err = f.Reset(ctx, 0)
	if err != nil || rslt != vscsiif.RsltResetSuccess {
		t.Fatalf("reset: %#x %v", rslt, err)
	}
	clearUA(t, f, 0) // the reset's unit attention
	stop := make(chan struct{})
	close(stop)
	if _, err := verifiedIO(ctx, f, 0, 9, stop); err != nil {
		t.Fatal(err)
	}
	r, err := f.Do(ctx, &scsitest.Request{CDB: scsitest.RW10(0x28, 0, 0, 1), InLen: 512})
	if err != nil || r.Status != scsi.StatusGood {
		t.Fatalf("I/O after the reset: %v %v", r, err)
	}
}

// Over the SRP ring the Go initiator's task management reaches the
// session layer unchanged.
func TestSRPRingTaskManagement(t *testing.T) {
	e := newEnv(t, "g1")
	_, in := e.loginSRP(e.guest("g1"), initiator.Config{})
	clearUA(t, in, 0)
	ctx := ctxT(t)
	for _, fn := range []uint8{srp.TMFAbortTask, srp.TMFAbortTaskSet, srp.TMFLogicalUnitReset, srp.TMFQueryTask} {
		code, err := in.TaskMgmt(ctx, scsi.EncodeLUN(0), fn, 12345)
		if err != nil {
			t.Fatalf("function %d: %v", fn, err)
		}
		t.Logf("task management function %d: response code %d", fn, code)
	}
	clearUA(t, in, 0)
	r, err := in.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RW10(0x28, 0, 0, 1), InLen: 512})
	if err != nil || r.Status != scsi.StatusGood {
		t.Fatalf("I/O after task management: %v %v", r, err)
	}
	if f := in.Faults(); len(f) > 0 {
		t.Fatal(f)
	}
}
