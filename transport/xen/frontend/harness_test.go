package frontend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/srpring"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// env is a simulator, a target with memory LUs behind the SRP ring
// backend, and a log the tests inspect.
type env struct {
	t    testing.TB
	sim  *xensim.Server
	hv   *xensim.Hypervisor
	tgt  *scsi.Target
	srv  *srp.Server
	l    *srpring.Listener
	vl   *xen.Listener
	logs *observer.ObservedLogs
	wg   sync.WaitGroup
}

var (
	targetID  = [16]byte{0xfe, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	vscsiPort = [16]byte{0xfe, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
)

func newEnv(t testing.TB, guests ...string) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	sim, err := xensim.Listen(filepath.Join(t.TempDir(), "sim.sock"), xensim.Config{DefaultPages: 16384, DefaultGrants: 8192})
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
	// a null LU at LUN 2 for the benchmarks
	nst, err := backstore.Open(backstore.Spec{Kind: backstore.KindNull, Size: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	nlu, err := scsi.NewDisk(scsi.DiskConfig{Name: "nul", LUN: 2, Store: nst})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.AddLU(nlu); err != nil {
		t.Fatal(err)
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
	// The vscsiif backend: guest i sees disk<i> at 0:0:0:0 (and disk0 at
	// 0:0:0:1 for the first); a ring's nexus sees only those.
	vport := e.tgt.AddPort(scsi.PortID(vscsiPort), "xen-vscsi")
	var vguests []xen.Guest
	for i, g := range guests {
		lg := xen.Guest{Domain: g, LUNs: []xen.LUNSpec{{LU: fmt.Sprintf("disk%d", i%2), Addr: xen.Addr{}}, {LU: "nul", Addr: xen.Addr{LUN: 2}}}}
		vguests = append(vguests, lg)
	}
	var amu sync.Mutex
	maps := map[[16]byte][]xen.LUNMap{}
	all := []scsi.Mapping{}
	for _, lu := range e.tgt.LUs() {
		all = append(all, scsi.Mapping{LUN: lu.LUN(), LU: lu})
	}
	byName := map[string]*scsi.LU{}
	for _, lu := range e.tgt.LUs() {
		byName[lu.Name()] = lu
	}
	e.tgt.SetAccess(func(id scsi.NexusID, p *scsi.Port) ([]scsi.Mapping, error) {
		if p != vport {
			return all, nil
		}
		amu.Lock()
		defer amu.Unlock()
		var out []scsi.Mapping
		for _, m := range maps[[16]byte(id.Initiator)] {
			out = append(out, scsi.Mapping{LUN: m.LUN, LU: byName[m.LU]})
		}
		return out, nil
	})
	e.vl, err = xen.Listen(xen.Config{Hypervisor: hv, Logger: log.Named("xen"), TargetPortID: vscsiPort, Guests: vguests,
		MaxSegments: 256, CloseTimeout: 2 * time.Second,
		OnMap: func(id [16]byte, luns []xen.LUNMap) {
			amu.Lock()
			maps[id] = luns
			amu.Unlock()
			e.tgt.Remap()
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		l transport.Listener
		p *scsi.Port
	}{{e.l, port}, {e.vl, vport}} {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for {
				ch, err := x.l.Accept(context.Background())
				if err != nil {
					return
				}
				e.wg.Add(1)
				go func() {
					defer e.wg.Done()
					e.srv.Serve(ch, x.p)
				}()
			}
		}()
	}
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
	e.vl.Close()
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

func ctxT(t testing.TB) context.Context {
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
func clearUA(t testing.TB, in scsitest.Initiator, lun uint16) {
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

// dialVSCSI attaches the vscsiif frontend of g.
func (e *env) dialVSCSI(g *xensim.Guest) *frontend.VSCSI {
	e.t.Helper()
	f, err := frontend.DialVSCSI(ctxT(e.t), g, frontend.VSCSIConfig{})
	if err != nil {
		e.dump()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

// disconnected waits for the log to say that domain dom's ring was
// disconnected for a fault, and returns the reason logged.
func (e *env) disconnected(dom uint16) (string, bool) {
	msgs := map[string]bool{
		"bad frontend: disconnecting it": true, "device failed": true, "attaching the ring failed": true,
		"disconnecting a frontend that broke the SRP ring protocol": true, "refusing an SRP ring frontend": true,
		"SRP ring detached": true, "ring channel closed": true,
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.logs.All() {
			if !msgs[l.Message] || !mentions(l.ContextMap(), dom) {
				continue
			}
			m := l.ContextMap()
			for _, k := range []string{"error", "reason"} {
				if v, ok := m[k]; ok {
					return fmt.Sprintf("%s: %v", l.Message, v), true
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", false
}

func mentions(m map[string]any, dom uint16) bool {
	for _, k := range []string{"domid", "domain"} {
		switch v := m[k].(type) {
		case uint16:
			if v == dom {
				return true
			}
		case uint64:
			if v == uint64(dom) {
				return true
			}
		}
	}
	if d, ok := m["device"].(string); ok {
		return strings.Contains(d, fmt.Sprintf("/vscsi/%d/", dom)) || strings.HasSuffix(d, fmt.Sprintf("/vscsi/%d", dom))
	}
	return false
}

// goodGuest runs verified I/O from another guest until the test ends and
// reports how many write+read pairs it has verified.
type goodGuest struct {
	n    atomic.Int64
	err  atomic.Pointer[error]
	stop chan struct{}
	done chan struct{}
}

func (e *env) startGood(name string, ring string) *goodGuest {
	e.t.Helper()
	g := e.guest(name)
	var in scsitest.Initiator
	lun := uint16(0)
	if ring == "srp" {
		_, ini := e.loginSRP(g, initiator.Config{Mode: initiator.Indirect, Segments: 3})
		clearUA(e.t, ini, 0)
		in = ini
	} else {
		f := e.dialVSCSI(g)
		clearUA(e.t, f, 0)
		in = f
	}
	gg := &goodGuest{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(gg.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rnd := int64(len(name))
		for {
			select {
			case <-gg.stop:
				return
			default:
			}
			stop := make(chan struct{})
			time.AfterFunc(50*time.Millisecond, func() { close(stop) })
			n, err := verifiedIO(ctx, in, lun, rnd, stop)
			gg.n.Add(int64(n))
			rnd++
			if err != nil {
				gg.err.Store(&err)
				return
			}
		}
	}()
	e.t.Cleanup(func() {
		select {
		case <-gg.stop:
		default:
			close(gg.stop)
		}
		<-gg.done
	})
	return gg
}

// check stops the good guest after it verified more I/O since mark, or
// fails the test.
func (gg *goodGuest) check(t *testing.T, mark int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gg.n.Load() <= mark+10 && time.Now().Before(deadline) && gg.err.Load() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	close(gg.stop)
	<-gg.done
	if e := gg.err.Load(); e != nil {
		t.Fatalf("the good guest's verified I/O failed: %v", *e)
	}
	if n := gg.n.Load(); n <= mark+10 {
		t.Fatalf("the good guest's verified I/O stalled: %d pairs, %d before the attack", n, mark)
	}
}
