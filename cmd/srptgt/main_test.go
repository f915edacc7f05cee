package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

// syncBuffer is a log destination tests read while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeConfig writes a configuration file into dir; %DIR% in text is
// replaced by dir.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "srptgt.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "%DIR%", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"serve"},
		{"serve", "--config"},
		{"serve", "--config", "x.yaml", "extra"},
		{"serve", "--shutdown-timeout", "soon", "--config", "x.yaml"},
		{"config", "check"},
		{"config", "check", "a.yaml", "b.yaml"},
		{"version", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
		if !strings.Contains(errb.String(), "srptgt --help") {
			t.Errorf("%q: stderr %q does not point at --help", args, errb.String())
		}
	}
}

func TestRunConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, `
luns:
  - name: disk0
    backstore: {kind: memory, size: 64MiB}
  - name: disk1
    backstore: {kind: file, path: "%DIR%/disk1.img", size: 64MiB, create: true}
`)
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", good}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != "OK: 2 LUs\n" || errb.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
	// check opens and creates nothing.
	if _, err := os.Stat(filepath.Join(dir, "disk1.img")); !os.IsNotExist(err) {
		t.Errorf("config check created the backstore file (stat: %v)", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("luns:\n  - name: a\n    backstore: {kind: memory, size: 1000}\n  - nme: b\n"), 0o644)
	out.Reset()
	errb.Reset()
	if code := run([]string{"config", "check", bad}, &out, &errb); code != exitFail {
		t.Fatalf("exit %d, want %d", code, exitFail)
	}
	want := bad + ":3: luns[0].backstore.size: 1000 (1000 bytes) is not allowed (a multiple of the block size 512)\n" +
		bad + ":4: luns[1].nme: unknown key (allowed: name, lun, type, backstore, read_only, serial, wwn, vendor, product, revision)\n" +
		bad + ":4: luns[1].name: required (1 to 64 of A-Z a-z 0-9 . _ -, but not . or ..)\n" +
		bad + ":4: luns[1].backstore: required (a mapping with kind null, memory, file or block and its settings)\n" +
		bad + ": 4 errors\n"
	if errb.String() != want || out.Len() != 0 {
		t.Errorf("stderr:\n%s\nwant:\n%s\nstdout %q", errb.String(), want, out.String())
	}

	// A transport section that is valid but not built: OK, with a warning.
	rdma := writeConfig(t, dir, "luns: [{name: a, backstore: {kind: memory, size: 1M}}]\nrdma: {listen: [\"192.0.2.1:5000\"]}\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"config", "check", rdma}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != "OK: 1 LUs\n" || built("rdma") == strings.Contains(errb.String(), "warning: rdma: the rdma transport is not built into this binary") {
		t.Errorf("stdout %q, stderr %q (rdma built: %v)", out.String(), errb.String(), built("rdma"))
	}

	out.Reset()
	errb.Reset()
	missing := filepath.Join(dir, "missing.yaml")
	if code := run([]string{"config", "check", missing}, &out, &errb); code != exitFail || errb.String() != missing+": cannot read: no such file or directory\n" {
		t.Errorf("missing file: exit %d, stderr %q", code, errb.String())
	}
}

func TestRunVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != "srptgt "+version || !strings.HasPrefix(lines[1], "go: go1.") {
		t.Errorf("version output %q", out.String())
	}
	// The VM harness reads this line: "transports: " and the names, or none.
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^transports: (none|[a-z]+( [a-z]+)*)$`).MatchString(last) || last != "transports: "+transportsLine() {
		t.Errorf("last line %q is not the transports line", last)
	}
}
