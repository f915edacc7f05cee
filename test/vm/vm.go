// Package vm boots real Linux SCSI initiators in QEMU against a SCSI
// target (the kernel's LIO as the reference, or srptgt) and reports the
// results of the guest test suites.
//
// Two machine profiles exist:
//
//   - rdma: one VM; soft RoCE (rdma_rxe) on a dummy netdev; the target and
//     the kernel SRP initiator ib_srp run in the same VM, with two
//     initiator ports (initiator_ext 1 and 2).
//   - xen: Xen 4.17 with a PV dom0 running the target and a PV domU whose
//     xen-scsifront has two virtual SCSI hosts (two initiator ports).
//
// The shell scripts next to this file build the images (build-image.sh)
// and run inside the guests (guest/). Everything downloaded or built is
// cached under one directory, $SRPTGT_VM_CACHE or /var/cache/srptgt-vm.
package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Profiles are the machine profiles, in the order they are run.
var Profiles = []string{"rdma", "xen"}

// Targets are the SCSI targets every profile is run against.
var Targets = []string{"lio", "srptgt"}

// Status is the outcome of one guest test.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	// NA: not applicable / not run because the target is not available.
	NA Status = "NA"
)

// NotAvailable is the detail of every cell of a target that cannot run.
const NotAvailable = "n/a (target not available)"

// Result is one guest test's outcome and log.
type Result struct {
	Suite   string
	Name    string
	Status  Status
	Detail  string
	Elapsed time.Duration
	Log     string
}

// ID is "suite/name".
func (r Result) ID() string { return r.Suite + "/" + r.Name }

// RunResult is the outcome of one boot (profile × target).
type RunResult struct {
	Profile  string
	Target   string
	Results  []Result
	Setup    string            // "OK" or "FAIL <reason>" from the guest's set-up
	SetupLog string            // the guest's set-up log
	Info     map[string]string // SRPTGT-INFO lines (kernel, xen version, ...)
	Events   []string          // notable console lines (oops, panic, crash)
	LogPath  string            // full console log
	Duration time.Duration
	// NotAvailable is set (with the reason) when the target could not be
	// run at all; every result then has Status NA.
	NotAvailable string
}

// Config locates the repository and the cache.
type Config struct {
	Repo  string    // repository root (holds go.mod)
	Cache string    // cache directory
	Log   io.Writer // progress messages (may be nil)
}

// DefaultConfig finds the repository root from the working directory and
// the cache from $SRPTGT_VM_CACHE (default /var/cache/srptgt-vm).
func DefaultConfig() (Config, error) {
	cache := os.Getenv("SRPTGT_VM_CACHE")
	if cache == "" {
		cache = "/var/cache/srptgt-vm"
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		wd, _ := os.Getwd()
		for d := wd; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				repo = d
				break
			}
		}
	}
	return Config{Repo: repo, Cache: cache}, nil
}

func (c Config) vmDir() string { return filepath.Join(c.Repo, "test", "vm") }

func (c Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", a...)
	}
}

func (c Config) script(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.vmDir(), name)}, args...)...)
	cmd.Env = append(os.Environ(), "SRPTGT_VM_CACHE="+c.Cache)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	if c.Log != nil {
		cmd.Stderr = io.MultiWriter(&errb, c.Log)
	} else {
		cmd.Stderr = &errb
	}
	if err := cmd.Run(); err != nil {
		tail := errb.String()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail)
	}
	return strings.TrimSpace(out.String()), nil
}

var setupOnce sync.Once
var setupErr error

// Setup installs the host tools (test/vm/setup.sh; idempotent, once per
// process).
func Setup(ctx context.Context, c Config) error {
	setupOnce.Do(func() {
		if err := os.MkdirAll(c.Cache, 0o755); err != nil {
			setupErr = err
			return
		}
		_, setupErr = c.script(ctx, "setup.sh")
	})
	return setupErr
}

// BuildImage builds or reuses the base images of a profile and returns
// their directory.
func BuildImage(ctx context.Context, c Config, profile string) (string, error) {
	out, err := c.script(ctx, "build-image.sh", profile)
	if err != nil {
		return "", err
	}
	lines := strings.Split(out, "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// Srptgt is the result of building the project's binary.
type Srptgt struct {
	Bin        string
	Transports []string
	Version    string
	Err        error // why it is not available (build or version failed)
}

// Has reports whether the binary lists transport t.
func (s *Srptgt) Has(t string) bool {
	for _, x := range s.Transports {
		if x == t {
			return true
		}
	}
	return false
}

// BuildSrptgt runs `go build -o $CACHE/bin/srptgt ./cmd/srptgt` (cgo on)
// and `srptgt version`. A failure is returned in Srptgt.Err.
func BuildSrptgt(ctx context.Context, c Config) *Srptgt {
	s := &Srptgt{Bin: filepath.Join(c.Cache, "bin", "srptgt")}
	if err := os.MkdirAll(filepath.Dir(s.Bin), 0o755); err != nil {
		s.Err = err
		return s
	}
	os.Remove(s.Bin)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", s.Bin, "./cmd/srptgt")
	cmd.Dir = c.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.Err = fmt.Errorf("go build ./cmd/srptgt: %v: %s", err, firstLines(string(out), 5))
		return s
	}
	out, err := exec.CommandContext(ctx, s.Bin, "version").CombinedOutput()
	if err != nil {
		s.Err = fmt.Errorf("srptgt version: %v: %s", err, firstLines(string(out), 5))
		return s
	}
	s.Version = strings.TrimSpace(string(out))
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "transports:"); ok {
			for _, f := range strings.Fields(rest) {
				if f != "none" {
					s.Transports = append(s.Transports, f)
				}
			}
		}
	}
	return s
}

// Prepare is the start of a Go test that boots the harness's VMs: it
// skips with -short, needs root, sets the host up, and builds srptgt,
// which must list every transport named. With none named, a failed build
// is left in the result's Err for the caller (srptgt is then "not
// available"). Logs go to t.
func Prepare(t *testing.T, transports ...string) (context.Context, Config, *Srptgt) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU for minutes; not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the VM harness needs root (apt-get, QEMU images under /var/cache)")
	}
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log = TestLog{T: t}
	ctx := context.Background()
	if err := Setup(ctx, cfg); err != nil {
		t.Fatalf("host set-up: %v", err)
	}
	srpt := BuildSrptgt(ctx, cfg)
	if srpt.Err != nil && len(transports) > 0 {
		t.Fatalf("srptgt: %v", srpt.Err)
	}
	for _, tr := range transports {
		if !srpt.Has(tr) {
			t.Fatalf("srptgt version lists no %s transport (%s)", tr, strings.Join(srpt.Transports, " "))
		}
	}
	return ctx, cfg, srpt
}

// lockQEMU takes the host-wide VM lock ($CACHE/qemu.lock), waiting for a
// VM another test process is running; the returned function releases it.
func (c Config) lockQEMU() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.Cache, "qemu.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		c.logf("vm: waiting for another test's VM to finish (%s)", f.Name())
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
	return func() { f.Close() }, nil
}

// LastLines is the last n lines of s (a test's log, for a failure message).
func LastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestLog adapts a test's Log method to the io.Writer Config.Log takes,
// one Log call per line.
type TestLog struct{ T interface{ Log(args ...any) } }

func (w TestLog) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.T.Log(l)
	}
	return len(p), nil
}

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, " | ")
}

// TestSpec is one guest test as listed in a suite's TESTS variable.
type TestSpec struct{ Suite, Name string }

// AllSuites are the guest suites in the order they run.
var AllSuites = []string{"identity", "data", "sbc", "tmf", "pr", "perf"}

// profileOnly names the suites that belong to one profile: the second Xen
// guest, one LU over vscsiif and RDMA (dom0's ib_srp), Xen hot-plug and
// Xen performance; fence_scsi (the agent is in the rdma image only), and
// the RDMA login, bench, demo and restart tests (srp_*).
var profileOnly = map[string]string{"guests": "xen", "cross": "xen", "xenctl": "xen", "xenperf": "xen", "pr_fence": "rdma"}

// ForProfile drops the suites that belong to another profile.
func ForProfile(profile string, suites []string) []string {
	var out []string
	for _, s := range suites {
		only, ok := profileOnly[s]
		if strings.HasPrefix(s, "srp_") {
			only, ok = "rdma", true
		}
		if !ok || only == profile {
			out = append(out, s)
		}
	}
	return out
}

var testsRE = regexp.MustCompile(`(?s)TESTS="([^"]*)"`)

// SuiteTests lists the tests of the given suites (from guest/suites/*.sh).
func SuiteTests(c Config, suites []string) ([]TestSpec, error) {
	var specs []TestSpec
	for _, s := range suites {
		b, err := os.ReadFile(filepath.Join(c.vmDir(), "guest", "suites", s+".sh"))
		if err != nil {
			return nil, err
		}
		m := testsRE.FindSubmatch(b)
		if m == nil {
			return nil, fmt.Errorf("suite %s: no TESTS=", s)
		}
		for _, w := range strings.Fields(string(m[1])) {
			name, _, _ := strings.Cut(w, ":")
			specs = append(specs, TestSpec{s, name})
		}
	}
	return specs, nil
}

// RunOrder is the order the guest runs the suites in. For xen the pr and
// identity suites go last: LIO + xen-scsiback in Debian's 6.1 kernel oops
// dom0 on PERSISTENT RESERVE IN and REPORT LUNS with 8 KiB allocation
// lengths (sg_persist, sg_luns), after which the ring is dead; running
// them last keeps the reference's data, SBC, TMF and perf results.
// xenctl goes after them: its SIGTERM test restarts srptgt, and the guest
// ends it with new SCSI hosts and disk names.
func RunOrder(profile string, suites []string) []string {
	if profile != "xen" {
		return suites
	}
	var out, last, xenctl []string
	for _, s := range suites {
		switch s {
		case "pr", "identity":
			last = append(last, s)
		case "xenctl":
			xenctl = append(xenctl, s)
		default:
			out = append(out, s)
		}
	}
	return append(append(out, last...), xenctl...)
}

// Timeouts bound a whole boot of each profile.
var Timeouts = map[string]time.Duration{"rdma": 12 * time.Minute, "xen": 20 * time.Minute}

// Run boots one profile with one target, runs the suites in that single
// boot and returns every test's result and log. srpt may be nil for the
// lio target. An error means the harness itself failed (no image, no
// QEMU); test failures are in the results.
func Run(ctx context.Context, c Config, profile, target string, suites []string, srpt *Srptgt) (*RunResult, error) {
	suites = ForProfile(profile, suites)
	start := time.Now()
	rr := &RunResult{Profile: profile, Target: target, Info: map[string]string{}}
	specs, err := SuiteTests(c, suites)
	if err != nil {
		return nil, err
	}
	if target == "srptgt" {
		reason := ""
		switch {
		case srpt == nil:
			reason = "srptgt not built"
		case srpt.Err != nil:
			reason = srpt.Err.Error()
		case !srpt.Has(profile):
			list := strings.Join(srpt.Transports, " ")
			if list == "" {
				list = "none"
			}
			reason = fmt.Sprintf("transport %q not listed by `srptgt version` (transports: %s)", profile, list)
		}
		if reason != "" && srpt != nil && srpt.Err == nil && os.Getenv("SRPTGT_VM_FORCE") != "" {
			// harness development: boot anyway to exercise the plumbing
			c.logf("vm: SRPTGT_VM_FORCE set, booting although: %s", reason)
			reason = ""
		}
		if reason != "" {
			rr.NotAvailable = reason
			for _, s := range specs {
				rr.Results = append(rr.Results, Result{Suite: s.Suite, Name: s.Name, Status: NA, Detail: NotAvailable})
			}
			return rr, nil
		}
	}
	if err := Setup(ctx, c); err != nil {
		return nil, err
	}
	img, err := BuildImage(ctx, c, profile)
	if err != nil {
		return nil, err
	}
	runDir := filepath.Join(c.Cache, "run")
	logDir := filepath.Join(c.Cache, "logs")
	for _, d := range []string{runDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	overlay, err := c.overlay(profile, target, suites, srpt)
	if err != nil {
		return nil, err
	}
	base := "base.cpio.gz"
	if profile == "xen" {
		base = "dom0.cpio.gz"
	}
	initrd := filepath.Join(runDir, profile+"-"+target+".initrd")
	if err := concat(initrd, filepath.Join(img, base), overlay); err != nil {
		return nil, err
	}
	var args []string
	switch profile {
	case "rdma":
		args = []string{"-machine", "pc", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048",
			"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
			"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", initrd,
			"-append", "console=ttyS0 panic=-1 quiet loglevel=4"}
	case "xen":
		args = []string{"-machine", "pc", "-accel", "tcg", "-cpu", "qemu64", "-smp", "2", "-m", "2048",
			"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
			"-kernel", filepath.Join(img, "xen.elf"),
			"-append", "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=1 dom0_vcpus_pin loglvl=warning guest_loglvl=warning noreboot",
			"-initrd", filepath.Join(img, "vmlinuz") + " console=hvc0 quiet loglevel=4 panic=-1 rdinit=/init," + initrd}
	default:
		return nil, fmt.Errorf("unknown profile %q", profile)
	}
	rr.LogPath = filepath.Join(logDir, fmt.Sprintf("%s-%s-%s.log", profile, target, start.Format("20060102-150405")))
	if v, err := os.ReadFile(filepath.Join(img, "versions.txt")); err == nil {
		rr.Info["packages"] = strings.Join(pickVersions(string(v)), " ")
	}
	// one VM at a time on this host: go test runs packages in parallel,
	// and two emulated VMs on two cores slow each other past the guests'
	// own timeouts
	unlock, err := c.lockQEMU()
	if err != nil {
		return rr, err
	}
	defer unlock()
	start = time.Now()
	c.logf("vm: booting %s/%s (log %s)", profile, target, rr.LogPath)
	latest := filepath.Join(logDir, profile+"-"+target+".log")
	os.Remove(latest)
	os.Symlink(filepath.Base(rr.LogPath), latest)
	pruneLogs(logDir, profile+"-"+target+"-", KeepLogs)
	err = c.boot(ctx, rr, args, specs)
	rr.Duration = time.Since(start)
	return rr, err
}

// KeepLogs is how many console logs per profile and target are kept.
var KeepLogs = 20

func pruneLogs(dir, prefix string, keep int) {
	m, _ := filepath.Glob(filepath.Join(dir, prefix+"2*.log"))
	sort.Strings(m) // timestamped names sort by time
	for len(m) > keep {
		os.Remove(m[0])
		m = m[1:]
	}
}

// pickVersions extracts the interesting package versions for reports.
func pickVersions(v string) []string {
	var out []string
	for _, l := range strings.Split(v, "\n") {
		p, _, _ := strings.Cut(l, "=")
		switch {
		case strings.HasPrefix(p, "linux-image-"), p == "xen-hypervisor-4.17-amd64", p == "sg3-utils",
			p == "fio", p == "rdma-core", p == "e2fsprogs", p == "busybox-static":
			out = append(out, l)
		}
	}
	return out
}

func concat(dst string, srcs ...string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		r, err := os.Open(s)
		if err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(f, r)
		r.Close()
		if err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// overlay writes the per-run cpio: /vm (guest scripts), /vm/env, the
// srptgt config and, for the srptgt target, the binary and its libraries.
func (c Config) overlay(profile, target string, suites []string, srpt *Srptgt) (string, error) {
	var cp cpioWriter
	gdir := filepath.Join(c.vmDir(), "guest")
	cp.dir("vm")
	err := filepath.WalkDir(gdir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(gdir, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			cp.dir("vm/" + rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		cp.file("vm/"+rel, 0o755, b)
		return nil
	})
	if err != nil {
		return "", err
	}
	env := fmt.Sprintf("PROFILE=%s\nTARGET=%s\nSUITES=%q\n", profile, target, strings.Join(RunOrder(profile, suites), " "))
	cp.file("vm/env", 0o644, []byte(env))
	cfg, err := os.ReadFile(filepath.Join(c.vmDir(), "config", "srptgt-"+profile+".yaml"))
	if err != nil {
		return "", err
	}
	cp.file("etc/srptgt.yaml", 0o644, cfg)
	if target == "srptgt" && srpt != nil && srpt.Err == nil {
		b, err := os.ReadFile(srpt.Bin)
		if err != nil {
			return "", err
		}
		cp.file("usr/sbin/srptgt", 0o755, b)
		libs, err := lddLibs(srpt.Bin)
		if err != nil {
			return "", err
		}
		for _, l := range libs {
			b, err := os.ReadFile(l)
			if err != nil {
				return "", err
			}
			cp.file("usr/lib/x86_64-linux-gnu/"+filepath.Base(l), 0o755, b)
		}
	}
	out := filepath.Join(c.Cache, "run", profile+"-"+target+".overlay.cpio.gz")
	return out, cp.writeGzip(out)
}

// lddLibs lists the shared libraries ldd finds for bin, plus libgcc_s.so.1
// (glibc dlopens it for thread cancellation).
func lddLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			out = nil
		} else {
			return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
		}
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(l, "=>"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 && strings.HasPrefix(f[0], "/") {
				libs = append(libs, f[0])
			}
		}
	}
	for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"} {
		p := filepath.Join(d, "libgcc_s.so.1")
		if _, err := os.Stat(p); err == nil {
			libs = append(libs, p)
			break
		}
	}
	return libs, nil
}

// cpioWriter builds a newc archive in memory.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) hdr(name string, mode uint32, size int) {
	w.ino++
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string) { w.hdr(name, 0o040755, 0) }

func (w *cpioWriter) file(name string, perm uint32, data []byte) {
	w.hdr(name, 0o100000|perm, len(data))
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) writeGzip(path string) error {
	w.hdr("TRAILER!!!", 0, 0)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	z, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, err := z.Write(w.buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := z.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var (
	markerTest  = regexp.MustCompile(`SRPTGT-TEST (\S+)/(\S+) (PASS|FAIL|NA) ?(.*)$`)
	markerBegin = regexp.MustCompile(`SRPTGT-LOG-BEGIN (\S+)`)
	markerEnd   = regexp.MustCompile(`SRPTGT-LOG-END (\S+)`)
	markerInfo  = regexp.MustCompile(`SRPTGT-INFO (\S+) ?(.*)$`)
	markerSetup = regexp.MustCompile(`SRPTGT-SETUP (.*)$`)
	elapsedRE   = regexp.MustCompile(` \((\d+)s\)$`)
	streamRE    = regexp.MustCompile(`^\[(guest\d+)\] `)
	ansiRE      = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\r`)
	// console lines worth reporting next to the results
	eventRE = regexp.MustCompile(`(Oops|BUG: |unable to handle|general protection|Kernel panic|Hardware Dom0 crashed|RIP: |watchdog: BUG|blocked for more than|rcu_preempt detected stalls)`)
	// events after which the VM is not expected to recover
	fatalRE = regexp.MustCompile(`(Oops|BUG: |Kernel panic|Hardware Dom0 crashed|general protection)`)
)

// Stall limits: after a kernel oops, the VM is stopped when no marker
// line came for OopsStall; in any case when no marker came for Stall.
var (
	OopsStall = 150 * time.Second
	Stall     = 8 * time.Minute
)

// boot runs QEMU, streams the console to rr.LogPath, parses the markers
// and stops QEMU at SRPTGT-VM-DONE or the profile's timeout.
func (c Config) boot(ctx context.Context, rr *RunResult, args []string, specs []TestSpec) error {
	ctx, cancel := context.WithTimeout(ctx, Timeouts[rr.Profile])
	defer cancel()
	logf, err := os.Create(rr.LogPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# qemu-system-x86_64 %s\n", shellQuote(args))
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 5 * time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return fmt.Errorf("qemu: %w", err)
	}
	pw.Close()

	// watchdog: stop QEMU when the guest makes no progress
	var mu sync.Mutex
	lastMarker := time.Now()
	fatal := ""
	fatalNoted := false
	stopped := ""
	wdDone := make(chan struct{})
	defer close(wdDone)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-wdDone:
				return
			case <-tick.C:
			}
			mu.Lock()
			idle := time.Since(lastMarker)
			why := ""
			if fatal != "" && idle > OopsStall {
				why = fmt.Sprintf("VM stopped: no progress for %v after a kernel failure (%s)", OopsStall, fatal)
			} else if idle > Stall {
				why = fmt.Sprintf("VM stopped: no progress for %v", Stall)
			}
			if why != "" && stopped == "" {
				stopped = why
				cmd.Process.Kill()
			}
			mu.Unlock()
		}
	}()
	progress := func() {
		mu.Lock()
		lastMarker = time.Now()
		mu.Unlock()
	}

	got := map[string]int{}
	// test whose log is being collected, per console stream: lines a
	// second guest's relay prefixes with "[name] " are a stream of their
	// own, so two guests' log blocks can interleave line by line
	cur := map[string]string{}
	logb := map[string]*strings.Builder{}
	logs := map[string]string{}
	done := false
	var setupLog strings.Builder
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := ansiRE.ReplaceAllString(sc.Text(), "")
		fmt.Fprintln(logf, line)
		if strings.Contains(line, "SRPTGT-") {
			progress()
		}
		mu.Lock()
		wantRIP := fatal != "" && strings.Contains(line, "RIP: ") && !strings.Contains(fatal, "RIP: ")
		mu.Unlock()
		if fatalRE.MatchString(line) || wantRIP {
			mu.Lock()
			l := strings.TrimSpace(line)
			if i := strings.Index(l, "] "); i >= 0 && strings.HasPrefix(l, "[") {
				l = l[i+2:]
			}
			if fatal == "" {
				fatal = l
			} else if strings.HasPrefix(l, "RIP: ") && !strings.Contains(fatal, "RIP: ") {
				fatal += "; " + l
			}
			mu.Unlock()
		}
		if eventRE.MatchString(line) && len(rr.Events) < 40 {
			rr.Events = append(rr.Events, strings.TrimSpace(line))
		}
		stream := ""
		if m := streamRE.FindStringSubmatch(line); m != nil {
			stream, line = m[1], line[len(m[0]):]
		}
		if cur[stream] != "" {
			b := logb[stream]
			if m := markerEnd.FindStringSubmatch(line); m != nil && m[1] == cur[stream] {
				if strings.HasPrefix(cur[stream], "setup/") {
					setupLog.WriteString(b.String())
				} else {
					logs[cur[stream]] = b.String()
				}
				cur[stream] = ""
				b.Reset()
				continue
			}
			l := line
			if i := strings.Index(l, "| "); i >= 0 && i < 20 {
				l = l[i+2:]
			}
			b.WriteString(l + "\n")
			continue
		}
		if m := markerBegin.FindStringSubmatch(line); m != nil {
			cur[stream] = m[1]
			if logb[stream] == nil {
				logb[stream] = &strings.Builder{}
			}
			continue
		}
		if m := markerTest.FindStringSubmatch(line); m != nil {
			r := Result{Suite: m[1], Name: m[2], Status: Status(m[3]), Detail: strings.TrimSpace(m[4])}
			if e := elapsedRE.FindStringSubmatch(r.Detail); e != nil {
				var s int
				fmt.Sscan(e[1], &s)
				r.Elapsed = time.Duration(s) * time.Second
				r.Detail = strings.TrimSuffix(r.Detail, e[0])
			}
			r.Log = logs[r.ID()]
			mu.Lock()
			if r.Status == Fail && fatal != "" && !fatalNoted {
				// the first failure after a kernel oops: say so
				fatalNoted = true
				r.Detail += " [console: " + fatal + "]"
			}
			mu.Unlock()
			if i, ok := got[r.ID()]; ok {
				rr.Results[i] = r
			} else {
				got[r.ID()] = len(rr.Results)
				rr.Results = append(rr.Results, r)
			}
			c.logf("vm: %s/%s %s %s %s", rr.Profile, rr.Target, r.ID(), r.Status, r.Detail)
			continue
		}
		if m := markerInfo.FindStringSubmatch(line); m != nil {
			key := m[1]
			if stream != "" {
				key = stream + "-" + key
			}
			rr.Info[key] = strings.TrimSpace(m[2])
			continue
		}
		if stream != "" {
			// a second guest's set-up and end are its own, not the VM's
			continue
		}
		if m := markerSetup.FindStringSubmatch(line); m != nil {
			rr.Setup = strings.TrimSpace(m[1])
			c.logf("vm: %s/%s setup %s", rr.Profile, rr.Target, rr.Setup)
			continue
		}
		if strings.Contains(line, "SRPTGT-VM-DONE") {
			done = true
			break
		}
	}
	rr.SetupLog = setupLog.String()
	// stop QEMU (it may still be powering off)
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
	go io.Copy(io.Discard, pr)
	cmd.Wait()
	pr.Close()
	reason := "VM ended before reporting"
	mu.Lock()
	if stopped != "" {
		reason = stopped
	} else if ctx.Err() != nil {
		reason = fmt.Sprintf("VM timed out after %v", Timeouts[rr.Profile])
	}
	if fatal != "" && !strings.Contains(reason, fatal) {
		reason += " (console: " + fatal + ")"
	}
	mu.Unlock()
	// every expected test gets a result; the first one missing (in the
	// guest's run order) is the one that was running when the VM ended
	order := RunOrder(rr.Profile, suitesOf(specs))
	first := true
	for _, suite := range order {
		for _, s := range specs {
			if s.Suite != suite {
				continue
			}
			id := s.Suite + "/" + s.Name
			if _, ok := got[id]; !ok {
				d := "no result: " + reason
				if first && len(got) > 0 {
					d = "no result (running when the VM ended): " + reason
				}
				first = false
				got[id] = len(rr.Results)
				rr.Results = append(rr.Results, Result{Suite: s.Suite, Name: s.Name, Status: Fail,
					Detail: d, Log: logs[id]})
			}
		}
	}
	// keep the suite order
	pos := map[string]int{}
	for i, s := range specs {
		pos[s.Suite+"/"+s.Name] = i
	}
	sort.SliceStable(rr.Results, func(i, j int) bool {
		return pos[rr.Results[i].ID()] < pos[rr.Results[j].ID()]
	})
	if !done {
		return fmt.Errorf("%s/%s: %s (console log %s)", rr.Profile, rr.Target, reason, rr.LogPath)
	}
	return nil
}

func suitesOf(specs []TestSpec) []string {
	var out []string
	for _, s := range specs {
		if len(out) == 0 || out[len(out)-1] != s.Suite {
			out = append(out, s.Suite)
		}
	}
	return out
}

func shellQuote(args []string) string {
	var b []string
	for _, a := range args {
		if strings.ContainsAny(a, " ,\"'") {
			a = "'" + a + "'"
		}
		b = append(b, a)
	}
	return strings.Join(b, " ")
}

// ErrNoResult is returned by Lookup when a test has no result.
var ErrNoResult = errors.New("no result")

// Lookup finds a test's result.
func (rr *RunResult) Lookup(id string) (Result, error) {
	if rr == nil {
		return Result{}, ErrNoResult
	}
	for _, r := range rr.Results {
		if r.ID() == id {
			return r, nil
		}
	}
	return Result{}, ErrNoResult
}
