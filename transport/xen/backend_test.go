package xen_test

import (
	"bytes"
	"context"
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
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

var targetID = [16]byte{0x53, 0x52, 0x50, 0x54, 0x47, 0x54, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a}

const luSize = 8 << 20

// env: a simulator, a target with memory LUs disk0..disk2, the session
// layer, and the vscsiif backend (Listen) wired as cmd wires it: the
// access function shows each ring the LUNs the backend reports.
type env struct {
	t    testing.TB
	sim  *xensim.Server
	hv   *xensim.Hypervisor
	tgt  *scsi.Target
	lus  map[string]*scsi.LU
	port *scsi.Port
	srv  *srp.Server
	l    *xen.Listener
	logs *observer.ObservedLogs
	log  *zap.Logger
	wg   sync.WaitGroup
	cfg  xen.Config
	// crash wraps hv: crash() cuts the backend's XenStore connections
	crash *crashHV
}

func newEnv(t testing.TB, mod func(*xen.Config)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	e := &env{t: t, logs: logs, log: zap.New(core), lus: map[string]*scsi.LU{}}
	var err error
	e.sim, err = xensim.Listen(filepath.Join(t.TempDir(), "sim.sock"), xensim.Config{DefaultPages: 4096, DefaultGrants: 4096})
	if err != nil {
		t.Fatal(err)
	}
	e.tgt = scsi.NewTarget(scsi.TargetConfig{})
	for i, name := range []string{"disk0", "disk1", "disk2"} {
		st, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: luSize})
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
		e.lus[name] = lu
	}
	e.port = e.tgt.AddPort(scsi.PortID(targetID), "xen")
	e.srv = srp.NewServer(srp.Config{Target: e.tgt, Logger: e.log.Named("srp")})
	e.cfg = xen.Config{
		Logger: e.log.Named("xen"), TargetPortID: targetID, CloseTimeout: 3 * time.Second, ReattachDelay: 50 * time.Millisecond,
		HasLU: func(n string) bool { return e.lus[n] != nil },
		OnMap: func([16]byte, []xen.LUNMap) { e.tgt.Remap() },
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.tgt.SetAccess(func(id scsi.NexusID, _ *scsi.Port) ([]scsi.Mapping, error) {
		var ms []scsi.Mapping
		for _, m := range e.l.LUNs(id.Initiator) {
			ms = append(ms, scsi.Mapping{LUN: m.LUN, LU: e.lus[m.LU]})
		}
		return ms, nil
	})
	e.start()
	t.Cleanup(e.close)
	return e
}

func (e *env) start() {
	e.t.Helper()
	var err error
	e.hv, err = xensim.Dial(e.sim.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := e.cfg
	e.crash = &crashHV{Hypervisor: e.hv}
	cfg.Hypervisor = e.crash
	e.l, err = xen.Listen(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	l := e.l
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			ch, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.srv.Serve(ch, e.port)
			}()
		}
	}()
}

// stop is srptgt serve's SIGTERM: the Xen backend first (guests close
// their devices while I/O is still served), then the session layer.
func (e *env) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.l.Shutdown(ctx); err != nil {
		e.t.Errorf("xen shutdown: %v", err)
	}
	e.hv.Close()
}

func (e *env) close() {
	if e.t.Failed() {
		for _, l := range e.sim.Store().Dump("/local") {
			e.t.Log(l)
		}
		for _, l := range e.logs.All() {
			e.t.Log(l.Message, l.ContextMap())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.l.Shutdown(ctx)
	e.srv.Shutdown(ctx)
	cancel()
	e.wg.Wait()
	e.hv.Close()
	e.sim.Close()
}

func (e *env) guest(name string) *xensim.Guest {
	e.t.Helper()
	g, err := xensim.DialGuest(e.sim.Path(), xensim.GuestConfig{Name: name, Pages: 16384, Grants: 8192})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { g.Close() })
	return g
}

// store is a dom0 XenStore connection that outlives backend restarts.
func (e *env) store() xen.Store {
	st := e.sim.Store().Connect(0)
	e.t.Cleanup(func() { st.Close() })
	return st
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) front(g *xensim.Guest, vhost int) *vfront {
	e.t.Helper()
	f, err := dialFront(ctxT(e.t, 10*time.Second), g, vhost, 0)
	if err != nil {
		e.t.Fatalf("frontend of %s vhost %d: %v", g.UUID(), vhost, err)
	}
	// (cleanups run last-in first-out: the frontend lets go of its ring
	// before its guest's memory is freed)
	e.t.Cleanup(f.Close)
	return f
}

func spec(t testing.TB, s string) xen.LUNSpec {
	l, err := xen.ParseLUNSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func clearUA(t *testing.T, in scsitest.Initiator, lun uint16) {
	t.Helper()
	for i := 0; i < 8; i++ {
		r, err := in.Do(ctxT(t, 5*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.TestUnitReady()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == scsi.StatusGood {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

// rw writes random data of the given size at lba and reads it back.
func rw(ctx context.Context, in scsitest.Initiator, lun uint16, lba uint32, blocks int, rnd *rand.Rand) error {
	data := make([]byte, blocks*512)
	rnd.Read(data)
	r, err := in.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.RW10(0x2a, 0, lba, uint16(blocks)), DataOut: data})
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return err
	}
	r, err = in.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.RW10(0x28, 0, lba, uint16(blocks)), InLen: len(data)})
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(r.Data, data) {
		return errMismatch
	}
	return nil
}

type mismatch struct{}

func (mismatch) Error() string { return "data mismatch" }

var errMismatch error = mismatch{}

// A configured guest is attached when its domain appears; both LUNs of
// its vhost answer; data round-trips through direct segments, and through
// indirect pages for requests above 26 pages (feature-sg-grant 128).
func TestAttachAndIO(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0"), spec(t, "disk1, 0:0:0:1")}}}
	})
	g := e.guest("g1")
	f := e.front(g, 0)
	defer f.Close()
	if got := len(f.LUNs()); got != 2 {
		t.Fatalf("frontend sees %d LUNs: %v", got, f.Notes())
	}
	for _, lun := range []uint16{0, 1} {
		clearUA(t, f, lun)
		r, err := f.Do(ctxT(t, 5*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(lun), CDB: scsitest.Inquiry(false, 0, 96), InLen: 96})
		if err != nil || r.Err() != nil {
			t.Fatalf("INQUIRY LUN %d: %v %v", lun, err, r.Err())
		}
	}
	rnd := rand.New(rand.NewSource(1))
	for _, blocks := range []int{1, 8, 200, 8 * 26, 8 * 27, 8 * 100, 8 * 128} {
		if err := rw(ctxT(t, 10*time.Second), f, 1, uint32(rnd.Intn(1000)), blocks, rnd); err != nil {
			t.Fatalf("%d blocks: %v", blocks, err)
		}
	}
	// the data landed in the LU
	st, _ := xen.Domains(e.store())
	if len(st) < 2 {
		t.Fatalf("domains: %v", st)
	}
	// unknown LUN: the session answers, the ring stays up
	r, err := f.Do(ctxT(t, 5*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(5), CDB: scsitest.TestUnitReady()})
	if err != nil || r.Status != scsi.StatusCheckCondition {
		t.Fatalf("TUR of an unmapped LUN: %v %+v", err, r)
	}
}
