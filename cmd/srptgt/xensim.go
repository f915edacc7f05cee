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
	"sync"
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

// Target port IDs of the two Xen rings.
var (
	xenVSCSITargetPortID = portIDFor("srptgt xen vscsiif target port")
	xenSRPTargetPortID   = portIDFor("srptgt xen srp ring target port")
)

func portIDFor(s string) [16]byte {
	h := sha256.Sum256([]byte(s))
	return [16]byte(h[:16])
}

// openXenSim opens the Xen transports of the xen section on the simulator
// at path.
func openXenSim(path string, cfg *config.Config, tgt *scsi.Target, log *zap.Logger, acl *aclAccess) ([]boundListener, error) {
	hv, err := xensim.Dial(path)
	if err != nil {
		return nil, cfg.Errorf("xen", "--xen-sim %s: %v", path, err)
	}
	ls, err := openXenOn(hv, "xen-sim "+path, cfg, tgt, log, acl)
	if err != nil {
		hv.Close()
		return nil, err
	}
	// the last listener to close releases the simulator connection
	var mu sync.Mutex
	open := len(ls)
	for i := range ls {
		ls[i].l = &closeAlso{Listener: ls[i].l, also: func() error {
			mu.Lock()
			defer mu.Unlock()
			if open--; open == 0 {
				return hv.Close()
			}
			return nil
		}}
	}
	return ls, nil
}

// openXenOn opens both Xen transports of the xen section on hv (the real
// hypervisor or the simulator): the vscsiif backend, whose rings see the
// LUNs their guest was given, and the native SRP ring, whose logins see
// the target's LUs as every SRP initiator does.
func openXenOn(hv xen.Hypervisor, label string, cfg *config.Config, tgt *scsi.Target, log *zap.Logger, acl *aclAccess) ([]boundListener, error) {
	var guests []xen.Guest
	var srpGuests []srpring.Guest
	for _, g := range cfg.Xen.Guests {
		xg := xen.Guest{Domain: g.Domain}
		vhosts := map[int]bool{}
		for _, l := range g.LUNs {
			xg.LUNs = append(xg.LUNs, xen.LUNSpec{LU: l.LU, Addr: xen.Addr{Host: l.Host, Channel: l.Channel, Target: l.Target, LUN: l.LUN}})
			if !vhosts[int(l.Host)] {
				vhosts[int(l.Host)] = true
				srpGuests = append(srpGuests, srpring.Guest{Domain: g.Domain, VHost: int(l.Host)})
			}
		}
		guests = append(guests, xg)
	}
	names := map[string]bool{}
	for _, l := range cfg.LUs {
		names[l.Name] = true
	}
	vport := tgt.AddPort(scsi.PortID(xenVSCSITargetPortID), "xen vscsiif")
	acc := &xenAccess{tgt: tgt, vport: vport, maps: map[[16]byte][]xen.LUNMap{}, acl: acl, hv: hv}
	// MapThreshold stays unset: the backend then reads
	// SRPTGT_XEN_MAP_THRESHOLD (bytes; for measuring grant map against copy).
	vl, err := xen.Listen(xen.Config{Hypervisor: hv, Logger: log.Named("xen"), TargetPortID: xenVSCSITargetPortID,
		Guests: guests, HasLU: func(n string) bool { return names[n] }, OnMap: acc.onMap, MaxSegments: 256})
	if err != nil {
		return nil, cfg.Errorf("xen", "%s: %v", label, err)
	}
	sl, err := srpring.Listen(srpring.Config{Hypervisor: hv, Logger: log.Named("srpring"), TargetPortID: xenSRPTargetPortID,
		Guests: srpGuests, LUNames: func() map[uint16]string {
			m := map[uint16]string{}
			for _, lu := range tgt.LUs() {
				m[lu.LUN()] = lu.Name()
			}
			return m
		}})
	if err != nil {
		vl.Close()
		return nil, cfg.Errorf("xen", "%s: %v", label, err)
	}
	sport := tgt.AddPort(scsi.PortID(xenSRPTargetPortID), "xen srp ring")
	log.Info("Xen target ports", zap.String("hypervisor", label),
		zap.String("vscsiif_port_id", fmt.Sprintf("%x", xenVSCSITargetPortID)),
		zap.String("srp_ring_port_id", fmt.Sprintf("%x", xenSRPTargetPortID)))
	return []boundListener{
		{transport: "xen", addr: label, l: vl, port: vport},
		{transport: "xen-srp", addr: label, l: sl, port: sport},
	}, nil
}

// xenAccess is the target's access function once a vscsiif ring exists:
// a ring's nexus sees the LUNs its guest was given, at the guest's
// addresses, as the acl section filters them; every other nexus is up to
// the acl section (without one, every LU at its own LUN, as without an
// access function).
type xenAccess struct {
	tgt       *scsi.Target
	vport     *scsi.Port
	acl       *aclAccess
	hv        xen.Hypervisor
	mu        sync.Mutex
	installed bool
	maps      map[[16]byte][]xen.LUNMap
	lus       map[string]*scsi.LU
	all       []scsi.Mapping
}

// onMap records a ring's LUNs and re-evaluates the nexuses. It runs on
// the backend's goroutine, outside the target's lock, so it may read the
// target's LUs.
func (a *xenAccess) onMap(initiator [16]byte, luns []xen.LUNMap) {
	lus := a.tgt.LUs()
	a.mu.Lock()
	a.lus = map[string]*scsi.LU{}
	a.all = a.all[:0]
	for _, lu := range lus {
		a.lus[lu.Name()] = lu
		a.all = append(a.all, scsi.Mapping{LUN: lu.LUN(), LU: lu})
	}
	if luns == nil {
		delete(a.maps, initiator)
	} else {
		a.maps[initiator] = luns
	}
	install := !a.installed
	a.installed = true
	a.mu.Unlock()
	if a.acl != nil && luns != nil {
		// Which guest a ring's initiator port ID is (acl entries name
		// guests): from XenStore, on a connection of its own.
		if st, err := a.hv.Store(); err == nil {
			a.acl.learnXenDomains(st)
			st.Close()
		}
	}
	if install {
		a.tgt.SetAccess(a.access)
	}
	a.tgt.Remap()
}

func (a *xenAccess) access(id scsi.NexusID, port *scsi.Port) ([]scsi.Mapping, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if port != a.vport {
		if a.acl != nil {
			return a.acl.access(id, port)
		}
		return append([]scsi.Mapping(nil), a.all...), nil
	}
	var out []scsi.Mapping
	for _, m := range a.maps[[16]byte(id.Initiator)] {
		if lu := a.lus[m.LU]; lu != nil {
			out = append(out, scsi.Mapping{LUN: m.LUN, LU: lu})
		}
	}
	if a.acl != nil {
		return a.acl.filterXen(id, out)
	}
	return out, nil
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
