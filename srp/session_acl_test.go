package srp_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

// An access list change: a channel that would join the I_T nexus of an
// initiator the access function now refuses is rejected like a first
// login (SRP_LOGIN_REJ, SRP r16a 6.4), and LogoutInitiator ends the
// nexus's channels with SRP_T_LOGOUT (6.7); after that no login of the
// initiator succeeds.
func TestAccessWithdrawn(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 1<<20))
	lu := e.tgt.LUs()[0]
	var allowed atomic.Bool
	allowed.Store(true)
	e.tgt.SetAccess(func(id scsi.NexusID, p *scsi.Port) ([]scsi.Mapping, error) {
		if !allowed.Load() {
			return nil, scsi.ErrAccessDenied
		}
		return []scsi.Mapping{{LUN: 0, LU: lu}}, nil
	})
	first := e.mustDial(initiator.Config{})
	if err := client(first, 0).ClearUA(); err != nil {
		t.Fatal(err)
	}
	allowed.Store(false)
	e.tgt.Remap()
	if _, err := e.dial(initiator.Config{MultiChannel: srp.MultiChanMulti}); rejectReason(err) != srp.RejUnableToEstablish {
		t.Fatalf("a second channel after the access was withdrawn: %v", err)
	}
	e.srv.LogoutInitiator(scsi.PortID(initiatorID(1)))
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the channel was not logged out")
	}
	if lo := first.TargetLogout(); lo == nil || lo.Reason != srp.TLogoutNoReason {
		t.Fatalf("SRP_T_LOGOUT %+v", lo)
	}
	waitChannels(t, e, 0)
	if _, err := e.dial(initiator.Config{}); rejectReason(err) != srp.RejUnableToEstablish {
		t.Fatalf("a login after the logout: %v", err)
	}
}
