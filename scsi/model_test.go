package scsi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// The model-based integrity test: 8 initiators, each on its own I_T
// nexus, issue random WRITE / READ / UNMAP / WRITE SAME / COMPARE AND WRITE
// commands against one disk. Each owns a region for plain I/O and checks
// every READ against its model of that region; all share four counter
// blocks that they update only with COMPARE AND WRITE read-modify-write
// loops. If COMPARE AND WRITE were not atomic (SBC-3 5.2: the compare and
// the write are one operation with respect to every other command), two
// initiators could both see count n and both write n+1, and the final
// count would fall short of the number of COMPARE AND WRITEs that
// reported GOOD. At the end the whole medium, read through SCSI and
// straight from the store, must equal the model.
const (
	modelWorkers  = 8
	modelOps      = 2600 // per worker: 20,800 in all
	modelRegion   = 64   // blocks per worker
	modelCounters = 4
	modelBS       = 512
	counterBase   = modelWorkers * modelRegion
	modelBlocks   = 2048
)

func TestModelMemory(t *testing.T) {
	modelTest(t, memStore(t, modelBlocks*modelBS, modelBS))
}

func TestModelFile(t *testing.T) {
	modelTest(t, fileStore(t, modelBlocks*modelBS, modelBS))
}

// counterBlock is the content of a counter block holding count: the
// count, the writer, and filler derived from the count, so that a torn
// write shows.
func counterBlock(count uint64, writer int) []byte {
	b := make([]byte, modelBS)
	binary.BigEndian.PutUint64(b, count)
	binary.BigEndian.PutUint64(b[8:], uint64(writer))
	for i := 16; i < len(b); i++ {
		b[i] = byte(count*131 + uint64(i))
	}
	return b
}

type modelStats struct {
	cawOK, cawRetry [modelCounters]atomic.Int64
	ops             atomic.Int64
}

// slowCounters widens the window between COMPARE AND WRITE's read and its
// write on the counter blocks, so that a non-atomic implementation loses
// increments for sure rather than by luck.
type slowCounters struct{ backstore.Store }

func (s slowCounters) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.Store.ReadAt(p, off)
	if off >= counterBase*modelBS && off < (counterBase+modelCounters)*modelBS {
		time.Sleep(20 * time.Microsecond)
	}
	return n, err
}

func modelTest(t *testing.T, s backstore.Store) {
	r := newRig(t, rigConfig{store: slowCounters{s}})
	unmapZeroes := s.Caps().Unmap && s.Caps().UnmapZeroes
	var st modelStats
	models := make([][]byte, modelWorkers)
	var wg sync.WaitGroup
	errs := make(chan error, modelWorkers)
	for w := 0; w < modelWorkers; w++ {
		id := scsi.PortID{0xAA, byte(w)}
		_, d := r.attach(id)
		models[w] = make([]byte, modelRegion*modelBS)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			mw := &modelWorker{w: w, d: d, lun: r.lun, model: models[w], rng: rand.New(rand.NewPCG(uint64(w), 0x5C5157)),
				st: &st, unmapZeroes: unmapZeroes}
			if err := mw.run(); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if got := st.ops.Load(); got < 20000 {
		t.Fatalf("only %d commands", got)
	}

	// The image: regions as modelled, counters at their count, the rest
	// never written.
	want := make([]byte, modelBlocks*modelBS)
	for w := range models {
		copy(want[w*modelRegion*modelBS:], models[w])
	}
	var total, retries int64
	for k := 0; k < modelCounters; k++ {
		b := r.image(counterBase+k, 1)
		count := binary.BigEndian.Uint64(b)
		writer := int(binary.BigEndian.Uint64(b[8:]))
		ok := st.cawOK[k].Load()
		if count != uint64(ok) {
			t.Errorf("counter %d is %d after %d good COMPARE AND WRITEs", k, count, ok)
		}
		if count == 0 && !bytes.Equal(b, make([]byte, modelBS)) || count > 0 && !bytes.Equal(b, counterBlock(count, writer)) {
			t.Errorf("counter %d block is torn: % x", k, b[:32])
		}
		copy(want[(counterBase+k)*modelBS:], b)
		total += ok
		retries += st.cawRetry[k].Load()
	}
	if total == 0 || retries == 0 {
		t.Errorf("the counters saw %d COMPARE AND WRITEs and %d miscompares: no contention was tested", total, retries)
	}
	t.Logf("%d commands; %d counter increments, %d miscompares retried", st.ops.Load(), total, retries)
	resp := r.do(scsitest.RW16(0x88, 0, 0, modelBlocks), nil, modelBlocks*modelBS)
	r.good(resp)
	if !bytes.Equal(resp.Data, want) {
		t.Fatalf("READ of the whole medium: %s", diff(resp.Data, want))
	}
	if img := r.image(0, modelBlocks); !bytes.Equal(img, want) {
		t.Fatalf("store image: %s", diff(img, want))
	}
}

type modelWorker struct {
	w           int
	d           *scsitest.Direct
	lun         uint64
	model       []byte
	rng         *rand.Rand
	st          *modelStats
	unmapZeroes bool
}

func (m *modelWorker) do(cdb, out []byte, inLen int, attr scsi.TaskAttr) (*scsitest.Response, error) {
	m.st.ops.Add(1)
	return m.d.Do(context.Background(), &scsitest.Request{LUN: m.lun, CDB: cdb, DataOut: out, InLen: inLen, Attr: attr})
}

func (m *modelWorker) good(what string, cdb, out []byte, inLen int, attr scsi.TaskAttr) ([]byte, error) {
	resp, err := m.do(cdb, out, inLen, attr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := resp.Err(); err != nil {
		return nil, fmt.Errorf("%s (CDB % x): %w", what, cdb, err)
	}
	return resp.Data, nil
}

func (m *modelWorker) attr() scsi.TaskAttr {
	switch m.rng.IntN(20) {
	case 0:
		return scsi.Ordered
	case 1:
		return scsi.HeadOfQueue
	}
	return scsi.Simple
}

// span picks a range of 1..max blocks in the worker's region.
func (m *modelWorker) span(max int) (lba, n int) {
	n = 1 + m.rng.IntN(max)
	lba = m.rng.IntN(modelRegion - n + 1)
	return lba, n
}

func (m *modelWorker) abs(lba int) uint64 { return uint64(m.w*modelRegion + lba) }

func (m *modelWorker) run() error {
	for i := 0; i < modelOps; i++ {
		var err error
		switch op := m.rng.IntN(100); {
		case op < 35:
			err = m.write()
		case op < 60:
			err = m.read()
		case op < 70:
			err = m.unmap()
		case op < 80:
			err = m.writeSame()
		case op < 90:
			err = m.caw()
		default:
			err = m.count()
		}
		if err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

func (m *modelWorker) write() error {
	lba, n := m.span(8)
	data := make([]byte, n*modelBS)
	for i := range data {
		data[i] = byte(m.rng.Uint32())
	}
	a := m.abs(lba)
	var cdb []byte
	switch m.rng.IntN(4) {
	case 0:
		cdb = scsitest.RW6(0x0A, uint32(a), byte(n))
	case 1:
		cdb = scsitest.RW10(0x2A, byte(m.rng.IntN(2))<<3, uint32(a), uint16(n))
	case 2:
		cdb = scsitest.RW12(0xAA, 0, uint32(a), uint32(n))
	default:
		cdb = scsitest.RW16(0x8A, byte(m.rng.IntN(2))<<3, a, uint32(n))
	}
	if _, err := m.good("WRITE", cdb, data, 0, m.attr()); err != nil {
		return err
	}
	copy(m.model[lba*modelBS:], data)
	return nil
}

func (m *modelWorker) read() error {
	lba, n := m.span(16)
	a := m.abs(lba)
	var cdb []byte
	switch m.rng.IntN(3) {
	case 0:
		cdb = scsitest.RW10(0x28, 0, uint32(a), uint16(n))
	case 1:
		cdb = scsitest.RW12(0xA8, 0, uint32(a), uint32(n))
	default:
		cdb = scsitest.RW16(0x88, 0, a, uint32(n))
	}
	got, err := m.good("READ", cdb, nil, n*modelBS, m.attr())
	if err != nil {
		return err
	}
	if want := m.model[lba*modelBS : (lba+n)*modelBS]; !bytes.Equal(got, want) {
		return fmt.Errorf("READ %d+%d: %s", a, n, diff(got, want))
	}
	return nil
}

func (m *modelWorker) unmap() error {
	if !m.unmapZeroes {
		return m.writeSame()
	}
	descs := make([][2]uint64, 1+m.rng.IntN(3))
	for i := range descs {
		lba, n := m.span(8)
		descs[i] = [2]uint64{m.abs(lba), uint64(n)}
	}
	cdb, p := scsitest.Unmap(descs...)
	if _, err := m.good("UNMAP", cdb, p, 0, m.attr()); err != nil {
		return err
	}
	for _, d := range descs {
		lba := int(d[0]) - m.w*modelRegion
		clear(m.model[lba*modelBS : (lba+int(d[1]))*modelBS])
	}
	return nil
}

func (m *modelWorker) writeSame() error {
	lba, n := m.span(8)
	blk := make([]byte, modelBS)
	flags := byte(0)
	switch m.rng.IntN(3) {
	case 0: // zeros, possibly deallocated
		flags = 0x08
	default:
		for i := range blk {
			blk[i] = byte(m.rng.Uint32())
		}
	}
	var cdb []byte
	if m.rng.IntN(2) == 0 {
		cdb = scsitest.RW10(0x41, flags, uint32(m.abs(lba)), uint16(n))
	} else {
		cdb = scsitest.WriteSame16(flags, m.abs(lba), uint32(n))
	}
	if _, err := m.good("WRITE SAME", cdb, blk, 0, m.attr()); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		copy(m.model[(lba+i)*modelBS:], blk)
	}
	return nil
}

// caw runs COMPARE AND WRITE on the worker's own region: with the
// model's data it must succeed; with one byte changed it must fail with
// MISCOMPARE at exactly that offset and change nothing.
func (m *modelWorker) caw() error {
	lba, n := m.span(4)
	size := n * modelBS
	out := make([]byte, 2*size)
	copy(out, m.model[lba*modelBS:(lba+n)*modelBS])
	for i := size; i < len(out); i++ {
		out[i] = byte(m.rng.Uint32())
	}
	bad := -1
	if m.rng.IntN(4) == 0 {
		bad = m.rng.IntN(size)
		out[bad] ^= 1 + byte(m.rng.IntN(255))
	}
	resp, err := m.do(scsitest.CompareAndWrite(byte(m.rng.IntN(2))<<3, m.abs(lba), byte(n)), out, 0, m.attr())
	if err != nil {
		return err
	}
	if bad < 0 {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("COMPARE AND WRITE with the current data: %w", err)
		}
		copy(m.model[lba*modelBS:], out[size:])
		return nil
	}
	e := resp.SenseError()
	if e == nil || e.Key != scsi.Miscompare || e.ASC != scsi.ASCMiscompareDuringVerify || !e.InfoValid || e.Info != uint64(bad) {
		return fmt.Errorf("COMPARE AND WRITE with byte %d changed: %v", bad, resp.Err())
	}
	return nil
}

// count adds one to a shared counter with a COMPARE AND WRITE loop.
func (m *modelWorker) count() error {
	k := m.rng.IntN(modelCounters)
	lba := uint64(counterBase + k)
	for try := 0; try < 10000; try++ {
		cur, err := m.good("READ counter", scsitest.RW16(0x88, 0, lba, 1), nil, modelBS, scsi.Simple)
		if err != nil {
			return err
		}
		count := binary.BigEndian.Uint64(cur)
		out := append(append([]byte(nil), cur...), counterBlock(count+1, m.w)...)
		resp, err := m.do(scsitest.CompareAndWrite(0, lba, 1), out, 0, scsi.Simple)
		if err != nil {
			return err
		}
		if resp.Status == scsi.StatusGood {
			m.st.cawOK[k].Add(1)
			return nil
		}
		if e := resp.SenseError(); e == nil || e.Key != scsi.Miscompare {
			return fmt.Errorf("counter COMPARE AND WRITE: %v", resp.Err())
		}
		m.st.cawRetry[k].Add(1)
	}
	return fmt.Errorf("counter %d: no progress", k)
}
