package main

// Cross-process end to end on the simulated hypervisor, with the built
// binary: srptgt xensim + srptgt serve --xen-sim + srptgt bench --xen-sim
// --verify, for both ring formats.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srptgt/srptgt/internal/bench"
)

type xenE2E struct {
	t     *testing.T
	bin   string
	dir   string
	sock  string
	cfg   string
	sim   *exec.Cmd
	serve *exec.Cmd
	slog  *syncBuffer
}

func newXenE2E(t *testing.T) *xenE2E {
	if testing.Short() {
		t.Skip("cross-process end to end")
	}
	x := &xenE2E{t: t, bin: binary(t), dir: t.TempDir()}
	x.sock = filepath.Join(x.dir, "sim.sock")
	x.cfg = filepath.Join(x.dir, "srptgt.yaml")
	conf := `luns:
  - name: disk0
    backstore: {kind: memory, size: 320MiB}
  - name: disk1
    lun: 1
    backstore: {kind: memory, size: 64MiB}
  - name: disk2
    lun: 2
    backstore: {kind: memory, size: 64MiB}
xen:
  guests:
    - {domain: guest1, luns: ["disk0, 0:0:0:0"]}
    - {domain: guest2, luns: ["disk0, 0:0:0:0"]}
    - {domain: guest3, luns: ["disk2, 0:0:0:0"]}
    - {domain: guest4, luns: ["disk0, 0:0:0:0"]}
    - {domain: guest5, luns: ["disk0, 0:0:0:0"]}
    - {domain: guest6, luns: ["disk0, 0:0:0:0"]}
    - {domain: guest7, luns: ["disk2, 0:0:0:0"]}
    - {domain: guest8, luns: ["disk0, 0:0:0:0"]}
`
	if err := os.WriteFile(x.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	x.sim = exec.Command(x.bin, "xensim", "--socket", x.sock, "--log-level", "warn")
	x.sim.Stderr = os.Stderr
	if err := x.sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		x.sim.Process.Signal(syscall.SIGTERM)
		x.sim.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unixpacket", x.sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the simulator did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	x.startServe()
	t.Cleanup(x.stopServe)
	return x
}

func (x *xenE2E) startServe() {
	x.slog = &syncBuffer{}
	x.serve = exec.Command(x.bin, "serve", "--config", x.cfg, "--xen-sim", x.sock, "--shutdown-timeout", "10s")
	x.serve.Stderr = x.slog
	if err := x.serve.Start(); err != nil {
		x.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(x.slog.String(), "listening") {
		if time.Now().After(deadline) {
			x.t.Fatalf("serve did not start:\n%s", x.slog)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (x *xenE2E) stopServe() {
	if x.serve == nil {
		return
	}
	x.serve.Process.Signal(syscall.SIGTERM)
	err := x.serve.Wait()
	if err != nil {
		x.t.Errorf("serve exited: %v\n%s", err, x.slog)
	}
	x.serve = nil
}

type benchRun struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	errb   syncBuffer
	done   chan error
	result bench.Result
}

// bench starts srptgt bench --xen-sim with args.
func (x *xenE2E) bench(dom int, ring string, args ...string) *benchRun {
	a := append([]string{"bench", "--xen-sim", x.sock, "--domain", fmt.Sprint(dom), "--ring", ring, "--json"}, args...)
	b := &benchRun{cmd: exec.Command(x.bin, a...), done: make(chan error, 1)}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errb
	if err := b.cmd.Start(); err != nil {
		x.t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	return b
}

// wait waits for the run and checks it verified without error or fault.
func (b *benchRun) wait(t *testing.T, what string) *bench.Result {
	t.Helper()
	var err error
	select {
	case err = <-b.done:
	case <-time.After(3 * time.Minute):
		b.cmd.Process.Kill()
		t.Fatalf("%s: bench hung\n%s", what, b.errb.String())
	}
	if jerr := json.Unmarshal(b.out.Bytes(), &b.result); jerr != nil {
		t.Fatalf("%s: %v (result %q)\n%s", what, err, b.out.String(), lastLines(b.errb.String(), 40))
	}
	if err != nil {
		t.Fatalf("%s: bench failed: %v\n%s", what, err, lastLines(b.errb.String(), 20))
	}
	r := &b.result
	if r.Errors != 0 || r.Mismatches != 0 || !r.Verify || r.Verified == 0 {
		t.Fatalf("%s: errors %d mismatches %d verified %d (%s)", what, r.Errors, r.Mismatches, r.Verified, r.FirstError)
	}
	if !strings.Contains(b.errb.String(), " 0 protocol faults") {
		t.Fatalf("%s: protocol faults:\n%s", what, lastLines(b.errb.String(), 20))
	}
	ios := int64(0)
	for _, s := range []*bench.Stats{r.Read, r.Write} {
		if s != nil {
			ios += s.IOs
		}
	}
	t.Logf("%s: %d I/Os, %d blocks verified, 0 errors, 0 mismatches, 0 protocol faults; %s", what, ios, r.Verified,
		strings.TrimSpace(lastLines(b.errb.String(), 1)))
	return r
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (x *xenE2E) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command(x.bin, args...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("srptgt %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// xsWait waits for a XenStore node to hold want.
func (x *xenE2E) xsWait(path, want string) {
	x.t.Helper()
	if !x.xsPoll(path, want) {
		x.t.Fatalf("%s is not %q\nserve:\n%s", path, want, lastLines(x.slog.String(), 30))
	}
}

func (x *xenE2E) xsPoll(path, want string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command(x.bin, "xensim", "--socket", x.sock, "xenstore", "read", path).Output()
		if err == nil && strings.TrimSpace(string(out)) == want {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestXenSimEndToEnd(t *testing.T) {
	x := newXenE2E(t)
	// Each guest is a new domain with a new ID, as on Xen, which does not
	// hand a domain ID out again at once.
	for i, ring := range []string{"vscsiif", "srp"} {
		d := 4 * i
		t.Run(ring, func(t *testing.T) {
			x.t = t
			// attach; 256 MiB of random writes, then everything written
			// read back and verified
			b := x.bench(d+1, ring, "--lun", "disk0", "--rw", "randwrite", "--bs", "64k", "--size", "256m",
				"--iodepth", "16", "--time", "6s", "--verify")
			r := b.wait(t, ring+": 256 MiB random write + verified read-back")
			if r.Write == nil || r.Write.Bytes < 256<<20 {
				t.Logf("wrote %d bytes in the time given", r.Write.Bytes)
			}

			// hot-add and hot-remove a LUN of guest1 (vscsiif) while
			// guest2 runs verified I/O over this ring
			g1 := x.bench(d+2, "vscsiif", "--lun", "disk0", "--rw", "randread", "--time", "8s", "--iodepth", "4")
			g2 := x.bench(d+3, ring, "--lun", "disk2", "--rw", "randrw", "--bs", "8k", "--time", "8s", "--iodepth", "8", "--verify")
			if !x.xsPoll(fmt.Sprintf("/local/domain/%d/device/vscsi/0/state", d+2), "4") {
				g1.cmd.Process.Kill()
				<-g1.done
				t.Fatalf("guest1 did not attach:\n%s\nserve:\n%s", lastLines(g1.errb.String(), 20), lastLines(x.slog.String(), 30))
			}
			time.Sleep(time.Second)
			x.run("xen", "--xen-sim", x.sock, "attach", "--domain", fmt.Sprint("guest", d+2), "--lun", "disk1", "--vdev", "0:0:0:1")
			x.xsWait(fmt.Sprintf("/local/domain/%d/device/vscsi/0/vscsi-devs/dev-1/state", d+2), "4") // the guest added the disk
			x.xsWait(fmt.Sprintf("/local/domain/0/backend/vscsi/%d/0/vscsi-devs/dev-1/state", d+2), "4")
			time.Sleep(time.Second)
			x.run("xen", "--xen-sim", x.sock, "detach", "--domain", fmt.Sprint("guest", d+2), "--lun", "disk1")
			x.xsWait(fmt.Sprintf("/local/domain/%d/device/vscsi/0/vscsi-devs/dev-1/state", d+2), "6") // the guest removed it
			x.xsWait(fmt.Sprintf("/local/domain/0/backend/vscsi/%d/0/vscsi-devs/dev-1/state", d+2), "6")
			select {
			case err := <-g1.done:
				if err != nil {
					t.Fatalf("guest1 bench: %v\n%s", err, g1.errb.String())
				}
			case <-time.After(time.Minute):
				t.Fatal("guest1 bench hung")
			}
			g2.wait(t, ring+": guest2 verified I/O across guest1's hot-add and hot-remove")

			// SIGTERM the daemon mid-I/O, start it again: the guest
			// reattaches and sends again what was cut off; nothing is
			// lost (the run completes and verifies) or answered twice
			// (no protocol fault)
			g3 := x.bench(d+4, ring, "--lun", "disk0", "--rw", "randwrite", "--bs", "4k", "--size", "64m",
				"--time", "10s", "--iodepth", "16", "--verify")
			time.Sleep(3 * time.Second)
			x.stopServe()
			time.Sleep(500 * time.Millisecond)
			x.startServe()
			g3.wait(t, ring+": verified I/O across SIGTERM and restart of serve")
			if !strings.Contains(g3.errb.String(), "reconnected") {
				t.Errorf("the guest never reconnected:\n%s", lastLines(g3.errb.String(), 10))
			}
		})
	}
}
