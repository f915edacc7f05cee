package vm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootParsesConsole runs boot() against a fake qemu-system-x86_64 that
// prints a console transcript, and checks the parsed results (no VM, so it
// also runs with -short).
func TestBootParsesConsole(t *testing.T) {
	dir := t.TempDir()
	console := `SRPTGT-INFO kernel 6.1.0-test
SRPTGT-LOG-BEGIN setup/rdma
| setting up
SRPTGT-LOG-END setup/rdma
SRPTGT-SETUP OK
SRPTGT-LOG-BEGIN s/one
| line 1
| line 2
SRPTGT-LOG-END s/one
SRPTGT-TEST s/one PASS fine (3s)
[   12.5] BUG: unable to handle page fault for address: 0
[   12.6] RIP: e030:some_function+0x1/0x2
SRPTGT-TEST s/two FAIL broke (1s)
`
	fake := "#!/bin/sh\ncat <<'EOT'\n" + console + "EOT\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	rr := &RunResult{Profile: "rdma", Target: "lio", Info: map[string]string{}, LogPath: filepath.Join(dir, "console.log")}
	specs := []TestSpec{{"s", "one"}, {"s", "two"}, {"s", "three"}, {"s", "four"}}
	err := Config{}.boot(context.Background(), rr, nil, specs)
	if err == nil || !strings.Contains(err.Error(), "VM ended before reporting") {
		t.Errorf("boot error = %v, want VM ended before reporting", err)
	}
	if rr.Setup != "OK" || rr.Info["kernel"] != "6.1.0-test" || !strings.Contains(rr.SetupLog, "setting up") {
		t.Errorf("setup %q info %v setup log %q", rr.Setup, rr.Info, rr.SetupLog)
	}
	want := []struct {
		id     string
		status Status
		detail string
	}{
		{"s/one", Pass, "fine"},
		{"s/two", Fail, "broke [console: BUG: unable to handle page fault for address: 0; RIP: e030:some_function+0x1/0x2]"},
		{"s/three", Fail, "no result (running when the VM ended): VM ended before reporting (console: BUG: unable to handle page fault for address: 0; RIP: e030:some_function+0x1/0x2)"},
		{"s/four", Fail, "no result: VM ended before reporting (console: BUG: unable to handle page fault for address: 0; RIP: e030:some_function+0x1/0x2)"},
	}
	if len(rr.Results) != len(want) {
		t.Fatalf("got %d results: %+v", len(rr.Results), rr.Results)
	}
	for i, w := range want {
		r := rr.Results[i]
		if r.ID() != w.id || r.Status != w.status || r.Detail != w.detail {
			t.Errorf("result %d = %s %s %q, want %s %s %q", i, r.ID(), r.Status, r.Detail, w.id, w.status, w.detail)
		}
	}
	if r := rr.Results[0]; r.Log != "line 1\nline 2\n" || r.Elapsed.Seconds() != 3 {
		t.Errorf("s/one log %q elapsed %v", r.Log, r.Elapsed)
	}
	b, _ := os.ReadFile(rr.LogPath)
	if !strings.Contains(string(b), "SRPTGT-TEST s/two FAIL broke") {
		t.Errorf("console log not written: %q", b)
	}
}

func TestRunOrderAndSuites(t *testing.T) {
	got := strings.Join(RunOrder("xen", ForProfile("xen", append(AllSuites, "guests", "cross", "xenctl"))), " ")
	if got != "data sbc tmf perf guests cross identity pr xenctl" {
		t.Errorf("xen order = %q", got)
	}
	if got := strings.Join(RunOrder("rdma", ForProfile("rdma", AllSuites)), " "); got != "identity data sbc tmf pr perf" {
		t.Errorf("rdma order = %q", got)
	}
	cfg, _ := DefaultConfig()
	specs, err := SuiteTests(cfg, AllSuites)
	if err != nil || len(specs) < 25 {
		t.Fatalf("SuiteTests: %d specs, %v", len(specs), err)
	}
}

// Each profile runs only its own suites: the second Xen guest and the Xen
// control suites never reach the rdma VM, the srp_* suites never the Xen one.
func TestForProfile(t *testing.T) {
	all := append(append([]string{}, AllSuites...), "pr_fence", "guests", "cross", "xenctl", "xenperf", "srp_login")
	got := map[string]string{
		"rdma": strings.Join(ForProfile("rdma", all), " "),
		"xen":  strings.Join(ForProfile("xen", all), " "),
	}
	want := map[string]string{
		"rdma": "identity data sbc tmf pr perf pr_fence srp_login",
		"xen":  "identity data sbc tmf pr perf guests cross xenctl xenperf",
	}
	for p := range want {
		if got[p] != want[p] {
			t.Errorf("ForProfile(%s) = %q, want %q", p, got[p], want[p])
		}
	}
}

// A second guest's console, relayed with a "[guest2] " prefix, interleaves
// with the first guest's line by line: each keeps its own log block, no
// result line is lost inside the other's block, and the second guest's
// end is not the VM's.
func TestBootSeparatesGuestStreams(t *testing.T) {
	dir := t.TempDir()
	console := `SRPTGT-SETUP OK
[guest2] SRPTGT-LOG-BEGIN g/two
SRPTGT-LOG-BEGIN s/one
[guest2] | guest2 line
| guest1 line
SRPTGT-LOG-END s/one
SRPTGT-TEST s/one PASS first (2s)
[guest2] SRPTGT-LOG-END g/two
[guest2] SRPTGT-TEST g/two PASS second (5s)
[guest2] SRPTGT-INFO kernel 6.1.0-guest2
[guest2] SRPTGT-VM-DONE
SRPTGT-TEST s/three PASS after guest2 ended (1s)
SRPTGT-VM-DONE
`
	fake := "#!/bin/sh\ncat <<'EOT'\n" + console + "EOT\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	rr := &RunResult{Profile: "xen", Target: "srptgt", Info: map[string]string{}, LogPath: filepath.Join(dir, "console.log")}
	if err := (Config{}).boot(context.Background(), rr, nil, []TestSpec{{"s", "one"}, {"g", "two"}, {"s", "three"}}); err != nil {
		t.Fatalf("boot: %v", err)
	}
	if rr.Info["guest2-kernel"] != "6.1.0-guest2" {
		t.Errorf("guest2's info: %v", rr.Info)
	}
	if len(rr.Results) != 3 {
		t.Fatalf("got %d results: %+v", len(rr.Results), rr.Results)
	}
	for i, w := range []struct{ id, detail, log string }{
		{"s/one", "first", "guest1 line\n"},
		{"g/two", "second", "guest2 line\n"},
		{"s/three", "after guest2 ended", ""},
	} {
		r := rr.Results[i]
		if r.ID() != w.id || r.Status != Pass || r.Detail != w.detail || r.Log != w.log {
			t.Errorf("result %d = %s %s %q log %q, want %s PASS %q log %q", i, r.ID(), r.Status, r.Detail, r.Log, w.id, w.detail, w.log)
		}
	}
}
