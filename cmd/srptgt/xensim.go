package main

// srptgt xensim: the simulated Xen hypervisor and its dom0 tools; serve
// --xen-sim, which runs the Xen transports on it; and the guest side of
// srptgt bench --xen-sim.

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/srpring"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

func newXenSimCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		socket        string
		pages, grants int
		level         string
	)
	cmd := &cobra.Command{
		Use:   "xensim --socket PATH",
		Short: "Run a simulated Xen hypervisor and XenStore for serve --xen-sim and bench --xen-sim",
		Long: "xensim plays the Xen hypervisor and XenStore on this host (docs/xensim.md):\n" +
			"guest memory and grant tables in memfds, event channels over eventfds, an\n" +
			"in-memory XenStore with watches, transactions and permissions. `srptgt serve\n" +
			"--xen-sim PATH` is its dom0 backend; every `srptgt bench --xen-sim PATH` is a\n" +
			"guest domain, created when it connects and destroyed when it exits. It runs\n" +
			"until SIGTERM or SIGINT.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(config.Logging{Level: level}, stderr)
			if err != nil {
				return err
			}
			s, err := xensim.Listen(socket, xensim.Config{Logger: log.Named("xensim"), DefaultPages: pages, DefaultGrants: grants})
			if err != nil {
				return failure(err)
			}
			log.Info("simulator listening", zap.String("socket", socket))
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			sig := <-sigs
			log.Info("stopping", zap.Stringer("signal", sig))
			return failure(s.Close())
		},
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "the simulator's control socket")
	cmd.Flags().IntVar(&pages, "pages", 0, "default guest memory in 4 KiB pages (default 16384)")
	cmd.Flags().IntVar(&grants, "grants", 0, "default grant table entries per guest (default 16384)")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkPersistentFlagRequired("socket")

	dial := func() (*xensim.Hypervisor, error) { return xensim.Dial(socket) }
	domains := &cobra.Command{
		Use:   "domains",
		Short: "List the simulated domains (domid name pages grants)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := dial()
			if err != nil {
				return failure(err)
			}
			defer h.Close()
			s, err := h.Domains()
			if err != nil {
				return failure(err)
			}
			fmt.Fprint(stdout, s)
			return nil
		},
	}
	destroy := &cobra.Command{
		Use:   "destroy DOMID",
		Short: "Destroy a guest domain, as if it crashed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 16)
			if err != nil {
				return fmt.Errorf("domid %q: %v", args[0], err)
			}
			h, err := dial()
			if err != nil {
				return failure(err)
			}
			defer h.Close()
			return failure(h.Destroy(xen.DomID(id)))
		},
	}
	xs := &cobra.Command{
		Use:   "xenstore read PATH | write PATH VALUE | ls PATH | rm PATH",
		Short: "Read and change XenStore as dom0 (the toolstack's hot-plug is writes here)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := dial()
			if err != nil {
				return failure(err)
			}
			defer h.Close()
			st, err := h.Store()
			if err != nil {
				return failure(err)
			}
			defer st.Close()
			switch {
			case args[0] == "read" && len(args) == 2:
				v, err := st.Read(0, args[1])
				if err != nil {
					return failure(err)
				}
				fmt.Fprintln(stdout, v)
			case args[0] == "write" && len(args) >= 3 && len(args)%2 == 1:
				for i := 1; i < len(args); i += 2 {
					if err := st.Write(0, args[i], args[i+1]); err != nil {
						return failure(err)
					}
				}
			case args[0] == "ls" && len(args) == 2:
				return failure(xsList(stdout, st, args[1], ""))
			case args[0] == "rm" && len(args) == 2:
				return failure(st.Remove(0, args[1]))
			default:
				return fmt.Errorf("xenstore: want read PATH, write PATH VALUE..., ls PATH or rm PATH")
			}
			return nil
		},
	}
	cmd.AddCommand(domains, destroy, xs)
	return cmd
}

func xsList(w io.Writer, st xen.Store, path, indent string) error {
	kids, err := st.List(0, path)
	if err != nil {
		return err
	}
	for _, k := range kids {
		p := strings.TrimSuffix(path, "/") + "/" + k
		v, _ := st.Read(0, p)
		fmt.Fprintf(w, "%s%s = %q\n", indent, k, v)
		if err := xsList(w, st, p, indent+" "); err != nil {
			return err
		}
	}
	return nil
}

// xenSRPTargetPortID is the SRP target port of the native SRP ring.
var xenSRPTargetPortID = func() [16]byte {
	h := sha256.Sum256([]byte("srptgt xen srp ring target port"))
	var id [16]byte
	copy(id[:], h[:])
	return id
}()

// openXenSim opens the Xen transports of the xen section on the simulator
// at path: the native SRP ring for every configured guest.
func openXenSim(path string, cfg *config.Config, tgt *scsi.Target, log *zap.Logger) ([]boundListener, error) {
	hv, err := xensim.Dial(path)
	if err != nil {
		return nil, cfg.Errorf("xen", "--xen-sim %s: %v", path, err)
	}
	var guests []srpring.Guest
	vhost := map[string]int{}
	for _, g := range cfg.Xen.Guests {
		guests = append(guests, srpring.Guest{Domain: g.Domain, VHost: vhost[g.Domain]})
		vhost[g.Domain]++
	}
	l, err := srpring.Listen(srpring.Config{Hypervisor: hv, Logger: log.Named("srpring"), TargetPortID: xenSRPTargetPortID,
		Guests: guests, LUNames: func() map[uint16]string {
			m := map[uint16]string{}
			for _, lu := range tgt.LUs() {
				m[lu.LUN()] = lu.Name()
			}
			return m
		}})
	if err != nil {
		hv.Close()
		return nil, cfg.Errorf("xen", "--xen-sim %s: %v", path, err)
	}
	port := tgt.AddPort(scsi.PortID(xenSRPTargetPortID), "xen srp ring")
	log.Info("Xen SRP ring target port (simulated hypervisor)", zap.String("socket", path),
		zap.String("port_id", fmt.Sprintf("%x", xenSRPTargetPortID)))
	return []boundListener{{transport: "xen-srp", addr: path, l: &closeAlso{Listener: l, also: hv.Close}, port: port}}, nil
}

// closeAlso closes a listener, then releases what it ran on.
type closeAlso struct {
	transport.Listener
	also func() error
}

func (c *closeAlso) Close() error {
	err := c.Listener.Close()
	c.also()
	return err
}

