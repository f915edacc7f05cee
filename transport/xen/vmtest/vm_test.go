//go:build !race

package vmtest

import (
	"strings"
	"testing"

	"github.com/srptgt/srptgt/test/vm"
)

// suites, in one boot: guest2 boots with guest1 and does its verified I/O
// while guest1 runs cross and xenctl (xenctl restarts srptgt: it is last).
var suites = []string{"guests", "cross", "xenctl"}

func TestXenGuestsCrossLifecycle(t *testing.T) {
	// (cross needs both transports in the one binary)
	ctx, cfg, srpt := vm.Prepare(t, "xen", "rdma")
	rr, err := vm.Run(ctx, cfg, "xen", "srptgt", suites, srpt)
	if err != nil {
		t.Errorf("harness: %v", err)
	}
	if rr == nil {
		return
	}
	if !strings.HasPrefix(rr.Setup, "OK") {
		t.Fatalf("set-up failed: %s\n%s", rr.Setup, rr.SetupLog)
	}
	specs, err := vm.SuiteTests(cfg, suites)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]vm.Result{}
	for _, r := range rr.Results {
		got[r.ID()] = r
	}
	for _, s := range specs {
		id := s.Suite + "/" + s.Name
		t.Run(id, func(t *testing.T) {
			r, ok := got[id]
			switch {
			case !ok:
				t.Errorf("no result (console log %s)", rr.LogPath)
			case r.Status == vm.Pass:
				t.Logf("PASS %s (%v)", r.Detail, r.Elapsed)
			default:
				t.Errorf("%s %s\n%s", r.Status, r.Detail, vm.LastLines(r.Log, 80))
			}
		})
	}
	t.Logf("console log: %s", rr.LogPath)
}
