package main

// srptgt xen: the toolstack's part of Xen PV SCSI, which upstream xl 4.17
// lacks (docs/xen.md): attach, detach and list the vscsi devices of
// guests, by writing XenStore as SUSE's libxl would. serve's own backend
// picks the changes up (hot-add, hot-remove). And openXenDev: the xen
// section of serve on the real hypervisor (/dev/xen/*).

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xendev"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// openXenDev opens the Xen transports of the xen section on the real
// hypervisor (dom0's /dev/xen devices and XenStore).
func openXenDev(cfg *config.Config, tgt *scsi.Target, log *zap.Logger, acl *aclAccess) ([]boundListener, error) {
	hv, err := xendev.Open()
	if err != nil {
		return nil, cfg.Errorf("xen", "%v", err)
	}
	return openXenOn(hv, "dom0", cfg, tgt, log, acl)
}

// xenStoreOpener returns a XenStore connection: the simulator's with
// --xen-sim, else dom0's (--xenstore overrides the socket or device).
type xenStoreOpener struct {
	sim, path string
}

func (o *xenStoreOpener) open() (xen.Store, func(), error) {
	if o.sim != "" {
		hv, err := xensim.Dial(o.sim)
		if err != nil {
			return nil, nil, err
		}
		st, err := hv.Store()
		if err != nil {
			hv.Close()
			return nil, nil, err
		}
		return st, func() { st.Close(); hv.Close() }, nil
	}
	hv := &xendev.Hypervisor{StorePath: o.path}
	st, err := hv.Store()
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}

func newXenCmd(stdout io.Writer) *cobra.Command {
	var o xenStoreOpener
	cmd := &cobra.Command{
		Use:   "xen",
		Short: "Attach, detach and list the PV SCSI devices of Xen guests",
		Long: "Upstream xl has no PV SCSI (vscsi=) support, so srptgt does the toolstack's\n" +
			"part: it writes the vscsi nodes of both the guest (frontend) and dom0\n" +
			"(backend) in XenStore. A running `srptgt serve` with a xen section serves\n" +
			"them: attaching to a running guest is a hot-add, detaching a hot-remove.\n" +
			"Guests listed in the configuration are attached by serve itself.",
	}
	cmd.PersistentFlags().StringVar(&o.sim, "xen-sim", "", "use the simulated hypervisor at this socket (srptgt xensim)")
	cmd.PersistentFlags().StringVar(&o.path, "xenstore", "", "XenStore socket or device (default /run/xenstored/socket, else /dev/xen/xenbus)")

	var (
		domain, lu, vdev string
		vhost            int
		wait             time.Duration
	)
	attach := &cobra.Command{
		Use:   "attach --domain NAME|ID --lun LU --vdev H:C:T:L [--vhost N]",
		Short: "Give a guest a LUN (a hot-add if the guest is running)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := xen.ParseAddr(vdev)
			if err != nil {
				return err
			}
			if c.Flags().Changed("vhost") {
				a.Host = uint32(vhost)
			}
			st, done, err := o.open()
			if err != nil {
				return failure(err)
			}
			defer done()
			if err := xen.Attach(st, xen.AttachRequest{Domain: domain, LU: lu, Addr: a}); err != nil {
				return failure(err)
			}
			fmt.Fprintf(stdout, "attached %s to %s at %s (vhost %d)\n", lu, domain, a, a.Host)
			return nil
		},
	}
	attach.Flags().StringVar(&domain, "domain", "", "guest domain name or ID")
	attach.Flags().StringVar(&lu, "lun", "", "the LU (a name from the configuration's luns)")
	attach.Flags().StringVar(&vdev, "vdev", "", "the guest's virtual SCSI address H:C:T:L (H: vhost; C must be 0, T < 64, L < 256)")
	attach.Flags().IntVar(&vhost, "vhost", 0, "the guest's virtual SCSI host (overrides H)")
	for _, f := range []string{"domain", "lun", "vdev"} {
		_ = attach.MarkFlagRequired(f)
	}

	detach := &cobra.Command{
		Use:   "detach --domain NAME|ID [--vhost N] [--lun LU | --vdev H:C:T:L]",
		Short: "Take a LUN (or, with neither --lun nor --vdev, a whole vhost) from a guest",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			req := xen.DetachRequest{Domain: domain, Vhost: vhost, LU: lu, Wait: wait}
			if vdev != "" {
				a, err := xen.ParseAddr(vdev)
				if err != nil {
					return err
				}
				if !c.Flags().Changed("vhost") {
					req.Vhost = int(a.Host)
				}
				req.Addr = &a
			}
			st, done, err := o.open()
			if err != nil {
				return failure(err)
			}
			defer done()
			if err := xen.Detach(st, req); err != nil {
				return failure(err)
			}
			what := "vhost " + fmt.Sprint(req.Vhost)
			if lu != "" {
				what = lu
			} else if vdev != "" {
				what = vdev
			}
			fmt.Fprintf(stdout, "detached %s from %s\n", what, domain)
			return nil
		},
	}
	detach.Flags().StringVar(&domain, "domain", "", "guest domain name or ID")
	detach.Flags().StringVar(&lu, "lun", "", "the LU to take away")
	detach.Flags().StringVar(&vdev, "vdev", "", "the guest address to take away")
	detach.Flags().IntVar(&vhost, "vhost", 0, "the guest's virtual SCSI host")
	detach.Flags().DurationVar(&wait, "wait", 10*time.Second, "whole-vhost detach: how long to wait for the backend to close")
	_ = detach.MarkFlagRequired("domain")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the guests' PV SCSI devices and their LUNs",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, done, err := o.open()
			if err != nil {
				return failure(err)
			}
			defer done()
			devs, err := xen.List(st, 0)
			if err != nil {
				return failure(err)
			}
			writeXenList(stdout, devs)
			return nil
		},
	}
	cmd.AddCommand(attach, detach, list)
	return cmd
}

func writeXenList(w io.Writer, devs []xen.DeviceInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tNAME\tVHOST\tBACKEND\tFRONTEND\tLUNS")
	for _, d := range devs {
		var luns []string
		for _, l := range d.LUNs {
			luns = append(luns, fmt.Sprintf("%s %s=%s(%s)", l.Entry, l.Addr, l.LU, l.State))
		}
		sort.Strings(luns)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", d.Domain, d.Name, d.Vhost, d.Backend, d.Frontend, strings.Join(luns, ", "))
	}
	tw.Flush()
}
