package main

// The RDMA transport in serve, and `srptgt rdma devices`.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/transport/rdma"
)

// openRDMA opens a listener for every rdma.listen address. Each address is
// one SRP target port: rdma.port_id if configured, else the ID LIO would
// give the listening device's port (id_ext and ioc_guid both its GUID).
func openRDMA(cfg *config.Config, tgt *scsi.Target, log *zap.Logger) ([]boundListener, error) {
	if !rdma.BuiltIn {
		return nil, notBuilt(cfg, "rdma") // built with CGO_ENABLED=0
	}
	tr, err := rdma.New(rdma.Config{Logger: log.Named("rdma"), Polling: os.Getenv("SRPTGT_RDMA_POLLING") == "1"})
	if err != nil {
		return nil, cfg.Errorf("rdma", "%v", err)
	}
	shared := &rdmaShared{tr: tr}
	var ls []boundListener
	fail := func(err error) ([]boundListener, error) {
		closeAll(ls, nil) // the last listener closes the transport
		tr.Close()        // (or nothing was listening)
		return nil, err
	}
	for i, addr := range cfg.RDMA.Listen {
		field := fmt.Sprintf("rdma.listen[%d]", i)
		l, err := tr.Listen(addr)
		if err != nil {
			return fail(cfg.Errorf(field, "%v", err))
		}
		id := [16]byte(cfg.RDMA.PortID)
		if !cfg.RDMA.PortIDSet {
			if id, err = l.DefaultPortID(); err != nil {
				l.Close()
				return fail(cfg.Errorf(field, "%v", err))
			}
		}
		shared.add()
		port := tgt.AddPort(scsi.PortID(id), "rdma "+addr.String())
		log.Info("RDMA target port", zap.Stringer("listen", addr), zap.String("device", l.Device()),
			zap.String("port_id", fmt.Sprintf("%x", id)),
			zap.String("ib_srp", rdma.FormatPortID(id)+",dest="+addr.String()))
		ls = append(ls, boundListener{transport: "rdma", addr: addr.String(), l: &rdmaListener{Listener: l, shared: shared}, port: port})
	}
	return ls, nil
}

// rdmaShared closes the transport (its registered memory) after the last
// of its listeners.
type rdmaShared struct {
	tr *rdma.Transport
	mu sync.Mutex
	n  int
}

func (s *rdmaShared) add() {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

func (s *rdmaShared) release() error {
	s.mu.Lock()
	s.n--
	last := s.n == 0
	s.mu.Unlock()
	if last {
		return s.tr.Close()
	}
	return nil
}

type rdmaListener struct {
	*rdma.Listener
	shared *rdmaShared
	once   sync.Once
}

func (l *rdmaListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { err = errors.Join(err, l.shared.release()) })
	return err
}

func newRDMACmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rdma",
		Short: "RDMA tools",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New(`"rdma" needs a subcommand: devices`)
		},
	}
	devices := &cobra.Command{
		Use:   "devices",
		Short: "List RDMA devices, their ports, GIDs and network devices",
		Long: "devices lists every RDMA device (/sys/class/infiniband) with its ports:\n" +
			"state, link layer, the GIDs in use with their network device and type, the\n" +
			"network device's addresses (candidates for rdma.listen), and the SRP target\n" +
			"port ID srptgt uses by default on that port, as Linux ib_srp's add_target\n" +
			"options.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			devs, err := rdma.Devices()
			if err != nil {
				return failure(err)
			}
			rdma.WriteDevices(stdout, devs)
			return nil
		},
	}
	cmd.AddCommand(devices)
	return cmd
}
