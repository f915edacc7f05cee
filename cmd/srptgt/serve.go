package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/modepages"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/prstate"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/srp"
)

// serveOptions configures serve.
type serveOptions struct {
	configPath      string
	shutdownTimeout time.Duration
	// xenSim is the simulated hypervisor's socket (serve --xen-sim).
	xenSim string
	// cpuProfile, if set, is where serve writes a CPU profile.
	cpuProfile string
	// logOutput receives the log.
	logOutput io.Writer
	// signals delivers SIGTERM and SIGINT: the first starts the shutdown,
	// a second forces the exit.
	signals <-chan os.Signal

	// Test seams: openStore replaces backstore.Open; openExtra opens
	// listeners served besides the configured transports.
	openStore func(backstore.Spec) (backstore.Store, error)
	openExtra func(*scsi.Target) ([]boundListener, error)
}

// errForced is serve's result when a second signal cut the shutdown short.
var errForced = errors.New("second signal: exited before the shutdown finished")

// loggedError is an error the daemon has logged already; main only sets
// the exit status.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

// serve runs the daemon until a signal (or ctx) stops it.
func serve(ctx context.Context, opts serveOptions) error {
	cfg, err := config.Load(opts.configPath)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Logging, opts.logOutput)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr does not sync

	if opts.shutdownTimeout <= 0 {
		opts.shutdownTimeout = DefaultShutdownTimeout
	}
	if opts.cpuProfile != "" {
		stop, err := startCPUProfile(opts.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("starting", zap.String("version", version), zap.String("config", cfg.File),
		zap.Int("lus", len(cfg.LUs)), zap.Strings("transports_built", builtTransports()))

	d := &daemon{cfg: cfg, log: log, openStore: opts.openStore, xenSim: opts.xenSim}
	if d.openStore == nil {
		d.openStore = backstore.Open
	}
	if err := d.start(opts.openExtra); err != nil {
		log.Error("startup failed", zap.Error(err))
		return &loggedError{err}
	}
	log.Info("serving", zap.Int("lus", len(d.lus)), zap.Strings("transports", cfg.Transports()),
		zap.Int("listeners", len(d.listeners)))
	if len(d.listeners) == 0 {
		log.Warn("no transport configured: the LUs are open but no initiator can reach them")
	}

	var sig os.Signal
wait:
	for {
		select {
		case sig = <-opts.signals:
			if sig == syscall.SIGHUP {
				d.reload(opts.configPath)
				sig = nil
				continue
			}
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	fields := []zap.Field{zap.Duration("timeout", opts.shutdownTimeout)}
	if sig != nil {
		fields = append(fields, zap.Stringer("signal", sig))
	}
	log.Info("shutting down", fields...)

	done := make(chan error, 1)
	go func() { done <- d.stop(opts.shutdownTimeout) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("shutdown incomplete", zap.Error(err))
				return &loggedError{err}
			}
			log.Info("stopped")
			return nil
		case sig := <-opts.signals:
			if sig == syscall.SIGHUP {
				log.Warn("SIGHUP during the shutdown: ignored")
				continue
			}
			log.Error("second signal: exiting now; LUs not yet flushed may lose writes",
				zap.Stringer("signal", sig))
			return &loggedError{errForced}
		}
	}
}

// reload applies the acl section of the configuration file again
// (SIGHUP): every logged-in nexus is re-evaluated — those whose LUNs
// changed get REPORTED LUNS DATA HAS CHANGED (scsi.Target.Remap) — and
// the initiators it refuses now are logged out (SRP_T_LOGOUT). An invalid
// file changes nothing; changes outside the acl section need a restart.
func (d *daemon) reload(path string) {
	log := d.log.With(zap.String("config", path))
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload: the configuration is invalid; nothing changed", zap.Error(err))
		return
	}
	if !reflect.DeepEqual([]any{cfg.Target, cfg.Logging, cfg.LUs, cfg.RDMA, cfg.Xen}, []any{d.cfg.Target, d.cfg.Logging, d.cfg.LUs, d.cfg.RDMA, d.cfg.Xen}) {
		log.Warn("reload: changes outside the acl section are ignored until a restart")
	}
	d.acl.update(cfg.ACL)
	d.tgt.Remap()
	out := map[scsi.PortID]bool{}
	for _, n := range d.tgt.Nexuses() {
		ini := n.ID().Initiator
		if !out[ini] && d.acl.denied(ini) {
			out[ini] = true
			log.Info("reload: access withdrawn, logging the initiator out", zap.String("initiator", fmt.Sprintf("%x", ini)))
			d.srv.LogoutInitiator(ini)
		}
	}
	entries, enforce := 0, false
	if cfg.ACL != nil {
		entries, enforce = len(cfg.ACL.Initiators), cfg.ACL.Enforce
	}
	log.Info("reloaded the acl", zap.Bool("acl", cfg.ACL != nil), zap.Bool("enforce", enforce), zap.Int("initiators", entries),
		zap.Int("logged_out", len(out)))
}

// daemon is a running target: the SCSI target with its LUs, the SRP
// session layer and the transports' listeners.
type daemon struct {
	cfg       *config.Config
	log       *zap.Logger
	openStore func(backstore.Spec) (backstore.Store, error)
	xenSim    string

	tgt       *scsi.Target
	acl       *aclAccess
	lus       []*scsi.LU // in configuration order
	srv       *srp.Server
	listeners []boundListener

	cancel    context.CancelFunc
	accepting sync.WaitGroup // accept loops
	serving   sync.WaitGroup // srv.Serve calls
}

// start opens the transports, then the LUs, then serves. On failure
// whatever was opened is closed again.
func (d *daemon) start(openExtra func(*scsi.Target) ([]boundListener, error)) error {
	d.tgt = scsi.NewTarget(scsi.TargetConfig{Vendor: d.cfg.Target.Vendor})
	// The acl section decides what each nexus sees (and who may log in)
	// from the first login on; the Xen vscsiif rings combine it with
	// their guests' LUN maps.
	d.acl = newACLAccess(d.cfg.ACL)
	d.tgt.SetAccess(d.acl.access)
	ls, err := openTransports(d.cfg, d.tgt, d.log, d.xenSim, d.acl)
	if err != nil {
		return err
	}
	d.listeners = ls
	if openExtra != nil {
		extra, err := openExtra(d.tgt)
		if err != nil {
			closeAll(d.listeners, nil)
			return err
		}
		d.listeners = append(d.listeners, extra...)
	}
	if err := d.openLUs(); err != nil {
		for _, bl := range d.listeners {
			bl.l.Close()
		}
		d.closeLUs()
		return err
	}
	d.srv = srp.NewServer(srp.Config{Target: d.tgt, Logger: d.log.Named("srp")})
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for _, bl := range d.listeners {
		d.log.Info("listening", zap.String("transport", bl.transport), zap.String("addr", bl.addr),
			zap.String("port_id", fmt.Sprintf("%x", bl.port.ID)), zap.Uint16("relative_port", bl.port.Relative))
		d.accepting.Add(1)
		go d.acceptLoop(ctx, bl)
	}
	return nil
}

// stop shuts down in order: stop accepting, let the sessions finish their
// commands (failing those still running at timeout), then flush and close
// every LU. It reports flush and close failures.
func (d *daemon) stop(timeout time.Duration) error {
	d.cancel()
	for _, bl := range d.listeners {
		if err := bl.l.Close(); err != nil {
			d.log.Warn("closing listener", zap.String("transport", bl.transport), zap.Error(err))
		}
	}
	d.accepting.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := d.srv.Shutdown(ctx)
	cancel()
	if err != nil {
		d.log.Warn("shutdown timeout: closed the remaining channels, their commands failed", zap.Error(err))
	} else {
		d.log.Info("sessions drained")
	}
	d.serving.Wait()
	return d.closeLUs()
}

// closeLUs flushes and closes every open LU.
func (d *daemon) closeLUs() error {
	var errs []error
	for _, lu := range d.lus {
		log := d.log.With(zap.String("lu", lu.Name()))
		if err := lu.Store().Flush(); err != nil {
			log.Error("flush failed", zap.Error(err))
			errs = append(errs, fmt.Errorf("LU %s: flush: %w", lu.Name(), err))
		} else {
			log.Info("flushed LU")
		}
		if err := lu.Close(); err != nil {
			log.Error("close failed", zap.Error(err))
			errs = append(errs, fmt.Errorf("LU %s: close: %w", lu.Name(), err))
		} else {
			log.Info("closed LU")
		}
	}
	d.lus = nil
	return errors.Join(errs...)
}

// openLUs opens every configured LU and adds it to the target.
func (d *daemon) openLUs() error {
	if dir := d.cfg.Target.StateDir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return d.cfg.Errorf("target.state_dir", "%w", err)
		}
	}
	for i := range d.cfg.LUs {
		lu, err := d.openLU(&d.cfg.LUs[i])
		if err != nil {
			return err
		}
		d.lus = append(d.lus, lu)
	}
	return nil
}

func (d *daemon) openLU(c *config.LU) (*scsi.LU, error) {
	log := d.log.With(zap.String("lu", c.Name))
	dc := scsi.DiskConfig{Name: c.Name, LUN: c.LUN, ReadOnly: c.ReadOnly, Identity: c.Identity()}
	if root := d.cfg.Target.StateDir; root != "" {
		dir := filepath.Join(root, c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, d.cfg.Errorf("target.state_dir", "LU %s: %w", c.Name, err)
		}
		pages, err := modepages.Load(dir)
		if err != nil {
			log.Error("saved mode pages unreadable; using the defaults", zap.Error(err))
			pages = nil
		} else if len(pages) > 0 {
			log.Info("restored saved mode pages", zap.String("pages", modepages.String(pages)))
		}
		dc.SavedModePages = pages
		dc.SaveModePages = func(pages [][]byte) error {
			if err := modepages.Save(dir, pages); err != nil {
				log.Error("saving mode pages failed", zap.Error(err))
				return err
			}
			log.Info("saved mode pages", zap.String("pages", modepages.String(pages)))
			return nil
		}
		// Persistent reservations with APTPL (SPC-4 5.12.5). A damaged
		// file stops the LU from starting: silently dropping a
		// reservation would let a fenced initiator write.
		saved, st, err := prstate.Load(dir)
		if err != nil {
			return nil, d.cfg.Errorf("target.state_dir", "LU %s: saved persistent reservations: %w "+
				"(the LU is not served without them; restore the file from a backup, or remove it to start with no reservations)", c.Name, err)
		}
		if st != nil {
			log.Info("restored persistent reservations", zap.Stringer("state", st))
		}
		dc.SavedPR = saved
		dc.SavePR = func(state []byte) error {
			if err := prstate.Save(dir, state); err != nil {
				log.Error("saving persistent reservations failed; the PERSISTENT RESERVE OUT command fails", zap.Error(err))
				return err
			}
			if st, err := scsi.ParsePRState(state); err == nil {
				log.Info("saved persistent reservations", zap.Stringer("state", st))
			}
			return nil
		}
	}

	store, err := d.openStore(c.Backstore)
	if err != nil {
		field := "backstore"
		var pe *fs.PathError
		var oe *backstore.OpError
		if errors.As(err, &pe) || errors.As(err, &oe) && oe.Op == "open" {
			field = "backstore.path"
		}
		return nil, d.cfg.Errorf(c.Field(field), "LU %s: %w", c.Name, err)
	}
	dc.Store = store
	lu, err := scsi.NewDisk(dc)
	if err != nil {
		store.Close()
		return nil, d.cfg.Errorf(c.Field(""), "LU %s: %w", c.Name, err)
	}
	d.acl.addLU(lu)
	if err := d.tgt.AddLU(lu); err != nil {
		lu.Close()
		return nil, d.cfg.Errorf(c.Field(""), "LU %s: %w", c.Name, err)
	}
	id := lu.Identity()
	log.Info("LU ready",
		zap.Uint16("lun", c.LUN),
		zap.String("type", c.Type),
		zap.String("backstore", c.Backstore.Kind),
		zap.String("path", c.Backstore.Path),
		zap.Int64("size", store.Size()),
		zap.String("size_human", config.FormatSize(store.Size())),
		zap.Uint32("block_size", store.BlockSize()),
		zap.Bool("read_only", c.ReadOnly || store.Caps().ReadOnly),
		zap.Bool("direct", c.Backstore.Direct),
		zap.String("serial", id.Serial),
		zap.String("wwn", fmt.Sprintf("naa.%x", id.NAA)),
		zap.String("vendor", id.Vendor), zap.String("product", id.Product), zap.String("revision", id.Revision),
	)
	return lu, nil
}
