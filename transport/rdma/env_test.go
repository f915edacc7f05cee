package rdma_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/rdma"
	"github.com/srptgt/srptgt/transport/rdma/fakeverbs"
)

// The fabric mirrors the VM: the target's soft RoCE device on a netdev with
// MAC 02:00:00:00:00:01 (port GUID 0000:00ff:fe00:0001), and an initiator
// device next to it.
const targetGUID = 0x000000fffe000001

var (
	targetIP   = netip.MustParseAddr("169.254.10.1")
	initIP     = netip.MustParseAddr("169.254.10.2")
	targetAddr = netip.AddrPortFrom(targetIP, rdma.DefaultPort)
	targetPort = rdma.PortIDFromGUID(targetGUID)
)

type env struct {
	t      testing.TB
	fab    *fakeverbs.Fabric
	tdev   *fakeverbs.Device
	idev   *fakeverbs.Device
	tr     *rdma.Transport
	l      *rdma.Listener
	tgt    *scsi.Target
	port   *scsi.Port
	srv    *srp.Server
	served chan error
}

type envOpt struct {
	cfg     rdma.Config
	scfg    srp.Config
	luSize  int64
	luCount int
	access  scsi.AccessFunc
	setup   func(*fakeverbs.Fabric, *fakeverbs.Device, *fakeverbs.Device)
}

func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	fab := fakeverbs.New()
	e := &env{t: t, fab: fab, served: make(chan error, 64)}
	e.tdev = fab.AddDevice("rxe_dum0", targetGUID, targetIP)
	e.idev = fab.AddDevice("rxe_ini0", 0x000000fffe000002, initIP)
	if o.setup != nil {
		o.setup(fab, e.tdev, e.idev)
	}
	cfg := o.cfg
	cfg.Provider = fab
	if cfg.ArenaSize == 0 {
		cfg.ArenaSize = 32 << 20
	}
	cfg.Logger = zap.NewNop()
	tr, err := rdma.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.tr = tr
	if o.luSize == 0 {
		o.luSize = 4 << 20
	}
	if o.luCount == 0 {
		o.luCount = 1
	}
	e.tgt = scsi.NewTarget(scsi.TargetConfig{})
	for i := 0; i < o.luCount; i++ {
		st, err := backstore.Open(backstore.Spec{Kind: "memory", Size: o.luSize})
		if err != nil {
			t.Fatal(err)
		}
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "disk" + string(rune('0'+i)), LUN: uint16(i), Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.tgt.AddLU(lu); err != nil {
			t.Fatal(err)
		}
	}
	if o.access != nil {
		e.tgt.SetAccess(o.access)
	}
	e.l, err = tr.Listen(targetAddr)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.l.DefaultPortID()
	if err != nil {
		t.Fatal(err)
	}
	e.port = e.tgt.AddPort(scsi.PortID(id), "rdma")
	scfg := o.scfg
	scfg.Target = e.tgt
	scfg.Logger = cfg.Logger
	e.srv = srp.NewServer(scfg)
	ctx, cancel := context.WithCancel(context.Background())
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			ch, err := e.l.Accept(ctx)
			if err != nil {
				return
			}
			go func() { e.served <- e.srv.Serve(ch, e.port) }()
		}
	}()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		if err := e.srv.Shutdown(sctx); err != nil {
			t.Errorf("session shutdown: %v", err)
		}
		cancel()
		<-acceptDone
		if err := e.l.Close(); err != nil {
			t.Errorf("listener close: %v", err)
		}
		if err := e.tr.Close(); err != nil {
			t.Errorf("transport close: %v", err)
		}
		for _, lu := range e.tgt.LUs() {
			lu.Close()
		}
		fab.Close()
	})
	return e
}

func initiatorID(n byte) [16]byte { return [16]byte{0xfe, 0x80, 8: 0, 14: 0xaa, 15: n} }

// conn dials the target from the initiator device.
func (e *env) conn() *rdma.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.tr.Dial(ctx, rdma.DialConfig{Dst: targetAddr, Src: initIP})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

func (e *env) dial(cfg initiator.Config) (*initiator.Initiator, error) {
	if cfg.TargetPortID == ([16]byte{}) {
		cfg.TargetPortID = targetPort
	}
	if cfg.InitiatorPortID == ([16]byte{}) {
		cfg.InitiatorPortID = initiatorID(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := e.conn()
	in, err := initiator.Dial(ctx, c, cfg)
	if err != nil {
		c.Close()
	}
	return in, err
}

func (e *env) mustDial(cfg initiator.Config) *initiator.Initiator {
	e.t.Helper()
	in, err := e.dial(cfg)
	if err != nil {
		e.t.Fatalf("login: %v", err)
	}
	e.t.Cleanup(func() {
		if f := in.Faults(); len(f) > 0 {
			e.t.Errorf("initiator saw protocol faults: %q", f)
		}
		in.Close()
	})
	return in
}

func rejectReason(err error) uint32 {
	var re *initiator.RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 0
}

func client(in scsitest.Initiator, lun uint16) *scsitest.Client {
	return &scsitest.Client{I: in, LUN: scsi.EncodeLUN(lun)}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
