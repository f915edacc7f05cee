package xen_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xensim"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// verify runs write/read-back cycles on lun until stop closes; unit
// attentions (a hot-plug reports REPORTED LUNS DATA HAS CHANGED) are
// retried, anything else is an error.
func verify(in scsitest.Initiator, lun uint16, seed int64, stop <-chan struct{}) (int, error) {
	rnd := rand.New(rand.NewSource(seed))
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// each writer keeps to its own eighth of the LU
		region := luSize / 512 / 8
		base := int(seed%8) * region
		err := rw(ctx, in, lun, uint32(base+rnd.Intn(region-64)), 1+rnd.Intn(64), rnd)
		cancel()
		var se *scsi.SenseError
		if err != nil && !errors.As(err, &se) && strings.Contains(err.Error(), "status 0x02") {
			continue // a unit attention
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasAddr(f *vfront, lun uint32) bool {
	for _, a := range f.LUNs() {
		if a.LUN == lun {
			return true
		}
	}
	return false
}

// Hot-add and hot-remove of a LUN (srptgt xen attach/detach) while the
// other LUN of the same vhost runs verified I/O.
func TestHotplugUnderIO(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
	})
	g := e.guest("g1")
	f := e.front(g, 0)
	defer f.Close()
	clearUA(t, f, 0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ios int
	var ioErr error
	wg.Add(1)
	go func() { defer wg.Done(); ios, ioErr = verify(f, 0, 7, stop) }()
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt()

	st := e.store()
	if err := xen.Attach(st, xen.AttachRequest{Domain: "g1", LU: "disk1", Addr: xen.Addr{LUN: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guest to add LUN 1", func() bool { return hasAddr(f, 1) })
	waitFor(t, "the backend to go Connected", func() bool {
		s, _ := st.Read(0, "/local/domain/0/backend/vscsi/1/0/state")
		return s == "4"
	})
	clearUA(t, f, 1)
	rnd := rand.New(rand.NewSource(3))
	for i := 0; i < 20; i++ {
		if err := rw(ctxT(t, 5*time.Second), f, 1, uint32(i*64), 64, rnd); err != nil {
			t.Fatalf("I/O on the hot-added LUN: %v", err)
		}
	}
	if err := xen.Attach(st, xen.AttachRequest{Domain: "g1", LU: "disk2", Addr: xen.Addr{LUN: 1}}); err == nil {
		t.Fatal("attaching a second LU at 0:0:0:1 succeeded")
	}
	if err := xen.Detach(st, xen.DetachRequest{Domain: "g1", LU: "disk1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guest to remove LUN 1", func() bool { return !hasAddr(f, 1) })
	waitFor(t, "dev-1 Closed", func() bool {
		s, _ := st.Read(0, "/local/domain/0/backend/vscsi/1/0/vscsi-devs/dev-1/state")
		return s == "6"
	})
	waitFor(t, "LUN 1 to be unmapped", func() bool {
		r, err := f.Do(ctxT(t, 5*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(1), CDB: scsitest.TestUnitReady()})
		return err == nil && r.Status == scsi.StatusCheckCondition && r.SenseError() != nil && r.SenseError().ASC == 0x2500
	})
	time.Sleep(100 * time.Millisecond)
	halt()
	if ioErr != nil || ios == 0 {
		t.Fatalf("verified I/O on LUN 0 during the hot-plug: %d cycles, %v", ios, ioErr)
	}
	t.Logf("%d verified write/read cycles on LUN 0 during hot-add and hot-remove; frontend: %s", ios, f.Notes())
	devs, err := xen.List(st, 0)
	if err != nil || len(devs) != 1 || len(devs[0].LUNs) != 2 {
		t.Fatalf("List = %+v, %v", devs, err)
	}
}

// ABORT and RESET are ABORT TASK and LOGICAL UNIT RESET, answered with
// XEN_VSCSIIF_RSLT_RESET_SUCCESS / _FAILED.
func TestAbortAndReset(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
	})
	f := e.front(e.guest("g1"), 0)
	defer f.Close()
	clearUA(t, f, 0)
	for _, c := range []struct {
		name string
		act  uint8
		lun  uint16
		want int32
	}{
		{"abort of no task", vscsiif.ActSCSIAbort, 0, vscsiif.RsltResetSuccess},
		{"reset", vscsiif.ActSCSIReset, 0, vscsiif.RsltResetSuccess},
		{"reset of an unmapped LUN", vscsiif.ActSCSIReset, 3, vscsiif.RsltResetFailed},
	} {
		rslt, err := f.TMF(ctxT(t, 5*time.Second), c.act, scsi.EncodeLUN(c.lun), 9)
		if err != nil || rslt != c.want {
			t.Errorf("%s: rslt %#x, %v; want %#x", c.name, rslt, err, c.want)
		}
	}
	// after a LU reset the guest sees the unit attention, then I/O again
	clearUA(t, f, 0)
	if err := rw(ctxT(t, 5*time.Second), f, 0, 0, 8, rand.New(rand.NewSource(1))); err != nil {
		t.Fatal(err)
	}
}

// A frontend that sends a malformed request is disconnected with a logged
// reason; another guest carries on.
func TestBadFrontendIsolated(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{
			{Domain: "bad", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}},
			{Domain: "good", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}},
		}
	})
	bad := e.front(e.guest("bad"), 0)
	good := e.front(e.guest("good"), 0)
	defer good.Close()
	clearUA(t, good, 0)
	stop := make(chan struct{})
	var ios int
	var ioErr error
	done := make(chan struct{})
	go func() { ios, ioErr = verify(good, 0, 11, stop); close(done) }()
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); <-done }
	defer halt()

	raw := make([]byte, vscsiif.RequestSize)
	(&vscsiif.Request{Act: vscsiif.ActSCSICDB, CmdLen: 10, Dir: vscsiif.DirFromDevice}).Encode(raw)
	raw[vscsiif.ReqNrSegments] = 27
	bad.mu.Lock()
	bad.rawNext = raw
	bad.mu.Unlock()
	_, err := bad.Do(ctxT(t, 5*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.TestUnitReady()})
	if !errors.Is(err, errFrontClosed) {
		t.Fatalf("malformed request: %v, want the device closed", err)
	}
	if !strings.Contains(bad.Notes(), "closed: backend Closing") {
		t.Fatalf("bad frontend: %s", bad.Notes())
	}
	found := false
	for _, l := range e.logs.All() {
		if l.Message == "bad frontend: disconnecting it" && strings.Contains(l.ContextMap()["error"].(string), "nr_segments") {
			found = true
		}
	}
	if !found {
		t.Fatal("no log of the disconnect and its reason")
	}
	time.Sleep(200 * time.Millisecond)
	halt()
	if ioErr != nil || ios == 0 {
		t.Fatalf("the good guest: %d cycles, %v", ios, ioErr)
	}
	// an overflowing req_prod is refused the same way
	bad2 := e.guest("bad2")
	st := e.store()
	if err := xen.Attach(st, xen.AttachRequest{Domain: "bad2", LU: "disk1", Addr: xen.Addr{}}); err != nil {
		t.Fatal(err)
	}
	f2 := e.front(bad2, 0)
	f2.mu.Lock()
	f2.fr.SetReqProd(f2.fr.ReqProdPvt + 17)
	f2.mu.Unlock()
	f2.evt.Notify()
	select {
	case <-f2.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("req_prod 17 ahead did not disconnect the frontend")
	}
}

// SIGTERM: the backend closes every device cleanly while the guest runs
// I/O (commands in flight complete or fail, none hangs), unmaps the
// rings; started again, it re-attaches the guest, whose I/O works on the
// new device.
func TestShutdownAndRestart(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0"), spec(t, "disk1, 0:0:0:1")}}}
	})
	g := e.guest("g1")
	f := e.front(g, 0)
	clearUA(t, f, 0)
	var good, failed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(i)))
			for {
				err := rw(ctxT(t, 20*time.Second), f, 0, uint32(i*1000), 16, rnd)
				switch {
				case err == nil:
					good.Add(1)
				case errors.Is(err, errFrontClosed):
					return
				case strings.Contains(err.Error(), "host byte"):
					failed.Add(1) // DID_NO_CONNECT: the command failed cleanly
				default:
					t.Errorf("I/O during shutdown: %v", err)
					return
				}
			}
		}(i)
	}
	defer wg.Wait()
	time.Sleep(100 * time.Millisecond)
	e.stop()
	wg.Wait()
	t.Logf("before the stop: %d verified cycles; %d failed with a host error; frontend: %s", good.Load(), failed.Load(), f.Notes())
	st := e.store()
	if s, _ := st.Read(0, "/local/domain/0/backend/vscsi/1/0/state"); s != "6" {
		t.Fatalf("backend state after shutdown %q, want 6 (Closed)", s)
	}
	f.Close()

	// serve again: the device left Closed is re-created, the guest
	// probes a new one
	e.start()
	f2 := e.front(g, 0)
	defer f2.Close()
	clearUA(t, f2, 1)
	if err := rw(ctxT(t, 5*time.Second), f2, 1, 0, 64, rand.New(rand.NewSource(5))); err != nil {
		t.Fatalf("I/O after the restart: %v", err)
	}
}

// Two guests, two vhosts of one of them, one LUN shared: each ring is its
// own I_T nexus with its own initiator port ID.
func TestTwoGuestsTwoVhosts(t *testing.T) {
	var mu sync.Mutex
	inits := map[[16]byte]int{}
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{
			{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0"), spec(t, "disk1, 0:0:0:1")}},
			{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 1:0:0:0"), spec(t, "disk1, 1:0:0:1")}},
			{Domain: "g2", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0"), spec(t, "disk2, 0:0:0:1")}},
		}
		inner := c.OnMap
		c.OnMap = func(id [16]byte, l []xen.LUNMap) {
			mu.Lock()
			inits[id] = len(l)
			mu.Unlock()
			inner(id, l)
		}
	})
	g1, g2 := e.guest("g1"), e.guest("g2")
	fronts := []*vfront{e.front(g1, 0), e.front(g1, 1), e.front(g2, 0)}
	var wg sync.WaitGroup
	errs := make([]error, len(fronts)*2)
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	for i, f := range fronts {
		defer f.Close()
		for lun := uint16(0); lun < 2; lun++ {
			clearUA(t, f, lun)
			wg.Add(1)
			go func(i int, f *vfront, lun uint16) {
				defer wg.Done()
				_, errs[i*2+int(lun)] = verify(f, lun, int64(i*2+int(lun)), stop)
			}(i, f, lun)
		}
	}
	time.Sleep(300 * time.Millisecond)
	halt()
	for i, err := range errs {
		if err != nil {
			t.Errorf("front %d LUN %d: %v", i/2, i%2, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(inits) != 3 {
		t.Fatalf("%d initiator port IDs for 3 rings: %x", len(inits), inits)
	}
	if n := len(e.tgt.Nexuses()); n != 3 {
		t.Fatalf("%d I_T nexuses, want 3", n)
	}
}

// EncodeLUN is scsi.EncodeLUN (the transport does not import scsi).
func TestEncodeLUNMatchesSCSI(t *testing.T) {
	for n := 0; n < 1<<14; n++ {
		if xen.EncodeLUN(uint16(n)) != scsi.EncodeLUN(uint16(n)) {
			t.Fatalf("LUN %d: %#x vs %#x", n, xen.EncodeLUN(uint16(n)), scsi.EncodeLUN(uint16(n)))
		}
	}
}

// The transport knows no SCSI and uses no cgo.
func TestDependencies(t *testing.T) {
	for _, pkg := range []string{".", "./vscsiif", "./xenstore", "./xenbus", "./xendev"} {
		out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}} cgo={{len .CgoFiles}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		s := string(out)
		if strings.Contains(s, "github.com/srptgt/srptgt/scsi") || !strings.Contains(s, "cgo=0") || strings.Contains(s, " C ") {
			t.Errorf("%s imports %s", pkg, s)
		}
	}
}

var _ = xenbus.Closed

// A backend stopped right after the toolstack part wrote a device (serve
// failing at startup) still closes it, so the guest does not wait for a
// backend that is gone.
func TestShutdownClosesFreshDevices(t *testing.T) {
	e := newEnv(t, nil)
	e.guest("g1")
	st := e.store()
	if err := xen.Attach(st, xen.AttachRequest{Domain: "g1", LU: "disk0"}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	if s, _ := st.Read(0, "/local/domain/0/backend/vscsi/1/0/state"); s != "6" {
		t.Fatalf("backend state %q after shutdown, want 6 (Closed)", s)
	}
}

// flakyHV wraps the simulator: the first copies of each grant handle
// report GNTST_eagain for their first segment (without copying it).
type flakyHV struct {
	xen.Hypervisor
	left atomic.Int32
}

func (h *flakyHV) Grants() (xen.Grants, error) {
	g, err := h.Hypervisor.Grants()
	return &flakyGrants{Grants: g, h: h}, err
}

type flakyGrants struct {
	xen.Grants
	h *flakyHV
}

func (g *flakyGrants) Copy(segs []xen.CopySeg) error {
	if g.h.left.Add(-1) >= 0 && len(segs) > 1 {
		err := g.Grants.Copy(segs[1:])
		segs[0].Status = xen.GrantEAgain
		return err
	}
	return g.Grants.Copy(segs)
}

// GNTST_eagain is retried, not blamed on the frontend.
func TestGrantCopyEAgainRetried(t *testing.T) {
	e := newEnv(t, nil)
	e.l.Close()
	e.hv.Close()
	fh := &flakyHV{}
	var err error
	e.hv, err = xensim.Dial(e.sim.Path())
	if err != nil {
		t.Fatal(err)
	}
	fh.Hypervisor = e.hv
	cfg := e.cfg
	cfg.Hypervisor = fh
	cfg.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
	e.l, err = xen.Listen(cfg)
	if err != nil {
		t.Fatal(err)
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
			go func() { defer e.wg.Done(); e.srv.Serve(ch, e.port) }()
		}
	}()
	f := e.front(e.guest("g1"), 0)
	defer f.Close()
	clearUA(t, f, 0)
	fh.left.Store(20)
	rnd := rand.New(rand.NewSource(9))
	for i := 0; i < 10; i++ {
		if err := rw(ctxT(t, 5*time.Second), f, 0, uint32(i*16), 16, rnd); err != nil {
			t.Fatalf("I/O with transient GNTST_eagain: %v", err)
		}
	}
	if fh.left.Load() > 0 {
		t.Fatal("no copy saw GNTST_eagain")
	}
}

// A LOGICAL UNIT RESET (VSCSIIF_ACT_SCSI_RESET) while 16 commands are in
// flight: every request gets an answer (the ones the reset aborted with
// DID_RESET), so the guest's request slots are not leaked and I/O goes
// on.
func TestResetDuringIOAnswersEverything(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
	})
	f := e.front(e.guest("g1"), 0)
	defer f.Close()
	clearUA(t, f, 0)
	var wg sync.WaitGroup
	var done, reset, other atomic.Int32
	stop := make(chan struct{})
	for i := 0; i < 15; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := rw(ctxT(t, 10*time.Second), f, 0, uint32(i*512), 64, rnd)
				switch {
				case err == nil:
					done.Add(1)
				case strings.Contains(err.Error(), "host byte 8"):
					reset.Add(1)
				case strings.Contains(err.Error(), "status 0x02"):
					other.Add(1) // the reset's unit attention
				default:
					t.Errorf("I/O around the reset: %v", err)
					return
				}
			}
		}(i)
	}
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 3; i++ {
		rslt, err := f.TMF(ctxT(t, 10*time.Second), vscsiif.ActSCSIReset, scsi.EncodeLUN(0), 0)
		if err != nil || rslt != vscsiif.RsltResetSuccess {
			t.Fatalf("reset: %#x %v", rslt, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d verified cycles, %d commands answered DID_RESET, %d unit attentions", done.Load(), reset.Load(), other.Load())
	f.mu.Lock()
	free := len(f.free)
	f.mu.Unlock()
	if free != vscsiif.RingSize {
		t.Fatalf("%d of %d request slots free after the I/O stopped", free, vscsiif.RingSize)
	}
}

// A backend that dies without closing anything (SIGKILL: its XenStore
// connection, grant handles and event channels go with it) leaves the
// frontend Connected; a new backend resumes the live ring at rsp_prod,
// and the guest's I/O goes on on the same disks.
func TestCrashedBackendResumes(t *testing.T) {
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
	})
	f := e.front(e.guest("g1"), 0)
	defer f.Close()
	clearUA(t, f, 0)
	rnd := rand.New(rand.NewSource(4))
	if err := rw(ctxT(t, 5*time.Second), f, 0, 0, 8, rnd); err != nil {
		t.Fatal(err)
	}
	// the crash: every dom0 connection vanishes at once (the XenStore
	// connection first, so nothing the dying backend does reaches it)
	e.crash.crash()
	e.hv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.l.Shutdown(ctx)
	cancel()
	st := e.store()
	if s, _ := st.Read(0, "/local/domain/1/device/vscsi/0/state"); s != "4" {
		t.Fatalf("frontend state %q after the backend crashed, want 4", s)
	}
	// a request the dead backend never saw
	type res struct {
		r   *scsitest.Response
		err error
	}
	pending := make(chan res, 1)
	go func() {
		r, err := f.Do(ctxT(t, 10*time.Second), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RW10(0x28, 0, 0, 8), InLen: 4096})
		pending <- res{r, err}
	}()
	time.Sleep(50 * time.Millisecond)
	e.start()
	p := <-pending
	if p.err != nil {
		t.Fatalf("request queued across the crash: %v", p.err)
	}
	found := false
	for _, l := range e.logs.All() {
		if l.Message == "ring attached" && l.ContextMap()["resume"] == true {
			found = true
		}
	}
	if !found {
		t.Fatal("the new backend did not resume the ring")
	}
	for i := 0; i < 5; i++ {
		if err := rw(ctxT(t, 5*time.Second), f, 0, uint32(64+i*8), 8, rnd); err != nil && !strings.Contains(err.Error(), "status 0x02") {
			t.Fatalf("I/O after the resume: %v", err)
		}
	}
}

// crashHV records the XenStore connections it hands out, so a test can cut
// them as a dying process would.
type crashHV struct {
	xen.Hypervisor
	mu     sync.Mutex
	stores []xen.Store
	// onWrite, if set, sees every write of the backend's XenStore
	// connections before it is made
	onWrite atomic.Pointer[func(path, value string)]
	// onList, if set, sees every directory the backend listed, after
	// the listing and before the backend goes on
	onList atomic.Pointer[func(path string)]
}

func (h *crashHV) Store() (xen.Store, error) {
	st, err := h.Hypervisor.Store()
	if err == nil {
		h.mu.Lock()
		h.stores = append(h.stores, st)
		h.mu.Unlock()
		st = hookedStore{st, h}
	}
	return st, err
}

type hookedStore struct {
	xen.Store
	h *crashHV
}

func (s hookedStore) Write(tx xenstore.Tx, path, value string) error {
	if f := s.h.onWrite.Load(); f != nil {
		(*f)(path, value)
	}
	return s.Store.Write(tx, path, value)
}

func (s hookedStore) List(tx xenstore.Tx, path string) ([]string, error) {
	names, err := s.Store.List(tx, path)
	if f := s.h.onList.Load(); f != nil {
		(*f)(path)
	}
	return names, err
}

func (h *crashHV) crash() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.stores {
		st.Close()
	}
}

// writeLibxlDevice writes a vscsi device the way SUSE's libxl does for
// vscsi= in a guest config (not through srptgt xen attach): its own
// libxl_ctrl_index and feature-host keys, p-dev naming the host's H:C:T:L
// and p-devname the device, both directories made first with their
// permissions, then the keys.
func writeLibxlDevice(t *testing.T, st xen.Store, dom int, vhost int, featureHost, pdevname string) {
	t.Helper()
	be := fmt.Sprintf("/local/domain/0/backend/vscsi/%d/%d", dom, vhost)
	fe := fmt.Sprintf("/local/domain/%d/device/vscsi/%d", dom, vhost)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Mkdir(xenstore.None, be))
	must(st.SetPerms(xenstore.None, be, []xenstore.Perm{{Dom: 0}, {Dom: uint16(dom), Read: true}}))
	must(st.Mkdir(xenstore.None, fe))
	must(st.SetPerms(xenstore.None, fe, []xenstore.Perm{{Dom: uint16(dom)}, {Dom: 0, Read: true}}))
	for _, kv := range [][2]string{
		{be + "/frontend", fe}, {be + "/frontend-id", strconv.Itoa(dom)}, {be + "/online", "1"},
		{be + "/libxl_ctrl_index", strconv.Itoa(vhost)}, {be + "/feature-host", featureHost},
		{be + "/vscsi-devs/dev-0/p-dev", "8:0:0:0"}, {be + "/vscsi-devs/dev-0/p-devname", pdevname},
		{be + "/vscsi-devs/dev-0/v-dev", "0:0:0:0"}, {be + "/vscsi-devs/dev-0/state", "1"},
		{be + "/state", "1"},
		{fe + "/backend", be}, {fe + "/backend-id", "0"}, {fe + "/state", "1"},
	} {
		must(st.Write(xenstore.None, kv[0], kv[1]))
	}
}

// A device written by another toolstack in SUSE's libxl layout is served
// like one srptgt wrote: the LU is found by p-devname when p-dev is the
// host's address, and the guest's verified I/O goes through. Whole-host
// passthrough (feature-host=1) is refused: that vhost's LUN entries are
// not offered (logged once), the vhost itself connects empty.
func TestLibxlLayoutServed(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest("g1")
	st := e.store()
	writeLibxlDevice(t, st, int(g.ID()), 0, "0", "disk0")
	writeLibxlDevice(t, st, int(g.ID()), 1, "1", "disk0")
	f := e.front(g, 0)
	clearUA(t, f, 0)
	rnd := rand.New(rand.NewSource(5))
	for i := 0; i < 4; i++ {
		if err := rw(ctxT(t, 5*time.Second), f, 0, uint32(i*32), 16, rnd); err != nil {
			t.Fatalf("I/O on the libxl-written device: %v", err)
		}
	}
	f2 := e.front(g, 1)
	time.Sleep(100 * time.Millisecond)
	if luns := f2.LUNs(); len(luns) != 0 {
		t.Errorf("the feature-host=1 vhost offers LUNs %v", luns)
	}
	warned := 0
	for _, l := range e.logs.All() {
		if strings.Contains(l.Message, "feature-host=1") {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d log lines about the feature-host=1 device, want 1", warned)
	}
}

// A hot-added LUN is in the session's LUN map before the backend tells the
// guest about it (its entry's state Initialised): xen-scsifront scans the
// new address at once, and an INQUIRY that finds no LU there fails
// scsi_add_device for good (seen in the Xen VM's hot-plug test).
func TestHotAddMapsBeforeTellingTheGuest(t *testing.T) {
	var mu sync.Mutex
	mapped := map[uint16]bool{}
	e := newEnv(t, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{spec(t, "disk0, 0:0:0:0")}}}
		inner := c.OnMap
		c.OnMap = func(id [16]byte, l []xen.LUNMap) {
			mu.Lock()
			mapped = map[uint16]bool{}
			for _, m := range l {
				mapped[m.LUN] = true
			}
			mu.Unlock()
			inner(id, l)
		}
	})
	var told []string // "dev-N mapped|unmapped" at each state-Initialised write
	hook := func(path, value string) {
		if !strings.Contains(path, "/vscsi-devs/") || !strings.HasSuffix(path, "/state") || value != "3" {
			return
		}
		dev := strings.TrimSuffix(path[strings.LastIndex(path, "/vscsi-devs/")+len("/vscsi-devs/"):], "/state")
		lun := uint16(0)
		if dev == "dev-1" {
			lun = 1
		}
		mu.Lock()
		told = append(told, fmt.Sprintf("%s mapped=%v", dev, mapped[lun]))
		mu.Unlock()
	}
	e.crash.onWrite.Store(&hook)
	g := e.guest("g1")
	f := e.front(g, 0)
	clearUA(t, f, 0)
	st := e.store()
	if err := xen.Attach(st, xen.AttachRequest{Domain: "g1", LU: "disk1", Addr: xen.Addr{LUN: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guest to add LUN 1", func() bool { return hasAddr(f, 1) })
	e.crash.onWrite.Store(nil)
	mu.Lock()
	defer mu.Unlock()
	if len(told) < 2 {
		t.Fatalf("state writes seen: %v", told)
	}
	for _, s := range told {
		if !strings.HasSuffix(s, "mapped=true") {
			t.Errorf("the guest was told about a LUN before the session mapped it: %v", told)
			break
		}
	}
}

// A guest created and given a device while the backend cleans up after
// another guest's destruction keeps its device. The backend used to list
// the live domains first and the backend directories second, and removed
// the device of a guest that appeared in between as if its domain were
// gone; the test creates the guest exactly there.
func TestCleanupKeepsAGuestCreatedMeanwhile(t *testing.T) {
	e := newEnv(t, nil)
	st := e.store()
	dial := func(id xen.DomID, name string) *xensim.Guest {
		g, err := xensim.DialGuest(e.sim.Path(), xensim.GuestConfig{DomID: id, Name: name, Pages: 16384, Grants: 8192})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	old := dial(7, "old")
	if err := xen.Attach(st, xen.AttachRequest{Domain: "old", LU: "disk1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backend to take old's device in", func() bool {
		s, _ := st.Read(0, "/local/domain/0/backend/vscsi/7/0/state")
		return s == "2" // the backend took the device in (InitWait)
	})
	created := make(chan *xensim.Guest, 1)
	var once sync.Once
	hook := func(path string) {
		if path != "/local/domain" {
			return
		}
		if _, err := st.Read(0, "/local/domain/7"); err == nil {
			return // not the cleanup after old's destruction
		}
		once.Do(func() {
			g := dial(3, "g1")
			if err := xen.Attach(st, xen.AttachRequest{Domain: "g1", LU: "disk0"}); err != nil {
				t.Error(err)
			}
			created <- g
		})
	}
	e.crash.onList.Store(&hook)
	old.Close()
	var g *xensim.Guest
	select {
	case g = <-created:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend did not list the domains after a guest was destroyed")
	}
	e.crash.onList.Store(nil)
	f := e.front(g, 0)
	clearUA(t, f, 0)
	if err := rw(ctxT(t, 5*time.Second), f, 0, 0, 8, rand.New(rand.NewSource(9))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(0, "/local/domain/0/backend/vscsi/7"); err == nil {
		t.Error("the destroyed guest's device directory is still there")
	}
}
