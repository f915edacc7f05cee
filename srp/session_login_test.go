package srp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

// rawLogin sends req over a fresh in-memory connection and returns the
// target's answer.
func rawLogin(t *testing.T, e *env, req srp.LoginReq) (*srp.LoginRsp, *srp.LoginRej, *transport.MemConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := e.l.Dial()
	rsp, rej, err := conn.Login(ctx, &req)
	if err != nil && !errors.Is(err, transport.ErrRejected) {
		t.Fatalf("login: %v", err)
	}
	return rsp, rej, conn
}

func goodLogin() srp.LoginReq {
	return srp.LoginReq{
		Tag:             0x1234,
		MaxITIULen:      8260,
		BufFmt:          srp.BufFmtDirect | srp.BufFmtIndirect,
		InitiatorPortID: initiatorID(7),
		TargetPortID:    targetPort,
	}
}

// Reference: SRP r16a 6.2-6.4 (SRP_LOGIN_REQ / RSP / REJ) and table 8 (the
// reject reasons).
func TestLoginRejectReasons(t *testing.T) {
	e := newEnv(t, transport.MemConfig{MaxITIU: 16384}, srp.Config{}, memStore(t, 1<<20))
	cases := []struct {
		name   string
		mutate func(*srp.LoginReq)
		reason uint32
	}{
		{"wrong target port", func(r *srp.LoginReq) { r.TargetPortID[15] ^= 0xFF }, srp.RejUnableToAssociate},
		{"IU length too small", func(r *srp.LoginReq) { r.MaxITIULen = 63 }, srp.RejUnableToEstablish},
		{"IU length too large", func(r *srp.LoginReq) { r.MaxITIULen = 16385 }, srp.RejITIULenTooLarge},
		{"unsupported buffer format", func(r *srp.LoginReq) { r.BufFmt |= 0x0008 }, srp.RejBufFmtUnsupported},
		{"reserved multi-channel action", func(r *srp.LoginReq) { r.MultiChannel = 2 }, srp.RejUnableToEstablish},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := goodLogin()
			tc.mutate(&req)
			rsp, rej, _ := rawLogin(t, e, req)
			if rsp != nil || rej == nil {
				t.Fatalf("login accepted: %+v", rsp)
			}
			want := srp.LoginRej{Tag: req.Tag, Reason: tc.reason, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect}
			if *rej != want {
				t.Fatalf("reject %+v, want %+v", *rej, want)
			}
		})
	}
	t.Run("accepted", func(t *testing.T) {
		req := goodLogin()
		rsp, rej, conn := rawLogin(t, e, req)
		if rej != nil {
			t.Fatalf("rejected: %+v", rej)
		}
		defer conn.Close()
		want := srp.LoginRsp{Tag: req.Tag, ReqLimDelta: 128, MaxITIULen: 8260, MaxTIIULen: 256,
			BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect, MultiChannel: srp.MultiChanNoExisting}
		if *rsp != want {
			t.Fatalf("login response %+v, want %+v", *rsp, want)
		}
	})
}

func TestLoginRejectAccessDenied(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	allowed := scsi.PortID(initiatorID(1))
	lu := e.tgt.LUs()[0]
	e.tgt.SetAccess(func(id scsi.NexusID, p *scsi.Port) ([]scsi.Mapping, error) {
		if id.Initiator != allowed {
			return nil, scsi.ErrAccessDenied
		}
		return []scsi.Mapping{{LUN: 0, LU: lu}}, nil
	})
	_, err := e.dial(initiator.Config{InitiatorPortID: initiatorID(2)})
	if rejectReason(err) != srp.RejUnableToEstablish {
		t.Fatalf("login from an initiator outside the ACL: %v", err)
	}
	in := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(1)})
	if err := client(in, 0).ClearUA(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginRejectTooFewCredits(t *testing.T) {
	e := newEnv(t, transport.MemConfig{Credits: 1}, srp.Config{}, memStore(t, 1<<20))
	_, err := e.dial(initiator.Config{})
	if rejectReason(err) != srp.RejInsufficientResources {
		t.Fatalf("login on a one-slot channel: %v", err)
	}
}

func TestLoginRejectWhileShuttingDown(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := e.dial(initiator.Config{})
	if rejectReason(err) != srp.RejUnableToEstablish {
		t.Fatalf("login during shutdown: %v", err)
	}
}

// Reference: SRP r16a 5.4.2 — a login with MULTI-CHANNEL ACTION 00b
// terminates the I_T nexus's other channels (SRP_T_LOGOUT reason 4); with
// 01b the new channel joins them.
func TestMultiChannelActions(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	first := e.mustDial(initiator.Config{})
	if err := client(first, 0).ClearUA(); err != nil {
		t.Fatal(err)
	}
	second := e.mustDial(initiator.Config{MultiChannel: srp.MultiChanMulti})
	if got := second.LoginResponse().MultiChannel; got != srp.MultiChanMaintained {
		t.Fatalf("multi-channel result %d, want maintained", got)
	}
	// Both channels serve the same nexus: no new unit attention on the
	// second one, and both work.
	for _, in := range []*initiator.Initiator{first, second} {
		r, err := client(in, 0).Do([]byte{0, 0, 0, 0, 0, 0}, nil, 0)
		if err != nil || r.Status != scsi.StatusGood {
			t.Fatalf("TEST UNIT READY: %v %+v", err, r)
		}
	}
	third := e.mustDial(initiator.Config{MultiChannel: srp.MultiChanSingle})
	if got := third.LoginResponse().MultiChannel; got != srp.MultiChanTerminated {
		t.Fatalf("multi-channel result %d, want terminated", got)
	}
	for i, in := range []*initiator.Initiator{first, second} {
		select {
		case <-in.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("channel %d not terminated", i)
		}
		if lo := in.TargetLogout(); lo == nil || lo.Reason != srp.TLogoutMultiChannelAction {
			t.Fatalf("channel %d: SRP_T_LOGOUT %+v, want reason %d", i, lo, srp.TLogoutMultiChannelAction)
		}
	}
	r, err := client(third, 0).Do([]byte{0, 0, 0, 0, 0, 0}, nil, 0)
	if err != nil || r.Status != scsi.StatusGood {
		t.Fatalf("TEST UNIT READY on the surviving channel: %v %+v", err, r)
	}
}

// Reference: SAM-5 6.3 — a new I_T nexus gets POWER ON, RESET, OR BUS DEVICE
// RESET OCCURRED; one that was lost and comes back gets I_T NEXUS LOSS
// OCCURRED.
func TestNexusLossUnitAttention(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	in := e.mustDial(initiator.Config{})
	expectUA(t, client(in, 0), scsi.ASCPowerOnReset)
	if err := in.Logout(); err != nil {
		t.Fatal(err)
	}
	waitChannels(t, e, 0)
	in2 := e.mustDial(initiator.Config{})
	expectUA(t, client(in2, 0), scsi.ASCITNexusLoss)
}

func waitChannels(t *testing.T, e *env, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Channels() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d channels, want %d", e.srv.Channels(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
