package frontend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/srpring"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// env is a simulator, a target with memory LUs behind the SRP ring
// backend, and a log the tests inspect.
type env struct {
	t    *testing.T
	sim  *xensim.Server
	hv   *xensim.Hypervisor
	tgt  *scsi.Target
	srv  *srp.Server
	l    *srpring.Listener
	logs *observer.ObservedLogs
	wg   sync.WaitGroup
}

var targetID = [16]byte{0xfe, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

func newEnv(t *testing.T, guests ...string) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	sim, err := xensim.Listen(filepath.Join(t.TempDir(), "sim.sock"), xensim.Config{DefaultPages: 4096, DefaultGrants: 4096})
	if err != nil {
		t.Fatal(err)
	}
	hv, err := xensim.Dial(sim.Path())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sim: sim, hv: hv, logs: logs}
	e.tgt = scsi.NewTarget(scsi.TargetConfig{})
	for i, name := range []string{"disk0", "disk1"} {
		st, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: name, LUN: uint16(i), Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.tgt.AddLU(lu); err != nil {
			t.Fatal(err)
		}
	}
	port := e.tgt.AddPort(scsi.PortID(targetID), "xen-srp")
	e.srv = srp.NewServer(srp.Config{Target: e.tgt, Logger: log.Named("srp")})
	var gs []srpring.Guest
	for _, g := range guests {
		gs = append(gs, srpring.Guest{Domain: g})
	}
	e.l, err = srpring.Listen(srpring.Config{Hypervisor: hv, Logger: log.Named("srpring"), TargetPortID: targetID,
		Guests: gs, LoginTimeout: 2 * time.Second, SendTimeout: 2 * time.Second,
		LUNames: func() map[uint16]string { return map[uint16]string{0: "disk0", 1: "disk1"} }})
	if err != nil {
		t.Fatal(err)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			ch, err := e.l.Accept(context.Background())
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.srv.Serve(ch, port)
			}()
		}
	}()
	t.Cleanup(e.close)
	return e
}

func (e *env) dump() {
	for _, l := range e.sim.Store().Dump("/local") {
		e.t.Log(l)
	}
	for _, l := range e.logs.All() {
		e.t.Log(l.Message, l.ContextMap())
	}
}

func (e *env) close() {
	if e.t.Failed() {
		e.dump()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.srv.Shutdown(ctx)
	cancel()
	e.l.Close()
	e.wg.Wait()
	e.hv.Close()
	e.sim.Close()
}

func (e *env) guest(name string) *xensim.Guest {
	e.t.Helper()
	g, err := xensim.DialGuest(e.sim.Path(), xensim.GuestConfig{Name: name, Pages: 4096, Grants: 4096})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { g.Close() })
	return g
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// loginSRP attaches an SRP ring and logs in.
func (e *env) loginSRP(g *xensim.Guest, cfg initiator.Config) (*frontend.SRPConn, *initiator.Initiator) {
	t := e.t
	t.Helper()
	conn, err := frontend.DialSRP(ctxT(t), g, frontend.SRPConfig{})
	if err != nil {
		e.dump()
		t.Fatal(err)
	}
	_ = conn
	cfg.InitiatorPortID = conn.InitiatorPortID()
	cfg.TargetPortID = conn.TargetPortID()
	in, err := initiator.Dial(ctxT(t), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return conn, in
}

// verifiedIO writes and reads back random blocks of lun until stop, and
// reports the first mismatch or failure.
func verifiedIO(ctx context.Context, in scsitest.Initiator, lun uint16, seed int64, stop <-chan struct{}) (int, error) {
	rnd := rand.New(rand.NewSource(seed))
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		lba := uint32(rnd.Intn(16<<20/512 - 16))
		blocks := 1 + rnd.Intn(16)
		data := make([]byte, blocks*512)
		rnd.Read(data)
		r, err := in.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.RW10(0x2a, 0, lba, uint16(blocks)), DataOut: data})
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			return n, fmt.Errorf("write %d: %w", n, err)
		}
		r, err = in.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.RW10(0x28, 0, lba, uint16(blocks)), InLen: len(data)})
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			return n, fmt.Errorf("read %d: %w", n, err)
		}
		if !bytes.Equal(r.Data, data) {
			return n, fmt.Errorf("read %d: data mismatch at lba %d", n, lba)
		}
		n++
	}
}

// clearUA sends TEST UNIT READY until the unit attentions of a new nexus
// are consumed.
func clearUA(t *testing.T, in scsitest.Initiator, lun uint16) {
	t.Helper()
	for i := 0; i < 8; i++ {
		r, err := in.Do(ctxT(t), &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.TestUnitReady()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == scsi.StatusGood {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

// waitLog waits for a log message containing msg.
func (e *env) waitLog(msg string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.logs.All() {
			if l.Message == msg {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

var _ = errors.Is
var _ transport.Listener = (*srpring.Listener)(nil)
