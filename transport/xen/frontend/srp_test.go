package frontend_test

import (
	"testing"
	"time"

	"github.com/srptgt/srptgt/srp/initiator"
)

func TestSRPRingVerifiedIO(t *testing.T) {
	e := newEnv(t, "g1")
	g := e.guest("g1")
	for _, mode := range []initiator.DescMode{initiator.Direct, initiator.Indirect, initiator.IndirectPartial} {
		conn, in := e.loginSRP(g, initiator.Config{Mode: mode, Segments: 5, InIU: 2})
		clearUA(t, in, 0)
		stop := make(chan struct{})
		time.AfterFunc(300*time.Millisecond, func() { close(stop) })
		n, err := verifiedIO(ctxT(t), in, 0, int64(mode), stop)
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if f := in.Faults(); len(f) > 0 {
			t.Fatalf("initiator faults: %v", f)
		}
		t.Logf("mode %d: %d verified write+read pairs", mode, n)
		if err := in.Logout(); err != nil {
			t.Fatal(err)
		}
		<-conn.Done()
	}
}
