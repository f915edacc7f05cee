// Package bench is the engine of `srptgt bench`: fio-like block I/O
// through any SCSI initiator (the Go SRP initiator over RDMA verbs, the
// Xen frontend, or the SCSI layer directly), with IOPS, bandwidth and
// latency percentiles, a progress line, optional data verification, and
// text or JSON output.
//
// The engine only needs scsitest.Initiator: one SCSI command at a time per
// goroutine, IODepth goroutines at once. It finds the LUN (by number, or by
// name as the unit serial number srptgt reports in VPD page 80h), clears
// unit attentions, reads the capacity, and runs READ(16)/WRITE(16).
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// Mode is the I/O pattern, as fio's --rw.
type Mode string

const (
	Read      Mode = "read"
	Write     Mode = "write"
	RandRead  Mode = "randread"
	RandWrite Mode = "randwrite"
	RandRW    Mode = "randrw"
)

// ParseMode checks a --rw value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Read, Write, RandRead, RandWrite, RandRW:
		return m, nil
	}
	return "", fmt.Errorf("bench: --rw %q: want read, write, randread, randwrite or randrw", s)
}

func (m Mode) random() bool { return strings.HasPrefix(string(m), "rand") }

// Options configure a run.
type Options struct {
	// LUN is a LUN number or an LU name (the unit serial number).
	LUN string
	RW  Mode
	// BS is the I/O size in bytes (a multiple of the block size).
	BS      int
	IODepth int
	Time    time.Duration
	// RWMixRead is the percentage of reads in randrw (default 50).
	RWMixRead int
	// Size limits the I/O to the first Size bytes of the LU (0: all).
	Size int64
	// Verify writes self-checking blocks, checks every block read that
	// was written in the run, and reads back every written block at the
	// end.
	Verify bool
	// Label names the target in the report ("rdma 169.254.10.1:5000").
	Label string
	// Progress, if set, gets a progress line every second; ProgressTTY
	// rewrites it in place.
	Progress    io.Writer
	ProgressTTY bool
}

// ParseSize parses "4k", "1M", "512", "1MiB" (powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bench: size %q: want a positive number with an optional k, m, g suffix", s)
	}
	return n * mult, nil
}

// Stats are one direction's numbers.
type Stats struct {
	IOs   int64   `json:"ios"`
	Bytes int64   `json:"bytes"`
	IOPS  float64 `json:"iops"`
	// BW is bytes per second.
	BW  float64  `json:"bw_bytes"`
	Lat LatStats `json:"lat_ns"`
}

// LatStats are completion latencies in nanoseconds.
type LatStats struct {
	Min         int64            `json:"min"`
	Max         int64            `json:"max"`
	Mean        float64          `json:"mean"`
	Stdev       float64          `json:"stdev"`
	Percentiles map[string]int64 `json:"percentile"`
}

// Percentiles reported, as fio's defaults.
var Percentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99}

// Result is a finished run.
type Result struct {
	Target    string        `json:"target"`
	LUN       uint64        `json:"lun"`
	LUNName   string        `json:"lun_name,omitempty"`
	BlockSize uint32        `json:"block_size"`
	Blocks    uint64        `json:"blocks"`
	RW        Mode          `json:"rw"`
	BS        int           `json:"bs"`
	IODepth   int           `json:"iodepth"`
	Runtime   time.Duration `json:"-"`
	RuntimeMS int64         `json:"runtime_ms"`
	Read      *Stats        `json:"read,omitempty"`
	Write     *Stats        `json:"write,omitempty"`
	// Errors counts commands that failed (transport error or a status
	// other than GOOD).
	Errors int64 `json:"errors"`
	// FirstError describes the first of them.
	FirstError string `json:"first_error,omitempty"`
	// Verified and Mismatches count blocks checked by --verify.
	Verify     bool  `json:"verify"`
	Verified   int64 `json:"verified_blocks,omitempty"`
	Mismatches int64 `json:"verify_mismatches,omitempty"`
}

// Geometry is what Prepare found out about the LU.
type Geometry struct {
	LUN       uint64
	Name      string
	BlockSize uint32
	Blocks    uint64
}

// Prepare finds the LUN, clears its unit attentions and reads its
// capacity.
func Prepare(ctx context.Context, in scsitest.Initiator, lun string) (Geometry, error) {
	var g Geometry
	if n, err := strconv.ParseUint(lun, 10, 16); err == nil {
		g.LUN = scsi.EncodeLUN(uint16(n))
	} else {
		l, err := FindLUN(ctx, in, lun)
		if err != nil {
			return g, err
		}
		g.LUN, g.Name = l, lun
	}
	c := &scsitest.Client{I: in, LUN: g.LUN, Ctx: ctx}
	if err := c.ClearUA(); err != nil {
		return g, fmt.Errorf("bench: LUN %s not ready: %w", lun, err)
	}
	r, err := c.Do(scsitest.ReadCapacity16(32), nil, 32)
	if err != nil {
		return g, err
	}
	if err := r.Err(); err != nil {
		return g, fmt.Errorf("bench: READ CAPACITY(16): %w", err)
	}
	if len(r.Data) < 12 {
		return g, errors.New("bench: READ CAPACITY(16) returned too little data")
	}
	g.Blocks = binary.BigEndian.Uint64(r.Data[0:8]) + 1
	g.BlockSize = binary.BigEndian.Uint32(r.Data[8:12])
	if g.BlockSize == 0 {
		return g, errors.New("bench: the LU reports a zero block size")
	}
	return g, nil
}

// FindLUN finds the LUN whose unit serial number (VPD page 80h; srptgt
// reports the LU name there) is name.
func FindLUN(ctx context.Context, in scsitest.Initiator, name string) (uint64, error) {
	c := &scsitest.Client{I: in, LUN: 0, Ctx: ctx}
	var r *scsitest.Response
	var err error
	for i := 0; i < 4; i++ { // past a unit attention
		if r, err = c.Do(scsitest.ReportLUNs(0, 4096), nil, 4096); err != nil {
			return 0, err
		}
		if r.Status == scsi.StatusGood {
			break
		}
	}
	if err := r.Err(); err != nil {
		return 0, fmt.Errorf("bench: REPORT LUNS: %w", err)
	}
	if len(r.Data) < 8 {
		return 0, errors.New("bench: REPORT LUNS returned too little data")
	}
	n := int(binary.BigEndian.Uint32(r.Data[0:4])) / 8
	var seen []string
	for i := 0; i < n && 8+8*i+8 <= len(r.Data); i++ {
		lun := binary.BigEndian.Uint64(r.Data[8+8*i:])
		lc := &scsitest.Client{I: in, LUN: lun, Ctx: ctx}
		vr, err := lc.Do(scsitest.Inquiry(true, 0x80, 255), nil, 255)
		if err != nil {
			return 0, err
		}
		if vr.Status != scsi.StatusGood || len(vr.Data) < 4 {
			continue
		}
		l := min(int(binary.BigEndian.Uint16(vr.Data[2:4])), len(vr.Data)-4)
		serial := strings.TrimSpace(string(vr.Data[4 : 4+l]))
		if serial == name {
			return lun, nil
		}
		seen = append(seen, serial)
	}
	return 0, fmt.Errorf("bench: no LU named %q (serial numbers: %s)", name, strings.Join(seen, ", "))
}

// Run prepares the LU and runs the workload.
func Run(ctx context.Context, in scsitest.Initiator, o Options) (*Result, error) {
	if o.IODepth <= 0 {
		o.IODepth = 1
	}
	if o.BS <= 0 {
		o.BS = 4096
	}
	if o.Time <= 0 {
		o.Time = 10 * time.Second
	}
	if o.RWMixRead <= 0 || o.RWMixRead > 100 {
		o.RWMixRead = 50
	}
	if o.RW == "" {
		o.RW = RandRead
	}
	g, err := Prepare(ctx, in, o.LUN)
	if err != nil {
		return nil, err
	}
	return RunPrepared(ctx, in, g, o)
}

// RunPrepared runs the workload on an LU Prepare described.
func RunPrepared(ctx context.Context, in scsitest.Initiator, g Geometry, o Options) (*Result, error) {
	bsz := int(g.BlockSize)
	if o.BS%bsz != 0 {
		return nil, fmt.Errorf("bench: bs %d is not a multiple of the LU's %d-byte blocks", o.BS, bsz)
	}
	size := int64(g.Blocks) * int64(bsz)
	if o.Size > 0 && o.Size < size {
		size = o.Size
	}
	units := size / int64(o.BS)
	if units < 1 {
		return nil, fmt.Errorf("bench: the LU (%d bytes) is smaller than bs %d", size, o.BS)
	}
	r := &run{o: o, g: g, in: in, units: units, start: time.Now()}
	if o.Verify {
		r.gens = make([]atomic.Uint32, units)
		r.busy = make([]atomic.Bool, units)
	}
	res := &Result{Target: o.Label, LUN: g.LUN, LUNName: g.Name, BlockSize: g.BlockSize, Blocks: g.Blocks,
		RW: o.RW, BS: o.BS, IODepth: o.IODepth, Verify: o.Verify}

	rctx, cancel := context.WithTimeout(ctx, o.Time)
	defer cancel()
	workers := make([]*worker, o.IODepth)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{r: r, rnd: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))),
			buf: make([]byte, o.BS)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(rctx)
		}()
	}
	stopProgress := r.progress(rctx)
	wg.Wait()
	stopProgress()
	res.Runtime = time.Since(r.start)
	res.RuntimeMS = res.Runtime.Milliseconds()

	var rh, wh hist
	for _, w := range workers {
		rh.merge(&w.rh)
		wh.merge(&w.wh)
	}
	secs := res.Runtime.Seconds()
	if o.RW != Write && o.RW != RandWrite {
		res.Read = stats(&rh, int64(o.BS), secs)
	}
	if o.RW != Read && o.RW != RandRead {
		res.Write = stats(&wh, int64(o.BS), secs)
	}
	res.Errors = r.errors.Load()
	if e := r.firstErr.Load(); e != nil {
		res.FirstError = *e
	}
	if o.Verify {
		if err := r.verifyAll(ctx, o.IODepth); err != nil && res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}
	res.Verified = r.verified.Load()
	res.Mismatches = r.mismatches.Load()
	if e := r.fatal.Load(); e != nil {
		return res, *e
	}
	return res, nil
}

func stats(h *hist, bs int64, secs float64) *Stats {
	s := &Stats{IOs: h.n, Bytes: h.n * bs, Lat: LatStats{Min: h.min, Max: h.max,
		Mean: float64(h.mean()), Stdev: float64(h.stdev()), Percentiles: map[string]int64{}}}
	if secs > 0 {
		s.IOPS = float64(h.n) / secs
		s.BW = float64(s.Bytes) / secs
	}
	for _, p := range Percentiles {
		s.Lat.Percentiles[strconv.FormatFloat(p, 'f', 6, 64)] = int64(h.percentile(p))
	}
	return s
}

type run struct {
	o     Options
	g     Geometry
	in    scsitest.Initiator
	units int64
	start time.Time
	seq   atomic.Int64

	reads, writes atomic.Int64
	rbytes        atomic.Int64
	wbytes        atomic.Int64
	errors        atomic.Int64
	firstErr      atomic.Pointer[string]
	fatal         atomic.Pointer[error]

	// verify state per I/O unit: the generation last written (0: none)
	// and whether an I/O on it is in flight
	gens       []atomic.Uint32
	busy       []atomic.Bool
	gen        atomic.Uint32
	verified   atomic.Int64
	mismatches atomic.Int64
}

func (r *run) fail(err error) {
	r.errors.Add(1)
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

type worker struct {
	r      *run
	rnd    *rand.Rand
	buf    []byte
	rh, wh hist
}

// next picks the unit and direction of the next I/O.
func (w *worker) next() (unit int64, write bool) {
	r := w.r
	switch r.o.RW {
	case Read, Write:
		unit = (r.seq.Add(1) - 1) % r.units
	default:
		unit = w.rnd.Int64N(r.units)
	}
	switch r.o.RW {
	case Write, RandWrite:
		write = true
	case RandRW:
		write = w.rnd.IntN(100) >= r.o.RWMixRead
	}
	return unit, write
}

func (w *worker) loop(ctx context.Context) {
	r := w.r
	bs := r.o.BS
	blocks := uint32(bs / int(r.g.BlockSize))
	// one request, CDB and context for every command of this worker: an
	// initiator does not keep them past Do
	var cdb [16]byte
	req := new(scsitest.Request)
	wctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		unit, write := w.next()
		if r.busy != nil {
			tries := 0
			for !r.busy[unit].CompareAndSwap(false, true) {
				if tries++; tries > 64 || !r.o.RW.random() {
					unit = -1
					break
				}
				unit, _ = w.next()
			}
			if unit < 0 {
				continue
			}
		}
		lba := uint64(unit) * uint64(blocks)
		*req = scsitest.Request{LUN: r.g.LUN}
		var gen uint32
		if write {
			if r.gens != nil {
				gen = r.gen.Add(1)
				fill(w.buf, lba, gen)
			}
			req.CDB = scsitest.PutRW16(cdb[:], 0x8A, 0, lba, blocks)
			req.DataOut = w.buf
		} else {
			req.CDB = scsitest.PutRW16(cdb[:], 0x88, 0, lba, blocks)
			req.InLen = bs
			req.DiscardIn = r.gens == nil
		}
		t0 := time.Now()
		resp, err := r.in.Do(wctx, req)
		lat := time.Since(t0)
		switch {
		case err != nil:
			r.fail(err)
			r.fatal.CompareAndSwap(nil, &err)
			if r.busy != nil {
				r.busy[unit].Store(false)
			}
			return
		case resp.Status != scsi.StatusGood:
			r.fail(fmt.Errorf("LBA %d: %w", lba, resp.Err()))
		case write:
			w.wh.add(lat)
			r.writes.Add(1)
			r.wbytes.Add(int64(bs))
			if r.gens != nil {
				r.gens[unit].Store(gen)
			}
		default:
			w.rh.add(lat)
			r.reads.Add(1)
			r.rbytes.Add(int64(bs))
			if r.gens != nil {
				if g := r.gens[unit].Load(); g != 0 {
					r.check(resp.Data, lba, g)
				}
			}
		}
		if r.busy != nil {
			r.busy[unit].Store(false)
		}
	}
}

// Verification: every 512-byte sector of a written unit starts with a
// header (magic, the unit's LBA plus the sector's index, the generation,
// CRC-32C of the rest of the sector), and the rest is a pattern derived
// from those.
const (
	verifyMagic = 0x73727074_62656e63 // "srptbenc"
	sector      = 512
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fill(b []byte, lba uint64, gen uint32) {
	for off := 0; off+sector <= len(b); off += sector {
		s := b[off : off+sector]
		l := lba + uint64(off/sector)
		x := l*0x9E3779B97F4A7C15 ^ uint64(gen)<<32
		for i := 24; i < sector; i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(s[i:], x)
		}
		binary.BigEndian.PutUint64(s[0:8], verifyMagic)
		binary.BigEndian.PutUint64(s[8:16], l)
		binary.BigEndian.PutUint32(s[16:20], gen)
		binary.BigEndian.PutUint32(s[20:24], crc32.Checksum(s[24:], castagnoli))
	}
}

// check verifies a unit read back against the generation last written.
func (r *run) check(b []byte, lba uint64, gen uint32) {
	r.verified.Add(1)
	for off := 0; off+sector <= len(b); off += sector {
		s := b[off : off+sector]
		l := lba + uint64(off/sector)
		if binary.BigEndian.Uint64(s[0:8]) != verifyMagic || binary.BigEndian.Uint64(s[8:16]) != l ||
			binary.BigEndian.Uint32(s[16:20]) != gen || binary.BigEndian.Uint32(s[20:24]) != crc32.Checksum(s[24:], castagnoli) {
			r.mismatches.Add(1)
			r.fail(fmt.Errorf("verify: LBA %d: sector does not hold generation %d of its data", l, gen))
			return
		}
	}
}

// verifyAll reads back every unit written in the run.
func (r *run) verifyAll(ctx context.Context, depth int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var ferr atomic.Pointer[error]
	blocks := uint32(r.o.BS / int(r.g.BlockSize))
	for i := 0; i < depth; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				u := next.Add(1) - 1
				if u >= r.units {
					return
				}
				g := r.gens[u].Load()
				if g == 0 {
					continue
				}
				lba := uint64(u) * uint64(blocks)
				resp, err := r.in.Do(ctx, &scsitest.Request{LUN: r.g.LUN, CDB: scsitest.RW16(0x88, 0, lba, blocks), InLen: r.o.BS})
				if err != nil {
					ferr.CompareAndSwap(nil, &err)
					return
				}
				if resp.Status != scsi.StatusGood {
					r.fail(fmt.Errorf("verify read of LBA %d: %w", lba, resp.Err()))
					continue
				}
				r.check(resp.Data, lba, g)
			}
		}()
	}
	wg.Wait()
	if e := ferr.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// progress prints a line every second until stop is called.
func (r *run) progress(ctx context.Context) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lr, lw, lrb, lwb int64
		last := time.Now()
		for {
			select {
			case <-done:
				if r.o.ProgressTTY {
					fmt.Fprint(r.o.Progress, "\r\033[K")
				}
				return
			case now := <-t.C:
				rd, wr, rb, wb := r.reads.Load(), r.writes.Load(), r.rbytes.Load(), r.wbytes.Load()
				dt := now.Sub(last).Seconds()
				el := now.Sub(r.start)
				pct := 100 * el.Seconds() / r.o.Time.Seconds()
				eta := max(r.o.Time-el, 0).Round(time.Second)
				line := fmt.Sprintf("Jobs: 1: [%s(%d)][%.1f%%][r=%s/s,w=%s/s][r=%s,w=%s IOPS][eta %s]",
					string(r.o.RW), r.o.IODepth, min(pct, 100),
					humanBytes(float64(rb-lrb)/dt), humanBytes(float64(wb-lwb)/dt),
					humanCount(float64(rd-lr)/dt), humanCount(float64(wr-lw)/dt), eta)
				if r.o.ProgressTTY {
					fmt.Fprintf(r.o.Progress, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(r.o.Progress, line)
				}
				lr, lw, lrb, lwb, last = rd, wr, rb, wb, now
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
