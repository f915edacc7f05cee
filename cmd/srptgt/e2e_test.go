package main

// Tests of the built binary: the command line, exit statuses, signals.

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binDir   string // removed by TestMain
	binPath  string
	binErr   error
	binOnce  sync.Once
	binBuilt = "e2e-test-1.2.3"
)

// binary builds ./cmd/srptgt once, with the version set through -ldflags.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	binOnce.Do(func() {
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		binDir, binErr = os.MkdirTemp("", "srptgt-e2e-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "srptgt")
		cmd := exec.Command(goTool, "build", "-ldflags", "-X main.version="+binBuilt, "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

// exitCode runs the binary to completion.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestBinaryVersion(t *testing.T) {
	out, _, code := runBinary(t, "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out, "srptgt "+binBuilt+"\n") {
		t.Errorf("version %q does not start with the -ldflags version", out)
	}
	if !regexp.MustCompile(`(?m)^go: go1\.[0-9]+`).MatchString(out) {
		t.Errorf("no Go version in %q", out)
	}
	if want := "transports: " + transportsLine(); !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
		t.Errorf("no line %q in %q", want, out)
	}
}

func TestBinaryConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := writeConfig(t, dir, `luns:
  - name: disk0
    backstore: {kind: memory, size: 64MiB}
  - name: disk1
    backstore:
      kind: file
      path: /srv/disk1.img
      size: 1GiB
      block_size: 1000
`)
	out, errOut, code := runBinary(t, "config", "check", bad)
	if code == 0 {
		t.Fatalf("config check of a broken file exited 0")
	}
	want := bad + ":9: luns[1].backstore.block_size: 1000 is not allowed (512 or 4096)\n"
	if errOut != want || out != "" {
		t.Errorf("stderr %q, want %q; stdout %q", errOut, want, out)
	}

	good := writeConfig(t, dir, `logging: {format: json}
luns:
  - name: disk0
    backstore: {kind: memory, size: 64MiB}
  - name: disk1
    backstore: {kind: file, path: "%DIR%/disk1.img", size: 64MiB, create: true}
`)
	out, errOut, code = runBinary(t, "config", "check", good)
	if code != 0 || out != "OK: 2 LUs\n" || errOut != "" {
		t.Errorf("good config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "disk1.img")); !os.IsNotExist(err) {
		t.Errorf("config check created the backstore (stat: %v)", err)
	}

	_, errOut, code = runBinary(t, "config", "check")
	if code != 2 || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("no file: exit %d, stderr %q", code, errOut)
	}
}

// logLine is one line of the JSON log.
type logLine map[string]any

// TestBinaryServe: serve with a memory and a file LU starts, logs
// "serving", and on SIGTERM (and SIGINT) drains, flushes and closes every
// LU and exits 0.
func TestBinaryServe(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, `target: {state_dir: "%DIR%/state"}
logging: {format: json, level: info}
luns:
  - name: mem0
    backstore: {kind: memory, size: 8MiB}
  - name: file1
    lun: 5
    backstore: {kind: file, path: "%DIR%/file1.img", size: 24MiB, create: true}
`)
			cmd := exec.Command(binary(t), "serve", "--config", cfg, "--shutdown-timeout", "5s")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan logLine, 100)
			var raw []string
			var rawMu sync.Mutex
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					rawMu.Lock()
					raw = append(raw, sc.Text())
					rawMu.Unlock()
					var l logLine
					if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
						l = logLine{"msg": "NOT JSON: " + sc.Text()}
					}
					lines <- l
				}
			}()
			dump := func() string {
				rawMu.Lock()
				defer rawMu.Unlock()
				return strings.Join(raw, "\n")
			}
			var seen []logLine
			timeout := time.After(15 * time.Second)
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("serve exited before serving:\n%s", dump())
					}
					seen = append(seen, l)
					if l["msg"] == "serving" {
						break wait
					}
				case <-timeout:
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no serving line:\n%s", dump())
				}
			}
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for l := range lines {
				seen = append(seen, l)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Fatalf("serve exited with %v:\n%s", err, dump())
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("serve did not exit within 5s of %v", sig)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("shutdown took %v", d)
			}

			var msgs []string
			has := func(msg, lu string) bool {
				for _, l := range seen {
					if l["msg"] == msg && (lu == "" || l["lu"] == lu) {
						return true
					}
				}
				return false
			}
			for _, l := range seen {
				msgs = append(msgs, l["msg"].(string))
				if l["level"] == nil || l["ts"] == nil {
					t.Errorf("log line without level or ts: %v", l)
				}
			}
			for _, lu := range []string{"mem0", "file1"} {
				for _, msg := range []string{"LU ready", "flushed LU", "closed LU"} {
					if !has(msg, lu) {
						t.Errorf("no %q log line for %s; messages: %q", msg, lu, msgs)
					}
				}
			}
			for _, msg := range []string{"starting", "shutting down", "stopped"} {
				if !has(msg, "") {
					t.Errorf("no %q log line; messages: %q", msg, msgs)
				}
			}
			for _, l := range seen {
				if l["msg"] == "LU ready" && l["lu"] == "file1" {
					if l["size"] != float64(24<<20) || l["lun"] != float64(5) || l["backstore"] != "file" {
						t.Errorf("LU ready line for file1: %v", l)
					}
				}
			}
			st, err := os.Stat(filepath.Join(dir, "file1.img"))
			if err != nil || st.Size() != 24<<20 {
				t.Errorf("file1.img: %v, %v; want 24 MiB", st, err)
			}
			for _, lu := range []string{"mem0", "file1"} {
				if st, err := os.Stat(filepath.Join(dir, "state", lu)); err != nil || !st.IsDir() {
					t.Errorf("state directory of %s: %v", lu, err)
				}
			}
		})
	}
}

// TestBinaryServeFailures: a transport section that is not built, and a
// backstore that does not open, exit non-zero with the reason.
func TestBinaryServeFailures(t *testing.T) {
	dir := t.TempDir()
	rdma := writeConfig(t, dir, `luns:
  - name: disk0
    backstore: {kind: memory, size: 64MiB}
rdma:
  listen: ["169.254.10.1:5000"]
`)
	_, errOut, code := runBinary(t, "serve", "--config", rdma)
	want := rdma + ":4: rdma: the rdma transport is not built into this binary yet (transports: none)"
	if built("rdma") {
		// built, but this machine has no RDMA device at that address
		want = rdma + ":5: rdma.listen[0]: rdma: listen 169.254.10.1:5000: "
	}
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("rdma: exit %d, stderr:\n%s", code, errOut)
	}

	bad := writeConfig(t, dir, `luns:
  - name: disk0
    backstore: {kind: file, path: "%DIR%/missing.img"}
`)
	_, errOut, code = runBinary(t, "serve", "--config", bad)
	if code != 1 || !strings.Contains(errOut, bad+":3: luns[0].backstore.path: LU disk0: backstore open: open "+dir+"/missing.img: no such file or directory") {
		t.Errorf("missing file: exit %d, stderr:\n%s", code, errOut)
	}

	_, errOut, code = runBinary(t, "serve", "--config", filepath.Join(dir, "nonexistent.yaml"))
	if code != 1 || !strings.Contains(errOut, "nonexistent.yaml: cannot read: no such file or directory") {
		t.Errorf("missing config: exit %d, stderr:\n%s", code, errOut)
	}
}
