package srp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

// env is a target with LUs served by the session layer over the in-memory
// transport.
type env struct {
	t      testing.TB
	tgt    *scsi.Target
	port   *scsi.Port
	srv    *srp.Server
	l      *transport.MemListener
	cancel context.CancelFunc
	served chan error
}

var targetPort = scsi.PortID{0xfe, 0x80, 15: 0x01}

func newEnv(t testing.TB, mcfg transport.MemConfig, scfg srp.Config, stores ...backstore.Store) *env {
	t.Helper()
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	for i, st := range stores {
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "disk" + string(rune('0'+i)), LUN: uint16(i), Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := tgt.AddLU(lu); err != nil {
			t.Fatal(err)
		}
	}
	scfg.Target = tgt
	e := &env{t: t, tgt: tgt, port: tgt.AddPort(targetPort, "mem"), srv: srp.NewServer(scfg), l: transport.NewMemListener(mcfg), served: make(chan error, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
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
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		e.l.Close()
		for _, lu := range tgt.LUs() {
			lu.Close()
		}
	})
	return e
}

func memStore(t testing.TB, size int64) backstore.Store {
	st, err := backstore.Open(backstore.Spec{Kind: "memory", Size: size})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func initiatorID(n byte) [16]byte { return [16]byte{0xfe, 0x80, 14: 0xaa, 15: n} }

func (e *env) dial(cfg initiator.Config) (*initiator.Initiator, error) {
	if cfg.TargetPortID == ([16]byte{}) {
		cfg.TargetPortID = targetPort
	}
	if cfg.InitiatorPortID == ([16]byte{}) {
		cfg.InitiatorPortID = initiatorID(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return initiator.Dial(ctx, e.l.Dial(), cfg)
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
