package srp_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

func expectUA(t *testing.T, c *scsitest.Client, asc scsi.ASC) {
	t.Helper()
	r, err := c.Do(scsitest.TestUnitReady(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := r.SenseError()
	if r.Status != scsi.StatusCheckCondition || e == nil || e.Key != scsi.UnitAttention || e.ASC != asc {
		t.Fatalf("TEST UNIT READY: %v, want UNIT ATTENTION %04x", r.Err(), uint16(asc))
	}
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	r   *scsitest.Response
	err error
}

func doAsync(in scsitest.Initiator, req *scsitest.Request) chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := in.Do(context.Background(), req)
		ch <- result{r, err}
	}()
	return ch
}

// Reference: SAM-5 7.2, SRP r16a 6.7 — ABORT TASK of a command that is
// inside the backstore: the task management response comes only after the
// backstore I/O ended, and the command gets no response at all (exactly one
// answer for the pair: the task management response).
func TestAbortTaskInBackstore(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20))
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, g)
	in := e.mustDial(initiator.Config{})
	c := client(in, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	g.gate(4096)
	data := bytes.Repeat([]byte{0x5A}, 4096)
	wr := doAsync(in, &scsitest.Request{LUN: c.LUN, CDB: scsitest.RW16(0x8A, 0, 8, 8), DataOut: data, Tag: 77})
	<-g.arrived // the WRITE is in the backstore

	tmf := make(chan uint8, 1)
	go func() {
		code, err := in.TaskMgmt(context.Background(), c.LUN, srp.TMFAbortTask, 77)
		if err != nil {
			t.Error(err)
		}
		tmf <- code
	}()
	select {
	case code := <-tmf:
		t.Fatalf("ABORT TASK answered (code %d) while the aborted WRITE was still in the backstore", code)
	case <-time.After(50 * time.Millisecond):
	}
	g.open(4096)
	if code := <-tmf; code != srp.RspCodeComplete {
		t.Fatalf("ABORT TASK response code %d", code)
	}
	if res := <-wr; !errors.Is(res.err, scsitest.ErrAborted) {
		t.Fatalf("aborted WRITE: %+v %v", res.r, res.err)
	}
	// The credit of the aborted command comes back (on the next response or
	// an SRP_CRED_REQ): the initiator returns to its full request limit.
	waitReqLim(t, in, 128)
	// And the channel still works.
	if err := c.Write(0, data, 512); err != nil {
		t.Fatal(err)
	}
}

func waitReqLim(t *testing.T, in *initiator.Initiator, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for in.ReqLim() != n {
		if time.Now().After(deadline) {
			t.Fatalf("request limit %d, want %d", in.ReqLim(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// An abort of a command that already completed finds nothing and answers
// FUNCTION COMPLETE; the command was answered once.
func TestAbortTaskAfterCompletion(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	in := e.mustDial(initiator.Config{})
	c := client(in, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	r, err := in.Do(context.Background(), &scsitest.Request{LUN: c.LUN, CDB: scsitest.TestUnitReady(), Tag: 5})
	if err != nil || r.Status != scsi.StatusGood {
		t.Fatal(err, r)
	}
	code, err := in.TaskMgmt(context.Background(), c.LUN, srp.TMFAbortTask, 5)
	if err != nil || code != srp.RspCodeComplete {
		t.Fatal(code, err)
	}
}

// Reference: SAM-5 7.7 — LOGICAL UNIT RESET aborts every task of the LU
// from every nexus and establishes BUS DEVICE RESET FUNCTION OCCURRED for
// the other nexuses.
func TestLogicalUnitReset(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20))
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, g)
	a := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(1)})
	b := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(2)})
	ca, cb := client(a, 0), client(b, 0)
	for _, c := range []*scsitest.Client{ca, cb} {
		if err := c.ClearUA(); err != nil {
			t.Fatal(err)
		}
	}
	// B has a READ stuck in the backstore and a WRITE queued behind an
	// ORDERED barrier.
	g.gate(0)
	rd := doAsync(b, &scsitest.Request{LUN: cb.LUN, CDB: scsitest.RW16(0x88, 0, 0, 1), InLen: 512})
	<-g.arrived
	ord := doAsync(b, &scsitest.Request{LUN: cb.LUN, CDB: scsitest.RW16(0x8A, 0, 1, 1), DataOut: make([]byte, 512), Attr: scsi.Ordered})
	time.Sleep(20 * time.Millisecond)

	done := make(chan uint8, 1)
	go func() {
		code, err := a.TaskMgmt(context.Background(), ca.LUN, srp.TMFLogicalUnitReset, 0)
		if err != nil {
			t.Error(err)
		}
		done <- code
	}()
	time.Sleep(20 * time.Millisecond)
	g.open(0)
	if code := <-done; code != srp.RspCodeComplete {
		t.Fatalf("LOGICAL UNIT RESET code %d", code)
	}
	// B's commands were aborted: no responses for them (B's initiator, not
	// having sent the reset, sees them time out; here they stay pending).
	for _, ch := range []chan result{rd, ord} {
		select {
		case res := <-ch:
			t.Fatalf("a command aborted by another nexus's LU reset was answered: %+v %v", res.r, res.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	expectUA(t, cb, scsi.ASCBusDeviceReset)
	// Credits for B's two aborted commands came back.
	waitReqLim(t, b, 128)
}

// Reference: SAM-5 8.6 — an ORDERED task starts after every older task and
// before every newer SIMPLE one; HEAD OF QUEUE starts at once.
func TestTaskAttributeOrdering(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20))
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, g)
	in := e.mustDial(initiator.Config{})
	c := client(in, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	read := func(lba uint64, attr scsi.TaskAttr) chan result {
		return doAsync(in, &scsitest.Request{LUN: c.LUN, CDB: scsitest.RW16(0x88, 0, lba, 1), InLen: 512, Attr: attr})
	}
	g.gate(0)
	older := read(0, scsi.Simple)
	<-g.arrived
	ordered := read(1, scsi.Ordered)
	time.Sleep(10 * time.Millisecond)
	newer := read(2, scsi.Simple)
	time.Sleep(10 * time.Millisecond)
	hoq := read(3, scsi.HeadOfQueue)
	if res := <-hoq; res.err != nil || res.r.Status != scsi.StatusGood {
		t.Fatalf("HEAD OF QUEUE: %v", res.err)
	}
	for _, ch := range []chan result{ordered, newer} {
		select {
		case <-ch:
			t.Fatal("a task behind the ORDERED barrier ran while an older task was running")
		case <-time.After(20 * time.Millisecond):
		}
	}
	g.open(0)
	for _, ch := range []chan result{older, ordered, newer} {
		if res := <-ch; res.err != nil || res.r.Status != scsi.StatusGood {
			t.Fatalf("read: %v %+v", res.err, res.r)
		}
	}
	got := g.started()
	want := []int64{0, 3 * 512, 1 * 512, 2 * 512}
	if len(got) != len(want) {
		t.Fatalf("backstore order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backstore order %v, want %v", got, want)
		}
	}
}

// Reference: SAM-5 5.9 — a command whose tag is in use by another task of
// the nexus is an overlapped command.
func TestOverlappedTag(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20))
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, g)
	in := e.mustDial(initiator.Config{})
	second := e.mustDial(initiator.Config{MultiChannel: srp.MultiChanMulti})
	c := client(in, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	g.gate(0)
	first := doAsync(in, &scsitest.Request{LUN: c.LUN, CDB: scsitest.RW16(0x88, 0, 0, 1), InLen: 512, Tag: 9})
	<-g.arrived
	// Same tag from the same I_T nexus on its other channel.
	r, err := second.Do(context.Background(), &scsitest.Request{LUN: c.LUN, CDB: scsitest.TestUnitReady(), Tag: 9})
	if err != nil {
		t.Fatal(err)
	}
	se := r.SenseError()
	if r.Status != scsi.StatusCheckCondition || se == nil || se.Key != scsi.AbortedCommand || se.ASC != 0x4E00 {
		t.Fatalf("duplicate tag: %v, want ABORTED COMMAND / OVERLAPPED COMMANDS ATTEMPTED", r.Err())
	}
	g.open(0)
	if res := <-first; res.err != nil || res.r.Status != scsi.StatusGood {
		t.Fatal(res.err)
	}
}
