package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/modepages"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

var (
	testPortID      = scsi.PortID{0xfe, 0x80, 15: 0x01}
	testInitiatorID = [16]byte{0xfe, 0x80, 14: 0xaa, 15: 0x01}
)

// daemonRun is serve running in a goroutine.
type daemonRun struct {
	t    *testing.T
	log  *syncBuffer
	sigs chan os.Signal
	errc chan error
	l    *transport.MemListener
}

// startServe runs serve on cfgPath with an in-memory listener besides the
// configured transports.
func startServe(t *testing.T, cfgPath string, tweak func(*serveOptions)) *daemonRun {
	t.Helper()
	r := &daemonRun{
		t:    t,
		log:  &syncBuffer{},
		sigs: make(chan os.Signal, 2),
		errc: make(chan error, 1),
		l:    transport.NewMemListener(transport.MemConfig{}),
	}
	opts := serveOptions{
		configPath:      cfgPath,
		shutdownTimeout: 5 * time.Second,
		logOutput:       r.log,
		signals:         r.sigs,
		openExtra: func(tgt *scsi.Target) ([]boundListener, error) {
			return []boundListener{{transport: "mem", addr: "test", l: r.l, port: tgt.AddPort(testPortID, "mem")}}, nil
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	go func() { r.errc <- serve(context.Background(), opts) }()
	return r
}

// waitServing waits for the "serving" log line.
func (r *daemonRun) waitServing() {
	r.t.Helper()
	waitFor(r.t, 10*time.Second, "the serving log line", func() bool {
		select {
		case err := <-r.errc:
			r.t.Fatalf("serve ended before serving: %v\n%s", err, r.log.String())
		default:
		}
		return strings.Contains(r.log.String(), "\tserving\t")
	})
}

// stop sends SIGTERM and returns serve's result.
func (r *daemonRun) stop() error {
	r.t.Helper()
	r.sigs <- syscall.SIGTERM
	select {
	case err := <-r.errc:
		return err
	case <-time.After(10 * time.Second):
		r.t.Fatalf("serve did not stop after SIGTERM\n%s", r.log.String())
		return nil
	}
}

func (r *daemonRun) dial() (*initiator.Initiator, *scsitest.Client) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := initiator.Dial(ctx, r.l.Dial(), initiator.Config{InitiatorPortID: testInitiatorID, TargetPortID: testPortID})
	if err != nil {
		r.t.Fatalf("login: %v", err)
	}
	return in, &scsitest.Client{I: in}
}

func lun(c *scsitest.Client, n uint16) *scsitest.Client {
	return &scsitest.Client{I: c.I, LUN: scsi.EncodeLUN(n)}
}

// controlPage is a MODE SELECT(10) parameter list with the Control mode
// page (SPC-4 7.5.8), D_SENSE set.
func controlPageDSense() []byte {
	return []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0x0A, 0x04, 0x10, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0}
}

// TestServeEndToEnd: serve opens the LUs, an initiator logs in over the
// in-memory transport through the same accept loop real transports use,
// writes data and saves a mode page; SIGTERM drains the session, flushes and
// closes the LUs; the data is in the file, and a second run restores the
// saved mode page.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
target: {state_dir: "%DIR%/state"}
luns:
  - name: mem0
    backstore: {kind: memory, size: 8MiB}
  - name: file1
    backstore: {kind: file, path: "%DIR%/file1.img", size: 16MiB, create: true}
`)
	r := startServe(t, cfg, nil)
	r.waitServing()
	in, c := r.dial()
	disk := lun(c, 1)
	if err := disk.ClearUA(); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("srptgt-e2e-data!"), 4096/16)
	if err := disk.Write(8, data, 512); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := disk.Read(8, 8, 512)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	p := controlPageDSense()
	resp, err := disk.Do(scsitest.ModeSelect10(true, uint16(len(p))), p, 0)
	if err != nil || resp.Err() != nil {
		t.Fatalf("MODE SELECT SP=1: %v %v", err, resp.Err())
	}
	saved, err := modepages.Load(filepath.Join(dir, "state", "file1"))
	if err != nil || len(saved) == 0 {
		t.Fatalf("saved mode pages: %x, %v", saved, err)
	}

	if err := r.stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, r.log.String())
	}
	// The session ended with the shutdown: the initiator is disconnected.
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Error("initiator still connected after the shutdown")
	}
	in.Close()
	log := r.log.String()
	for _, want := range []string{"sessions drained", "flushed LU\t{\"lu\": \"mem0\"}", "closed LU\t{\"lu\": \"mem0\"}",
		"flushed LU\t{\"lu\": \"file1\"}", "closed LU\t{\"lu\": \"file1\"}", "\tstopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	f, err := os.ReadFile(filepath.Join(dir, "file1.img"))
	if err != nil || len(f) != 16<<20 || !bytes.Equal(f[8*512:8*512+len(data)], data) {
		t.Fatalf("file1.img: %d bytes, %v; data not there", len(f), err)
	}

	// Second run: D_SENSE comes back from the state directory.
	r2 := startServe(t, cfg, nil)
	r2.waitServing()
	in2, c2 := r2.dial()
	disk2 := lun(c2, 1)
	disk2.ClearUA()
	resp, err = disk2.Do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255)
	if err != nil || resp.Err() != nil || len(resp.Data) < 7 {
		t.Fatalf("MODE SENSE: %v %v", err, resp.Err())
	}
	if resp.Data[4]&0x3F != 0x0A || resp.Data[4+2]&0x04 == 0 {
		t.Errorf("control page after restart % x: D_SENSE not restored", resp.Data)
	}
	if !strings.Contains(r2.log.String(), "restored saved mode pages") {
		t.Errorf("log does not mention the restored pages:\n%s", r2.log.String())
	}
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	in2.Close()
}

// TestServeCorruptModePages: a corrupt saved-pages file is a logged error
// and the LU starts with defaults.
func TestServeCorruptModePages(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "state", "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state", "m", modepages.FileName), []byte("srptgt mode pages v1\n0a0a\ncrc32c 00000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, `
target: {state_dir: "%DIR%/state"}
luns: [{name: m, backstore: {kind: memory, size: 1MiB}}]
`)
	r := startServe(t, cfg, nil)
	r.waitServing()
	if log := r.log.String(); !strings.Contains(log, "saved mode pages unreadable; using the defaults") || !strings.Contains(log, "corrupt file") {
		t.Errorf("log:\n%s", log)
	}
	in, c := r.dial()
	disk := lun(c, 0)
	disk.ClearUA()
	resp, err := disk.Do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255)
	if err != nil || resp.Err() != nil || resp.Data[4+2]&0x04 != 0 {
		t.Errorf("MODE SENSE: %v %v % x", err, resp.Err(), resp.Data)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	in.Close()
}

// gatedStore holds Flush until released.
type gatedStore struct {
	backstore.Store
	entered chan struct{}
	release chan struct{}
	closed  atomic.Bool
	once    sync.Once
}

// Caps clears Immediate: the store blocks.
func (g *gatedStore) Caps() backstore.Caps {
	c := g.Store.Caps()
	c.Immediate = false
	return c
}

func (g *gatedStore) Flush() error {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.Store.Flush()
}

func (g *gatedStore) Close() error {
	g.closed.Store(true)
	return g.Store.Close()
}

// TestServeSecondSignalForcesExit: a second signal while the shutdown is
// stuck (a flush that does not return) ends serve at once with an error.
func TestServeSecondSignalForcesExit(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "luns: [{name: m, backstore: {kind: memory, size: 1MiB}}]\n")
	g := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	r := startServe(t, cfg, func(o *serveOptions) {
		o.openStore = func(s backstore.Spec) (backstore.Store, error) {
			st, err := backstore.Open(s)
			g.Store = st
			return g, err
		}
	})
	r.waitServing()
	r.sigs <- syscall.SIGTERM
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown never flushed")
	}
	r.sigs <- syscall.SIGINT
	select {
	case err := <-r.errc:
		if !errors.Is(err, errForced) {
			t.Errorf("serve = %v, want errForced", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not end serve")
	}
	if log := r.log.String(); !strings.Contains(log, "second signal: exiting now") || strings.Contains(log, "\tstopped") {
		t.Errorf("log:\n%s", log)
	}
	// Let the abandoned shutdown finish so that no goroutine leaks.
	close(g.release)
	waitFor(t, 5*time.Second, "the LU to close", g.closed.Load)
}

// TestServeStartupFailure: a backstore that does not open fails serve with
// an error naming the file, line, LU and field; LUs opened before it are
// closed again.
func TestServeStartupFailure(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `luns:
  - name: good
    backstore: {kind: memory, size: 1MiB}
  - name: bad
    backstore:
      kind: file
      path: "%DIR%/no/such/dir/bad.img"
`)
	var opened []*gatedStore
	r := startServe(t, cfg, func(o *serveOptions) {
		o.openStore = func(s backstore.Spec) (backstore.Store, error) {
			st, err := backstore.Open(s)
			if err != nil {
				return nil, err
			}
			g := &gatedStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
			close(g.release)
			opened = append(opened, g)
			return g, nil
		}
	})
	err := <-r.errc
	want := cfg + ":7: luns[1].backstore.path: LU bad: backstore open: open " + dir + "/no/such/dir/bad.img: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("serve = %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("serve's error does not wrap the cause: %#v", err)
	}
	if len(opened) != 1 || !opened[0].closed.Load() {
		t.Errorf("the good LU's store was not closed (%d opened)", len(opened))
	}
	if log := r.log.String(); !strings.Contains(log, "startup failed") || strings.Contains(log, "\tserving") {
		t.Errorf("log:\n%s", log)
	}
	// The listener was closed too.
	if _, err := r.l.Accept(context.Background()); !errors.Is(err, transport.ErrListenerClosed) {
		t.Errorf("listener not closed: %v", err)
	}
}

// TestServeTransportNotBuilt: a configured transport that is not built in
// fails serve before any backstore is opened or created.
func TestServeTransportNotBuilt(t *testing.T) {
	for _, section := range []string{
		"rdma:\n  listen: [\"192.0.2.1:5000\"]\n",
		"xen:\n  guests: [{domain: g, luns: [\"f, 0:0:0:0\"]}]\n",
	} {
		name := strings.TrimSuffix(section[:strings.IndexByte(section, ':')], ":")
		t.Run(name, func(t *testing.T) {
			if built(name) {
				t.Skipf("the %s transport is built in", name)
			}
			dir := t.TempDir()
			cfg := writeConfig(t, dir, "luns: [{name: f, backstore: {kind: file, path: \"%DIR%/f.img\", size: 1MiB, create: true}}]\n"+section)
			r := startServe(t, cfg, nil)
			err := <-r.errc
			want := cfg + ":2: " + name + ": the " + name + " transport is not built into this binary yet (transports: " + transportsLine() + ")"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("serve = %v, want %s...", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "f.img")); !os.IsNotExist(err) {
				t.Errorf("backstore file created although serve refused the config (stat: %v)", err)
			}
		})
	}
}

// TestServeShutdownTimeout: a command still running at the shutdown
// timeout is failed (its channel closed without a response) and serve
// still flushes, closes and returns.
func TestServeShutdownTimeout(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "luns: [{name: m, backstore: {kind: memory, size: 1MiB}}]\n")
	st := &stuckWrites{entered: make(chan struct{}), release: make(chan struct{})}
	r := startServe(t, cfg, func(o *serveOptions) {
		o.shutdownTimeout = 200 * time.Millisecond
		o.openStore = func(s backstore.Spec) (backstore.Store, error) {
			inner, err := backstore.Open(s)
			st.Store = inner
			return st, err
		}
	})
	r.waitServing()
	in, c := r.dial()
	disk := lun(c, 0)
	disk.ClearUA()
	done := make(chan error, 1)
	go func() { done <- disk.Write(0, make([]byte, 512), 512) }()
	<-st.entered
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	// The session layer closes the channel at the timeout, then waits for
	// the command to leave the backstore (a pread cannot be called back).
	time.Sleep(600 * time.Millisecond)
	close(st.release)
	if err := <-stopped; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if log := r.log.String(); !strings.Contains(log, "shutdown timeout: closed the remaining channels") {
		t.Errorf("log does not report the timeout:\n%s", log)
	}
	if err := <-done; err == nil {
		t.Error("the in-flight write succeeded although its channel was closed at the timeout")
	}
	in.Close()
	if log := r.log.String(); !strings.Contains(log, "closed LU") {
		t.Errorf("log:\n%s", log)
	}
}

// stuckWrites blocks writes until released.
type stuckWrites struct {
	backstore.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// Caps clears Immediate: the store blocks.
func (s *stuckWrites) Caps() backstore.Caps {
	c := s.Store.Caps()
	c.Immediate = false
	return c
}

func (s *stuckWrites) WriteAt(p []byte, off int64) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Store.WriteAt(p, off)
}

// failingListener fails Accept a few times, then reports closed.
type failingListener struct {
	fails  atomic.Int32
	closed chan struct{}
}

func (l *failingListener) Accept(ctx context.Context) (transport.Channel, error) {
	if l.fails.Add(1) <= 3 {
		return nil, errors.New("bad connection request")
	}
	select {
	case <-l.closed:
		return nil, transport.ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *failingListener) Close() error { close(l.closed); return nil }

// TestAcceptLoopSurvivesErrors: a failed accept is logged and retried; the
// loop ends when the listener closes.
func TestAcceptLoopSurvivesErrors(t *testing.T) {
	l := &failingListener{closed: make(chan struct{})}
	d := &daemon{log: zap.NewNop(), srv: srp.NewServer(srp.Config{Target: scsi.NewTarget(scsi.TargetConfig{})})}
	d.accepting.Add(1)
	go d.acceptLoop(context.Background(), boundListener{transport: "test", l: l})
	waitFor(t, 5*time.Second, "the fourth accept", func() bool { return l.fails.Load() >= 4 })
	l.Close()
	d.accepting.Wait()
}

// TestLoggerFormats: console and json output, and the level filter.
func TestLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(config.Logging{Level: "warn", Format: "json"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", zap.String("lu", "disk0"))
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"level":"warn"`) || !strings.Contains(got, `"msg":"shown","lu":"disk0"}`) {
		t.Errorf("json log %q", got)
	}
	b.Reset()
	log, err = newLogger(config.Logging{Level: "debug", Format: "console"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("details", zap.Int("n", 1))
	if got := b.String(); !strings.Contains(got, "\tDEBUG\tdetails\t{\"n\": 1}") {
		t.Errorf("console log %q", got)
	}
	if _, err := newLogger(config.Logging{Level: "loud", Format: "json"}, &b); err == nil {
		t.Error("level loud accepted")
	}
}
