package main

// The guest side of srptgt bench --xen-sim.

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/srptgt/srptgt/internal/bench"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// xenSimGuest is the guest side of bench --xen-sim: a domain on the
// simulator whose frontend reattaches, and retries the commands that did
// not complete, when the backend goes away and comes back.
type xenSimGuest struct {
	g     *xensim.Guest
	ring  string
	vhost int
	lun   uint16
	log   io.Writer

	mu    sync.Mutex
	cur   scsitest.Initiator
	srp   *initiator.Initiator
	conn  *frontend.SRPConn
	vscsi *frontend.VSCSI
	dsrp  *frontend.SRPDirect
	// direct: the lean SRP initiator (frontend.SRPDirect) for depth
	// commands of at most maxBytes, instead of the Go SRP initiator
	direct          bool
	depth, maxBytes int
	gen             int
	faults          []string
	retries         int64
}

func dialXenSimGuest(ctx context.Context, path string, dom int, ring string, vhost int, direct bool, depth, maxBytes int, log io.Writer) (*xenSimGuest, error) {
	g, err := xensim.DialGuest(path, xensim.GuestConfig{DomID: xen.DomID(dom), Name: "guest" + strconv.Itoa(dom), Pages: 65536})
	if err != nil {
		return nil, err
	}
	x := &xenSimGuest{g: g, ring: ring, vhost: vhost, log: log, direct: direct, depth: depth, maxBytes: maxBytes}
	if _, err := x.connect(ctx, 0); err != nil {
		g.Close()
		return nil, err
	}
	return x, nil
}

// connect attaches and logs in unless a newer connection than gen exists.
func (x *xenSimGuest) connect(ctx context.Context, gen int) (scsitest.Initiator, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.gen > gen && x.cur != nil {
		return x.cur, nil
	}
	if x.srp != nil {
		x.faults = append(x.faults, x.srp.Faults()...)
		x.srp.Close()
		x.srp, x.cur = nil, nil
	}
	if x.vscsi != nil {
		x.vscsi.Close()
		x.vscsi, x.cur = nil, nil
	}
	if x.dsrp != nil {
		x.faults = append(x.faults, x.dsrp.Faults()...)
		x.dsrp.Close()
		x.dsrp, x.cur = nil, nil
	}
	switch x.ring {
	case "srp":
		conn, err := frontend.DialSRP(ctx, x.g, frontend.SRPConfig{VHost: x.vhost})
		if err != nil {
			return nil, err
		}
		if x.direct {
			in, err := frontend.DialSRPDirect(ctx, conn, x.depth, x.maxBytes)
			if err != nil {
				conn.Close()
				return nil, err
			}
			x.dsrp, x.conn, x.cur = in, conn, in
			break
		}
		in, err := initiator.Dial(ctx, conn, initiator.Config{InitiatorPortID: conn.InitiatorPortID(),
			TargetPortID: conn.TargetPortID(), Mode: initiator.Indirect, Segments: 1})
		if err != nil {
			conn.Close()
			return nil, err
		}
		x.srp, x.conn, x.cur = in, conn, in
	default:
		f, err := frontend.DialVSCSI(ctx, x.g, frontend.VSCSIConfig{VHost: x.vhost})
		if err != nil {
			return nil, err
		}
		x.vscsi, x.cur = f, f
	}
	x.gen++
	return x.cur, nil
}

// Do runs one command; a command lost to a backend restart (connection
// ended, BUSY while the backend drains) is sent again on the next
// connection, and a unit attention is consumed and the command repeated,
// as the Linux SCSI midlayer does.
func (x *xenSimGuest) Do(ctx context.Context, r *scsitest.Request) (*scsitest.Response, error) {
	for attempt := 0; ; attempt++ {
		x.mu.Lock()
		in, gen := x.cur, x.gen
		x.mu.Unlock()
		if in == nil {
			var err error
			if in, err = x.reconnect(ctx, gen); err != nil {
				return nil, err
			}
			continue
		}
		resp, err := in.Do(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			x.mu.Lock()
			x.retries++
			if x.gen == gen {
				x.cur = nil
			}
			x.mu.Unlock()
			continue
		}
		if st := resp.Status; (st == scsi.StatusBusy || st == scsi.StatusTaskSetFull || isUA(resp)) && attempt < 1000 {
			x.mu.Lock()
			x.retries++
			x.mu.Unlock()
			if st != scsi.StatusCheckCondition {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		return resp, nil
	}
}

func isUA(r *scsitest.Response) bool {
	e := r.SenseError()
	return r.Status == scsi.StatusCheckCondition && e != nil && e.Key == scsi.UnitAttention
}

func (x *xenSimGuest) reconnect(ctx context.Context, gen int) (scsitest.Initiator, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		in, err := x.connect(cctx, gen)
		cancel()
		if err == nil {
			fmt.Fprintf(x.log, "xen-sim: reconnected to the backend\n")
			return in, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("reconnecting: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Faults are protocol faults the initiators saw (a response for no
// outstanding command, a second one for one).
func (x *xenSimGuest) Faults() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	f := append([]string(nil), x.faults...)
	if x.srp != nil {
		f = append(f, x.srp.Faults()...)
	}
	if x.dsrp != nil {
		f = append(f, x.dsrp.Faults()...)
	}
	return f
}

// Retries counts commands sent again after a reconnect, BUSY or a unit
// attention.
func (x *xenSimGuest) Retries() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.retries
}

func (x *xenSimGuest) Close() error {
	x.mu.Lock()
	if x.srp != nil {
		x.srp.Logout()
		x.srp = nil
	}
	if x.vscsi != nil {
		x.vscsi.Close()
		x.vscsi = nil
	}
	if x.dsrp != nil {
		x.dsrp.Logout()
		x.dsrp = nil
	}
	x.mu.Unlock()
	return x.g.Close()
}

// xenSimBench holds bench's --xen-sim flags.
type xenSimBench struct {
	path   string
	domain int
	ring   string
	vhost  int
	client string
}

// addXenSimBenchFlags adds bench's --xen-sim flags to cmd.
func addXenSimBenchFlags(cmd *cobra.Command) *xenSimBench {
	x := &xenSimBench{}
	f := cmd.Flags()
	f.StringVar(&x.path, "xen-sim", "", "run as a guest of the simulated hypervisor at PATH (srptgt xensim) and attach to the device serve --xen-sim made for it")
	f.IntVar(&x.domain, "domain", 0, "--xen-sim: the guest's domain ID (0: the next free one)")
	f.StringVar(&x.ring, "ring", "vscsiif", "--xen-sim: the ring format, vscsiif or srp")
	f.IntVar(&x.vhost, "vhost", 0, "--xen-sim: the guest's device number")
	f.StringVar(&x.client, "srp-initiator", "go", "--xen-sim --ring srp: the Go SRP initiator (go), or a lean one with page descriptors into pre-granted pages for measurements (direct)")
	return x
}

// benchXenSim runs a bench job as a guest of the simulator. It returns the
// result (for bench to print) and an error for commands that failed,
// blocks that did not verify or protocol faults.
func benchXenSim(ctx context.Context, x *xenSimBench, o bench.Options, stderr io.Writer) (*bench.Result, error) {
	if x.ring != "srp" && x.ring != "vscsiif" {
		return nil, fmt.Errorf("--ring %q: want vscsiif or srp", x.ring)
	}
	if x.client != "go" && x.client != "direct" {
		return nil, fmt.Errorf("--srp-initiator %q: want go or direct", x.client)
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	g, err := dialXenSimGuest(actx, x.path, x.domain, x.ring, x.vhost, x.client == "direct", o.IODepth, max(o.BS, 64<<10), stderr)
	cancel()
	if err != nil {
		return nil, err
	}
	defer g.Close()
	o.Label = fmt.Sprintf("xen-sim %s domain %d ring %s", x.path, g.g.ID(), x.ring)
	var cold, warm float64
	if o.BS >= 64<<10 {
		cold = memcpyBandwidth(o.BS, 64<<20, 64<<20, time.Second)
		warm = memcpyBandwidth(o.BS, o.BS, o.BS*max(1, o.IODepth), time.Second)
	}
	res, err := bench.Run(ctx, g, o)
	if cold > 0 && res != nil {
		bw := 0.0
		for _, st := range []*bench.Stats{res.Read, res.Write} {
			if st != nil {
				bw += st.BW
			}
		}
		fmt.Fprintf(stderr, "xen-sim: single-core memcpy of %d-byte buffers (measured before the run): %.2f GB/s through 64 MiB, %.2f GB/s from one buffer into %d (the run's footprint); this run: %.2f GB/s = %.2f and %.2f of them\n",
			o.BS, cold/1e9, warm/1e9, max(1, o.IODepth), bw/1e9, bw/cold, bw/warm)
	}
	faults := g.Faults()
	fmt.Fprintf(stderr, "xen-sim: %d commands sent again after a reconnect, BUSY or unit attention; %d protocol faults\n", g.Retries(), len(faults))
	for _, fl := range faults {
		fmt.Fprintf(stderr, "xen-sim: fault: %s\n", fl)
	}
	if err == nil && len(faults) > 0 {
		err = fmt.Errorf("%d protocol faults (a response for no outstanding command, or a second one)", len(faults))
	}
	return res, err
}

// memcpyBandwidth measures one core copying bs-byte buffers from a span
// of src bytes into a span of dst bytes, in turn, in bytes per second:
// the baseline a copying transport is compared with. Spans of 64 MiB
// (more than the caches) measure memory; a span of one buffer into
// iodepth buffers is a read run's own footprint (the target's one data
// buffer in use, the guest's iodepth buffers), mostly in cache.
func memcpyBandwidth(bs, src, dst int, d time.Duration) float64 {
	ns, nd := src/bs, dst/bs
	if ns == 0 || nd == 0 {
		return 0
	}
	from := make([]byte, ns*bs)
	to := make([]byte, nd*bs)
	for i := range from {
		from[i] = byte(i)
	}
	for i := range to {
		to[i] = byte(i)
	}
	var moved int64
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		s, t := i%ns, i%nd
		copy(to[t*bs:(t+1)*bs], from[s*bs:(s+1)*bs])
		moved += int64(bs)
	}
	return float64(moved) / time.Since(start).Seconds()
}
