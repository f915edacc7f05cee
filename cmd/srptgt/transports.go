package main

// The transports of serve, wired in this one file.
//
// To add a transport (rdma, xen):
//
//  1. Add its name to builtTransports; `srptgt version` prints it on the
//     "transports:" line, which the VM harness reads.
//  2. In openTransports, replace the "not built" error of its config
//     section with code that opens its listener(s) and registers a target
//     port for each, for example
//
//	for _, addr := range cfg.RDMA.Listen {
//		l, err := rdma.Listen(addr, ...)
//		if err != nil {
//			return closeAll(ls, cfg.Errorf("rdma.listen", "%s: %v", addr, err))
//		}
//		port := tgt.AddPort(portID, "rdma "+addr.String())
//		ls = append(ls, boundListener{transport: "rdma", addr: addr.String(), l: l, port: port})
//	}
//
// That is all: acceptLoop hands every channel a listener accepts to the SRP
// session layer (srp.Server.Serve), and serve's shutdown closes the
// listeners, drains the sessions and then flushes and closes the LUs.
// openTransports runs before any backstore is opened, so that a transport
// that cannot start leaves no file created.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/rdma"
)

// builtTransports lists the transports compiled into this binary.
func builtTransports() []string {
	var t []string
	if rdma.BuiltIn {
		t = append(t, "rdma")
	}
	if runtime.GOOS == "linux" {
		t = append(t, "xen") // transport/xen/xendev: pure Go on /dev/xen
	}
	return t
}

func built(name string) bool {
	for _, t := range builtTransports() {
		if t == name {
			return true
		}
	}
	return false
}

// transportsLine is builtTransports space-separated, or "none".
func transportsLine() string {
	if t := builtTransports(); len(t) > 0 {
		return strings.Join(t, " ")
	}
	return "none"
}

// boundListener is a listener and the target port its channels log in to.
type boundListener struct {
	transport string // "rdma", "xen", "mem"
	addr      string // for logs
	l         transport.Listener
	port      *scsi.Port
}

// openTransports opens the listeners of every transport section in cfg
// and registers their target ports on tgt. A section whose transport is
// not built in is an error naming it: serve never ignores a configured
// transport.
// xenSim, if set, runs the xen section on the simulated hypervisor at that
// socket (serve --xen-sim). acl is the access policy the Xen vscsiif rings
// combine with their guests' LUN maps.
func openTransports(cfg *config.Config, tgt *scsi.Target, log *zap.Logger, xenSim string, acl *aclAccess) ([]boundListener, error) {
	var (
		ls   []boundListener
		errs config.Errors
	)
	if cfg.RDMA != nil {
		rl, err := openRDMA(cfg, tgt, log)
		if err != nil {
			return closeAll(ls, err)
		}
		ls = append(ls, rl...)
	}
	if cfg.Xen != nil {
		if xenSim == "" {
			xl, err := openXenDev(cfg, tgt, log, acl)
			if err != nil {
				return closeAll(ls, err)
			}
			ls = append(ls, xl...)
		} else {
			xl, err := openXenSim(xenSim, cfg, tgt, log, acl)
			if err != nil {
				return closeAll(ls, err)
			}
			ls = append(ls, xl...)
		}
	}
	if len(errs) > 0 {
		return closeAll(ls, errs)
	}
	return ls, nil
}

func notBuilt(cfg *config.Config, name string) *config.Error {
	return cfg.Errorf(name, "the %s transport is not built into this binary yet (transports: %s); remove the %s section or use a binary built with it",
		name, transportsLine(), name)
}

// closeAll closes listeners opened before a failure and returns err.
func closeAll(ls []boundListener, err error) ([]boundListener, error) {
	for _, bl := range ls {
		bl.l.Close()
	}
	return nil, err
}

// acceptLoop hands each channel bl accepts to the session layer until ctx
// ends or the listener closes. Serve goroutines are counted in d.serving.
func (d *daemon) acceptLoop(ctx context.Context, bl boundListener) {
	defer d.accepting.Done()
	log := d.log.With(zap.String("transport", bl.transport), zap.String("addr", bl.addr))
	backoff := time.Duration(0)
	for {
		ch, err := bl.l.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, transport.ErrListenerClosed) {
				return
			}
			// A failed accept (one bad connection request) must not
			// stop the listener; back off so a persistent failure
			// does not spin.
			backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
			log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		d.serving.Add(1)
		go func() {
			defer d.serving.Done()
			err := d.srv.Serve(ch, bl.port)
			log.Debug("channel ended", zap.Error(err))
		}()
	}
}
