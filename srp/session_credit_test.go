package srp_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

// creditAudit watches every IU on the wire and checks the SRP credit rules
// (SRP r16a 5.6) as it goes: the initiator never sends a request without a
// credit, and the target never grants more than the channel's N credits
// outstanding (a credit counted twice would show as more).
type creditAudit struct {
	mu       sync.Mutex
	n        int64
	limit    int64 // initiator's request limit as the wire shows it
	requests int64
	ius      int64
	err      error
}

func (a *creditAudit) tap(fromInitiator bool, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ius++
	var iu srp.IU
	var err error
	if fromInitiator {
		err = iu.DecodeFromInitiator(b)
	} else {
		err = iu.DecodeFromTarget(b)
	}
	if err != nil {
		a.fail("undecodable IU: %v", err)
		return
	}
	switch iu.Op {
	case srp.OpCmd, srp.OpTskMgmt:
		if a.limit <= 0 {
			a.fail("IU %d: %v sent with request limit %d", a.ius, iu.Op, a.limit)
		}
		a.limit--
		a.requests++
	case srp.OpRsp:
		a.grant(int64(iu.Rsp.ReqLimDelta))
	case srp.OpCredReq:
		a.grant(int64(iu.CredReq.ReqLimDelta))
	case srp.OpAerReq:
		a.grant(int64(iu.AerReq.ReqLimDelta))
	}
}

func (a *creditAudit) grant(d int64) {
	if d < 0 {
		a.fail("IU %d: negative request limit delta %d", a.ius, d)
	}
	a.limit += d
	if a.limit > a.n {
		a.fail("IU %d: request limit %d exceeds the %d credits of the channel: a credit was returned twice", a.ius, a.limit, a.n)
	}
}

func (a *creditAudit) fail(format string, args ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format, args...)
	}
}

func (a *creditAudit) state() (limit int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit, a.err
}

// Reference: SRP r16a 5.6 (credits), SAM-5 7.2/7.3 (aborts). 100,000
// random commands at random depths with random aborts: the invariant holds
// after every IU, and whenever the channel is quiet the initiator is back
// to exactly N credits — none lost.
func TestCreditFlowRandomWithAborts(t *testing.T) {
	const credits = 32
	total := 100000
	if testing.Short() {
		total = 10000
	}
	audit := &creditAudit{n: credits}
	st := &jitterStore{Store: memStore(t, 4<<20), rnd: rand.New(rand.NewSource(2))}
	e := newEnv(t, transport.MemConfig{Credits: credits, Tap: audit.tap}, srp.Config{}, st)
	audit.limit = credits // the login response grants N
	in := e.mustDial(initiator.Config{})
	c := client(in, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(1))
	var aborted, answered atomic.Int64
	sent := 0
	for batch := 0; sent < total; batch++ {
		n := 1 + rnd.Intn(200)
		var wg sync.WaitGroup
		tags := make(chan uint64, n)
		for i := 0; i < n && sent < total; i++ {
			sent++
			tag := uint64(batch+1)<<32 | uint64(i)
			req := &scsitest.Request{LUN: c.LUN, Tag: tag}
			lba := uint64(rnd.Intn(4<<20/512 - 8))
			switch rnd.Intn(3) {
			case 0:
				req.CDB = scsitest.RW16(0x88, 0, lba, 8)
				req.InLen = 4096
			case 1:
				req.CDB = scsitest.RW16(0x8A, 0, lba, 8)
				req.DataOut = make([]byte, 4096)
			default:
				req.CDB = scsitest.TestUnitReady()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tags <- tag
				r, err := in.Do(context.Background(), req)
				switch {
				case errors.Is(err, scsitest.ErrAborted):
					aborted.Add(1)
				case err != nil:
					t.Errorf("tag %#x: %v", tag, err)
				case r.Status != scsi.StatusGood:
					t.Errorf("tag %#x: %v", tag, r.Err())
				default:
					answered.Add(1)
				}
			}()
			if rnd.Intn(10) == 0 {
				// Abort one of the commands sent so far in this batch.
				victim := <-tags
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, err := in.TaskMgmt(context.Background(), c.LUN, srp.TMFAbortTask, victim)
					if err != nil || code != srp.RspCodeComplete {
						t.Errorf("ABORT TASK %#x: code %d, %v", victim, code, err)
					}
				}()
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Quiet channel: every credit must come home.
		deadline := time.Now().Add(5 * time.Second)
		for {
			limit, err := audit.state()
			if err != nil {
				t.Fatalf("after %d commands: %v", sent, err)
			}
			if limit == credits && in.ReqLim() == credits {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d commands the quiet channel holds %d credits on the wire and %d at the initiator, want %d",
					sent, limit, in.ReqLim(), credits)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if f := in.Faults(); len(f) > 0 {
		t.Fatalf("initiator saw responses to aborted or unknown tasks: %q", f)
	}
	t.Logf("%d commands: %d answered, %d aborted; %d IUs audited", sent, answered.Load(), aborted.Load(), audit.ius)
	if aborted.Load() == 0 {
		t.Fatal("no command was aborted while outstanding: the test did not exercise aborts")
	}
}

// Reference: SRP r16a 5.6 — requests beyond the request limit are refused
// (TASK SET FULL) and the credit accounting stays consistent.
func TestCreditViolationTaskSetFull(t *testing.T) {
	const credits = 4
	g := newGateStore(memStore(t, 1<<20))
	e := newEnv(t, transport.MemConfig{Credits: credits}, srp.Config{}, g)
	req := goodLogin()
	rsp, rej, conn := rawLogin(t, e, req)
	if rej != nil {
		t.Fatal(rej)
	}
	defer conn.Close()
	if rsp.ReqLimDelta != credits {
		t.Fatalf("granted %d", rsp.ReqLimDelta)
	}
	buf := make([]byte, 512)
	send := func(tag uint64, cdb []byte) {
		d, _ := conn.Register(make([]byte, 512), true)
		cmd := srp.Cmd{Tag: tag, CDB: cdb, In: srp.BufDesc{Format: srp.BufDirect, Direct: d}}
		n, err := cmd.Encode(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	// Take the new nexus's unit attention first, so the reads below go to
	// the backstore and hold their credits.
	send(50, scsitest.RW16(0x88, 0, 0, 1))
	if _, err := conn.Recv(); err != nil {
		t.Fatal(err)
	}
	g.gate(0)
	for i := 0; i < credits; i++ {
		send(uint64(i+1), scsitest.RW16(0x88, 0, 0, 1))
	}
	for i := 0; i < credits; i++ {
		<-g.arrived
	}
	send(100, scsitest.RW16(0x88, 0, 0, 1)) // one too many
	b, err := conn.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var iu srp.IU
	if err := iu.DecodeFromTarget(b); err != nil || iu.Op != srp.OpRsp {
		t.Fatalf("%v %v", iu.Op, err)
	}
	if iu.Rsp.Tag != 100 || iu.Rsp.Status != uint8(scsi.StatusTaskSetFull) || iu.Rsp.ReqLimDelta != 1 {
		t.Fatalf("response to the request beyond the limit: %+v", iu.Rsp)
	}
	g.open(0)
	var delta int32
	for i := 0; i < credits; i++ {
		b, err := conn.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := iu.DecodeFromTarget(b); err != nil {
			t.Fatal(err)
		}
		delta += iu.Rsp.ReqLimDelta
	}
	if delta != credits {
		t.Fatalf("credits returned %d, want %d", delta, credits)
	}
}
