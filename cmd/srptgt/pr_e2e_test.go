package main

// APTPL with the built binary: srptgt xensim + srptgt serve --xen-sim,
// two I_T nexuses (the two virtual SCSI hosts of one guest, driven by the
// Go vscsiif frontend in this process) on one LUN. The persistent
// reservation survives a graceful restart of serve and a kill -9.

import (
	"context"
	be "encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/prstate"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

type aptplE2E struct {
	t     *testing.T
	bin   string
	dir   string
	sock  string
	cfg   string
	serve *exec.Cmd
	slog  *syncBuffer
	done  chan error
}

func (x *aptplE2E) start() {
	x.t.Helper()
	x.slog = &syncBuffer{}
	x.serve = exec.Command(x.bin, "serve", "--config", x.cfg, "--xen-sim", x.sock, "--shutdown-timeout", "10s")
	x.serve.Stderr = x.slog
	if err := x.serve.Start(); err != nil {
		x.t.Fatal(err)
	}
	x.done = make(chan error, 1)
	go func() { x.done <- x.serve.Wait() }()
	waitFor(x.t, 20*time.Second, "serve listening", func() bool {
		select {
		case err := <-x.done:
			x.t.Fatalf("serve exited: %v\n%s", err, x.slog.String())
		default:
		}
		return strings.Contains(x.slog.String(), "serving")
	})
}

func (x *aptplE2E) checkRestored(when string) {
	x.t.Helper()
	if !strings.Contains(x.slog.String(), `restored persistent reservations	{"lu": "shared", "state": "aptpl=true registrations=2 reservation=WE"}`) {
		x.t.Errorf("%s: log:\n%s", when, x.slog.String())
	}
}

func (x *aptplE2E) stop(sig syscall.Signal) {
	x.t.Helper()
	x.serve.Process.Signal(sig)
	select {
	case err := <-x.done:
		if sig == syscall.SIGTERM && err != nil {
			x.t.Fatalf("serve: %v\n%s", err, x.slog.String())
		}
	case <-time.After(20 * time.Second):
		x.t.Fatalf("serve did not exit on %v", sig)
	}
}

// guestNexus is one virtual SCSI host of the guest: an I_T nexus.
type guestNexus struct {
	f   *frontend.VSCSI
	lun uint64
}

func (g *guestNexus) do(t *testing.T, cdb, out []byte, in int) *scsitest.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := g.f.Do(ctx, &scsitest.Request{LUN: g.lun, CDB: cdb, DataOut: out, InLen: in})
	if err != nil {
		t.Fatalf("CDB % x: %v", cdb, err)
	}
	return resp
}

func (g *guestNexus) clearUA(t *testing.T) {
	t.Helper()
	for i := 0; i < 8; i++ {
		if r := g.do(t, scsitest.TestUnitReady(), nil, 0); r.Status == scsi.StatusGood {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

func (x *aptplE2E) dialNexus(g *xensim.Guest, vhost int) *guestNexus {
	t := x.t
	t.Helper()
	// As the bench guest does: the device is probed again once the
	// restarted backend has re-created it.
	var f *frontend.VSCSI
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		f, err = frontend.DialVSCSI(ctx, g, frontend.VSCSIConfig{VHost: vhost})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vscsi host %d: %v\nserve log:\n%s", vhost, err, x.slog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	l, ok := f.LUNByName("shared")
	if !ok {
		t.Fatalf("vscsi host %d: no LUN shared in %v", vhost, f.LUNs())
	}
	n := &guestNexus{f: f, lun: l.SAM()}
	n.clearUA(t)
	return n
}

// check verifies the state both nexuses see: A (0xA) holds Write
// Exclusive, B (0xB) is registered; A writes, B gets RESERVATION CONFLICT.
func checkFenced(t *testing.T, a, b *guestNexus, when string) {
	t.Helper()
	r := b.do(t, scsitest.PRIn(scsitest.PRInReadKeys, 64), nil, 64)
	if r.Status != scsi.StatusGood || be.BigEndian.Uint32(r.Data[4:]) != 16 ||
		be.BigEndian.Uint64(r.Data[8:]) != 0xA || be.BigEndian.Uint64(r.Data[16:]) != 0xB {
		t.Fatalf("%s: READ KEYS %v % x", when, r.Err(), r.Data)
	}
	r = b.do(t, scsitest.PRIn(scsitest.PRInReadReservation, 64), nil, 64)
	if r.Status != scsi.StatusGood || be.BigEndian.Uint32(r.Data[4:]) != 16 || be.BigEndian.Uint64(r.Data[8:]) != 0xA || r.Data[21] != scsitest.PRTypeWE {
		t.Fatalf("%s: READ RESERVATION %v % x", when, r.Err(), r.Data)
	}
	block := make([]byte, 512)
	if r := a.do(t, scsitest.RW10(0x2A, 0, 7, 1), block, 0); r.Status != scsi.StatusGood {
		t.Fatalf("%s: the holder's WRITE: %v", when, r.Err())
	}
	if r := b.do(t, scsitest.RW10(0x2A, 0, 7, 1), block, 0); r.Status != scsi.StatusReservationConflict {
		t.Fatalf("%s: the fenced WRITE: status %#x %v", when, r.Status, r.Err())
	}
}

func TestBinaryAPTPLRestartAndKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process end to end")
	}
	x := &aptplE2E{t: t, bin: binary(t), dir: t.TempDir()}
	x.sock = filepath.Join(x.dir, "sim.sock")
	x.cfg = writeConfig(t, x.dir, `
target: {state_dir: "%DIR%/state"}
luns:
  - name: shared
    backstore: {kind: memory, size: 8MiB}
xen:
  guests:
    - {domain: guest1, luns: ["shared, 0:0:0:0"]}
    - {domain: guest1, luns: ["shared, 1:0:0:0"]}
`)
	sim := exec.Command(x.bin, "xensim", "--socket", x.sock, "--log-level", "warn")
	sim.Stderr = os.Stderr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Process.Signal(syscall.SIGTERM); sim.Wait() })
	waitFor(t, 10*time.Second, "the simulator", func() bool {
		c, err := net.Dial("unixpacket", x.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	x.start()
	t.Cleanup(func() {
		if x.serve != nil && x.serve.ProcessState == nil {
			x.stop(syscall.SIGKILL)
		}
	})
	g, err := xensim.DialGuest(x.sock, xensim.GuestConfig{Name: "guest1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	a, b := x.dialNexus(g, 0), x.dialNexus(g, 1)

	// A registers with APTPL=1 and reserves; B registers.
	for _, s := range []struct {
		n     *guestNexus
		sa    byte
		typ   byte
		param scsitest.PROutParams
	}{
		{a, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0xA, APTPL: true}},
		{b, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0xB, APTPL: true}},
		{a, scsitest.PROutReserve, scsitest.PRTypeWE, scsitest.PROutParams{Key: 0xA}},
	} {
		p := s.param.Bytes()
		if r := s.n.do(t, scsitest.PROut(s.sa, 0, s.typ, uint32(len(p))), p, 0); r.Status != scsi.StatusGood {
			t.Fatalf("PERSISTENT RESERVE OUT %d: %v", s.sa, r.Err())
		}
	}
	checkFenced(t, a, b, "before the restarts")
	_, st, err := prstate.Load(filepath.Join(x.dir, "state", "shared"))
	if err != nil || st == nil || st.String() != "aptpl=true registrations=2 reservation=WE" {
		t.Fatalf("state file: %v %v", st, err)
	}

	// A graceful restart: the guest detaches its disks, serve stops on
	// SIGTERM and starts again, the guest attaches anew.
	a.f.Close()
	b.f.Close()
	x.stop(syscall.SIGTERM)
	x.start()
	a, b = x.dialNexus(g, 0), x.dialNexus(g, 1)
	x.checkRestored("after SIGTERM and restart")
	checkFenced(t, a, b, "after SIGTERM and restart")

	// kill -9 with the guest attached: the new serve resumes the rings
	// (they live in guest memory); the frontends carry on on new I_T
	// nexuses with the same initiator port IDs.
	x.stop(syscall.SIGKILL)
	x.start()
	waitFor(t, 20*time.Second, "both rings resumed", func() bool {
		return strings.Count(x.slog.String(), "\tsrp\tlogin\t") == 2
	})
	x.checkRestored("after kill -9 and restart")
	a.clearUA(t)
	b.clearUA(t)
	checkFenced(t, a, b, "after kill -9 and restart")
	a.f.Close()
	b.f.Close()
	x.stop(syscall.SIGTERM)
}
