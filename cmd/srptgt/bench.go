package main

// srptgt bench: fio-like I/O through the Go SRP initiator (internal/bench).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/srptgt/srptgt/internal/bench"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/rdma"
)

// benchOptions are bench's flags common to every target.
type benchOptions struct {
	lun     string
	rw      string
	bs      string
	size    string
	iodepth int
	rwmix   int
	time    time.Duration
	verify  bool
	json    bool
}

// rdmaBench holds bench's --rdma flags.
type rdmaBench struct {
	addr        string
	src         string
	portID      string
	initiatorID string
	poll        bool
}

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	var o benchOptions
	var r rdmaBench
	var x *xenSimBench
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench --rdma IP:PORT|--xen-sim PATH [--lun NAME|N] [--rw MODE] [--bs SIZE] [--iodepth N] [--time D] [--verify] [--json]",
		Short: "Measure a target with fio-like I/O through the Go SRP initiator",
		Long: "bench logs the Go SRP initiator in to a target (srptgt, or LIO ib_srpt) and\n" +
			"runs one fio-like job on one LUN for --time: IOPS, bandwidth and latency\n" +
			"percentiles, a progress line on stderr while it runs. --rdma connects over\n" +
			"RDMA CM with real verbs; --xen-sim runs as a guest of srptgt xensim.\n" +
			"--lun takes a LUN number or an LU name (its unit serial number).\n" +
			"--verify writes self-checking data, checks what it reads\n" +
			"back and re-reads every written block at the end. The target port ID\n" +
			"defaults to the local RDMA port's when the target address is local (as\n" +
			"srptgt and LIO derive theirs); give --port-id otherwise.\n\n" +
			"Exit status: 0, or 1 if a command failed or a block did not verify.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return failure(err)
				}
				defer stopProfile()
			}
			return failure(runBench(ctx, o, stdout, stderr, func(o bench.Options) (*bench.Result, error) {
				switch {
				case r.addr != "":
					return benchRDMA(ctx, &r, o)
				case x.path != "":
					return benchXenSim(ctx, x, o, stderr)
				}
				return nil, errors.New("name the target: --rdma IP:PORT or --xen-sim PATH")
			}))
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.addr, "rdma", "", "target RDMA CM address IP:PORT (port 5000 if omitted)")
	f.StringVar(&r.src, "src", "", "--rdma: local address to connect from")
	f.StringVar(&r.portID, "port-id", "", "--rdma: SRP target port ID (32 hex digits: id_ext then ioc_guid)")
	f.StringVar(&r.initiatorID, "initiator-id", "", "--rdma: SRP initiator port ID (32 hex digits; default 00000000000000b1 + the local port GUID)")
	f.BoolVar(&r.poll, "poll", false, "--rdma: poll the completion queue instead of sleeping on it")
	f.StringVar(&o.lun, "lun", "0", "LUN number or LU name")
	f.StringVar(&o.rw, "rw", "randread", "read, write, randread, randwrite or randrw")
	f.StringVar(&o.bs, "bs", "4k", "I/O size")
	f.StringVar(&o.size, "size", "", "use only the first SIZE bytes of the LU")
	f.IntVar(&o.iodepth, "iodepth", 1, "commands in flight")
	f.IntVar(&o.rwmix, "rwmixread", 50, "percentage of reads for randrw")
	f.DurationVar(&o.time, "time", 10*time.Second, "how long to run")
	f.BoolVar(&o.verify, "verify", false, "write self-checking data and verify it")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the bench (the initiator side) to this file (diagnostics)")
	x = addXenSimBenchFlags(cmd)
	return cmd
}

// runBench checks the common flags, runs the job on the target run dials
// and prints the result.
func runBench(ctx context.Context, o benchOptions, stdout, stderr io.Writer, run func(bench.Options) (*bench.Result, error)) error {
	mode, err := bench.ParseMode(o.rw)
	if err != nil {
		return err
	}
	bs, err := bench.ParseSize(o.bs)
	if err != nil {
		return err
	}
	var size int64
	if o.size != "" {
		if size, err = bench.ParseSize(o.size); err != nil {
			return err
		}
	}
	if o.iodepth < 1 || o.iodepth > 1024 {
		return fmt.Errorf("--iodepth %d: want 1 to 1024", o.iodepth)
	}
	res, err := run(bench.Options{LUN: o.lun, RW: mode, BS: int(bs), IODepth: o.iodepth,
		Time: o.time, RWMixRead: o.rwmix, Size: size, Verify: o.verify,
		Progress: stderr, ProgressTTY: isTerminal(stderr)})
	if res != nil {
		if perr := printResult(stdout, res, o.json); perr != nil && err == nil {
			err = perr
		}
	}
	if err == nil && res != nil && (res.Errors > 0 || res.Mismatches > 0) {
		err = fmt.Errorf("%d commands failed, %d blocks did not verify (first: %s)", res.Errors, res.Mismatches, res.FirstError)
	}
	return err
}

// printResult prints a result as text or JSON.
func printResult(w io.Writer, res *bench.Result, asJSON bool) error {
	if asJSON {
		return res.WriteJSON(w)
	}
	res.WriteText(w)
	return nil
}

// benchRDMA runs the job through the Go SRP initiator over RDMA verbs.
func benchRDMA(ctx context.Context, r *rdmaBench, o bench.Options) (*bench.Result, error) {
	in, label, closeFn, err := dialRDMA(ctx, r, o.BS, o.IODepth)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	o.Label = label
	return bench.Run(ctx, in, o)
}

// dialRDMA logs the Go initiator in over RDMA verbs.
func dialRDMA(ctx context.Context, o *rdmaBench, bs, iodepth int) (scsitest.Initiator, string, func(), error) {
	dst, err := rdma.ParseAddr(o.addr)
	if err != nil {
		return nil, "", nil, err
	}
	var src netip.Addr
	if o.src != "" {
		if src, err = netip.ParseAddr(o.src); err != nil {
			return nil, "", nil, fmt.Errorf("--src: %w", err)
		}
	}
	var cfg initiator.Config
	if o.portID != "" {
		if cfg.TargetPortID, err = rdma.ParsePortID(o.portID); err != nil {
			return nil, "", nil, fmt.Errorf("--port-id: %w", err)
		}
	} else if !isLocal(dst.Addr()) {
		return nil, "", nil, fmt.Errorf("%v is not a local address: give the target's --port-id", dst.Addr())
	}
	if o.initiatorID != "" {
		if cfg.InitiatorPortID, err = rdma.ParsePortID(o.initiatorID); err != nil {
			return nil, "", nil, fmt.Errorf("--initiator-id: %w", err)
		}
	}
	// room for the rings and two registered buffers per command in flight
	arena := max(64<<20, 1<<bitsFor(4*iodepth*bs+16<<20))
	tr, err := rdma.New(rdma.Config{ArenaSize: arena, Polling: o.poll})
	if err != nil {
		return nil, "", nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(dctx, rdma.DialConfig{Dst: dst, Src: src})
	if err != nil {
		tr.Close()
		return nil, "", nil, err
	}
	// The local port's GUID: the target's when it is on this machine (as
	// srptgt and LIO derive their port IDs), and ib_srp's initiator ID.
	guid := conn.PortGUID()
	if o.portID == "" {
		cfg.TargetPortID = rdma.PortIDFromGUID(guid)
	}
	if o.initiatorID == "" {
		cfg.InitiatorPortID = rdma.MakePortID(0xb1, guid)
	}
	cfg.ImmData = true
	cfg.MultiChannel = srp.MultiChanSingle
	in, err := initiator.Dial(dctx, conn, cfg)
	if err != nil {
		conn.Close()
		tr.Close()
		var rej *initiator.RejectError
		if errors.As(err, &rej) {
			return nil, "", nil, fmt.Errorf("login to %v (%s) rejected: SRP_LOGIN_REJ reason %#08x", dst, rdma.FormatPortID(cfg.TargetPortID), rej.Reason)
		}
		return nil, "", nil, fmt.Errorf("login to %v: %w", dst, err)
	}
	closeFn := func() {
		in.Logout()
		tr.Close()
	}
	return in, "rdma " + dst.String(), closeFn, nil
}

func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// isLocal reports whether ip is assigned to this machine.
func isLocal(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
