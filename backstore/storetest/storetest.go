// Package storetest is the conformance suite every backstore.Store
// implementation runs: each implementation's test opens fresh stores for
// Run, and Run checks the behaviour the SCSI layer relies on.
//
//	func TestMemoryConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, size int64, bs uint32) backstore.Store {
//			s, err := backstore.Open(backstore.Spec{Kind: "memory", Size: size, BlockSize: bs})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Stores that implement backstore.Allocator have it checked too. A null
// store, which does not read back, has tests of its own.
package storetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
)

// Opener returns a fresh store of size bytes and block size bs whose every
// byte reads as zero. A writable store is put through the read-write
// suite; a read-only one (Caps().ReadOnly) through the read-only suite.
// The opener registers its own cleanup with t; Run closes every store it
// is given, and Close is idempotent.
type Opener = func(t *testing.T, size int64, bs uint32) backstore.Store

// Size is the size of the stores Run asks for: large enough to cross the
// chunk and window boundaries of every implementation, small enough to
// model in memory.
const Size = 8 << 20

// Run runs the conformance suite against stores from open, once per block
// size.
func Run(t *testing.T, open Opener) {
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			probe := open(t, Size, bs)
			ro := probe.Caps().ReadOnly
			if err := probe.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			tests := readWriteTests
			if ro {
				tests = readOnlyTests
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t, Size, bs)
					defer s.Close()
					tc.fn(t, s, newRand(t))
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s backstore.Store, rng *rand.Rand)
}

var readWriteTests = []test{
	{"Geometry", testGeometry},
	{"FreshZeros", testFreshZeros},
	{"ReadYourWrites", testReadYourWrites},
	{"Boundaries", testBoundaries},
	{"SyncAndFlush", testSyncAndFlush},
	{"Unmap", testUnmap},
	{"WriteZeroes", testWriteZeroes},
	{"OutOfRange", testOutOfRange},
	{"ZeroLength", testZeroLength},
	{"ConcurrentDisjoint", testConcurrentDisjoint},
	{"Allocation", testAllocation},
	{"SteadyStateAllocs", testSteadyStateAllocs},
	{"Close", testClose},
}

var readOnlyTests = []test{
	{"Geometry", testGeometry},
	{"FreshZeros", testFreshZeros},
	{"ReadOnly", testReadOnly},
	{"OutOfRange", testOutOfRange},
	{"ZeroLength", testZeroLength},
	{"Close", testClose},
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random seed %d", seed)
		}
	})
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// model is what the store should hold.
type model []byte

func newModel(s backstore.Store) model { return make(model, s.Size()) }

func (m model) write(t *testing.T, s backstore.Store, p []byte, off int64) {
	t.Helper()
	n, err := s.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
	}
	copy(m[off:], p)
}

func (m model) zero(off, n int64) { clear(m[off : off+n]) }

// verify compares [off, off+n) of the store with the model.
func (m model) verify(t *testing.T, s backstore.Store, off, n int64) {
	t.Helper()
	got := read(t, s, off, n)
	if i := firstDiff(got, m[off:off+n]); i >= 0 {
		t.Fatalf("byte %d (in a read of %d+%d) is %#x, want %#x", off+int64(i), off, n, got[i], m[off+int64(i)])
	}
}

func (m model) verifyAll(t *testing.T, s backstore.Store) {
	t.Helper()
	for off := int64(0); off < int64(len(m)); off += 1 << 20 {
		m.verify(t, s, off, min(1<<20, int64(len(m))-off))
	}
}

func read(t *testing.T, s backstore.Store, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := s.ReadAt(p, off)
	if err != nil || got != len(p) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
	}
	return p
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// random returns n random bytes, none of them zero so that zeros stand out.
func random(rng *rand.Rand, n int) []byte {
	p := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], rng.Uint64()|0x0101010101010101)
	}
	return p[:n:n]
}

func testGeometry(t *testing.T, s backstore.Store, _ *rand.Rand) {
	if s.Size() != Size {
		t.Errorf("Size() = %d, want %d", s.Size(), Size)
	}
	if bs := s.BlockSize(); bs != 512 && bs != 4096 {
		t.Errorf("BlockSize() = %d, want 512 or 4096", bs)
	}
	if s.Size()%int64(s.BlockSize()) != 0 {
		t.Errorf("Size() %d is not a multiple of BlockSize() %d", s.Size(), s.BlockSize())
	}
	if c := s.Caps(); c.UnmapZeroes && !c.Unmap {
		t.Errorf("Caps() = %+v: UnmapZeroes without Unmap", c)
	}
}

func testFreshZeros(t *testing.T, s backstore.Store, _ *rand.Rand) {
	newModel(s).verifyAll(t, s)
}

func testReadYourWrites(t *testing.T, s backstore.Store, rng *rand.Rand) {
	m := newModel(s)
	bs := int64(s.BlockSize())
	for i := range 300 {
		var off, n int64
		if i%2 == 0 { // whole blocks, as SCSI sends them
			n = bs * (1 + rng.Int64N(64))
			off = bs * rng.Int64N((s.Size()-n)/bs+1)
		} else { // anything at all
			n = 1 + rng.Int64N(200<<10)
			off = rng.Int64N(s.Size() - n + 1)
		}
		m.write(t, s, random(rng, int(n)), off)
		m.verify(t, s, off, n)
		// A read that straddles the write's edges.
		lo := max(0, off-1-rng.Int64N(5000))
		hi := min(s.Size(), off+n+1+rng.Int64N(5000))
		m.verify(t, s, lo, hi-lo)
	}
	m.verifyAll(t, s)
}

// testBoundaries writes across every power-of-two boundary from 512 bytes
// to 4 MiB, where implementations split I/O into chunks, pages, windows
// and leaves, at offsets on, just before and just after them.
func testBoundaries(t *testing.T, s backstore.Store, rng *rand.Rand) {
	m := newModel(s)
	for b := int64(512); b < s.Size(); b *= 2 {
		for _, d := range []int64{-1, 0, 1, -511, 257} {
			n := 1 + rng.Int64N(3*b)
			off := b + d - n/2
			if off < 0 || off+n > s.Size() {
				continue
			}
			m.write(t, s, random(rng, int(n)), off)
			m.verify(t, s, off-min(off, 7), n+min(off, 7))
		}
	}
	// The very first and last bytes and blocks.
	m.write(t, s, random(rng, 1), 0)
	m.write(t, s, random(rng, 1), s.Size()-1)
	m.write(t, s, random(rng, int(s.BlockSize())), s.Size()-int64(s.BlockSize()))
	m.write(t, s, random(rng, 3), s.Size()-3)
	m.verifyAll(t, s)
}

func testSyncAndFlush(t *testing.T, s backstore.Store, rng *rand.Rand) {
	m := newModel(s)
	for range 20 {
		n := 1 + rng.Int64N(100<<10)
		off := rng.Int64N(s.Size() - n + 1)
		p := random(rng, int(n))
		got, err := s.WriteAtSync(p, off)
		if err != nil || got != len(p) {
			t.Fatalf("WriteAtSync(%d bytes, %d) = %d, %v", n, off, got, err)
		}
		copy(m[off:], p)
		m.verify(t, s, off, n)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	m.verifyAll(t, s)
}

func testUnmap(t *testing.T, s backstore.Store, rng *rand.Rand) {
	caps := s.Caps()
	bs := int64(s.BlockSize())
	if !caps.Unmap {
		if err := s.Unmap(0, bs); err != nil && !errors.Is(err, backstore.ErrNotSupported) {
			t.Fatalf("Unmap on a store without Caps().Unmap = %v, want nil or ErrNotSupported", err)
		}
		return
	}
	m := newModel(s)
	m.write(t, s, random(rng, int(s.Size())), 0)
	unmap := func(off, n int64) {
		t.Helper()
		if err := s.Unmap(off, n); err != nil {
			t.Fatalf("Unmap(%d, %d) = %v", off, n, err)
		}
		if caps.UnmapZeroes {
			m.zero(off, n)
			m.verify(t, s, max(0, off-bs), min(s.Size(), off+n+bs)-max(0, off-bs))
		} else { // what lies outside the range must be intact
			if off > 0 {
				m.verify(t, s, 0, off)
			}
			m.verify(t, s, off+n, s.Size()-off-n)
			// and the range itself whatever the store says, so take it
			copy(m[off:off+n], read(t, s, off, n))
		}
	}
	unmap(bs, bs)              // one block
	unmap(3*bs, 1<<20)         // many blocks, crossing chunks
	unmap(2<<20, 4<<20)        // a large aligned range
	unmap(s.Size()-2*bs, 2*bs) // to the very end
	unmap(bs, bs)              // what is already unmapped
	if caps.UnmapZeroes {      // byte ranges, for stores that zero them exactly
		unmap(7*bs+100, 3*bs+11)
		unmap(1<<20-1, 2)
	}
	m.verifyAll(t, s)
	unmap(0, s.Size())
	m.verifyAll(t, s)
	// Space is usable again after Unmap.
	m.write(t, s, random(rng, 300<<10), 1<<20+123)
	m.verifyAll(t, s)
}

func testWriteZeroes(t *testing.T, s backstore.Store, rng *rand.Rand) {
	m := newModel(s)
	m.write(t, s, random(rng, int(s.Size())), 0)
	bs := int64(s.BlockSize())
	zero := func(off, n int64) {
		t.Helper()
		if err := s.WriteZeroes(off, n); err != nil {
			t.Fatalf("WriteZeroes(%d, %d) = %v", off, n, err)
		}
		m.zero(off, n)
		m.verify(t, s, max(0, off-bs), min(s.Size(), off+n+bs)-max(0, off-bs))
	}
	zero(0, bs)
	zero(5*bs, 70*bs)
	zero(1<<20, 3<<20)
	zero(s.Size()-bs, bs)
	zero(5*bs, 2*bs) // already zero
	for range 20 {   // byte ranges
		n := 1 + rng.Int64N(150<<10)
		zero(rng.Int64N(s.Size()-n+1), n)
	}
	m.verifyAll(t, s)
	// Writes land on zeroed ranges as on any other.
	m.write(t, s, random(rng, 100<<10), 1<<20+77)
	m.verifyAll(t, s)
}

// badRanges are (offset, length) pairs outside every store of size.
func badRanges(size int64) [][2]int64 {
	return [][2]int64{
		{-1, 1}, {-512, 512}, {size, 1}, {size - 1, 2}, {size + 512, 512},
		{0, size + 1}, {math.MaxInt64 - 1, 2}, {math.MaxInt64, 1},
	}
}

func wantOpErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
	var oe *backstore.OpError
	if err != nil && !errors.As(err, &oe) {
		t.Errorf("%s = %T %v, want an *OpError", what, err, err)
	}
}

func testOutOfRange(t *testing.T, s backstore.Store, _ *rand.Rand) {
	ro := s.Caps().ReadOnly
	buf := make([]byte, 1<<20)
	for _, r := range badRanges(s.Size()) {
		off, n := r[0], r[1]
		if !ro {
			wantOpErr(t, fmt.Sprintf("Unmap(%d, %d)", off, n), s.Unmap(off, n), backstore.ErrOutOfRange)
			wantOpErr(t, fmt.Sprintf("WriteZeroes(%d, %d)", off, n), s.WriteZeroes(off, n), backstore.ErrOutOfRange)
		}
		if n > int64(len(buf)) {
			continue
		}
		p := buf[:n]
		got, err := s.ReadAt(p, off)
		wantOpErr(t, fmt.Sprintf("ReadAt(%d bytes, %d)", len(p), off), err, backstore.ErrOutOfRange)
		if got != 0 {
			t.Errorf("ReadAt(%d bytes, %d) moved %d bytes", len(p), off, got)
		}
		if ro { // read-only may win over out-of-range: both come before I/O
			continue
		}
		if got, err := s.WriteAt(p, off); got != 0 || !errors.Is(err, backstore.ErrOutOfRange) {
			t.Errorf("WriteAt(%d bytes, %d) = %d, %v, want 0, ErrOutOfRange", len(p), off, got, err)
		}
		if got, err := s.WriteAtSync(p, off); got != 0 || !errors.Is(err, backstore.ErrOutOfRange) {
			t.Errorf("WriteAtSync(%d bytes, %d) = %d, %v, want 0, ErrOutOfRange", len(p), off, got, err)
		}
	}
	// Lengths no buffer holds, for the range-only operations.
	if !ro {
		for _, r := range [][2]int64{{0, math.MaxInt64}, {s.Size() / 2, math.MaxInt64}, {0, -1}} {
			wantOpErr(t, fmt.Sprintf("Unmap(%d, %d)", r[0], r[1]), s.Unmap(r[0], r[1]), backstore.ErrOutOfRange)
			wantOpErr(t, fmt.Sprintf("WriteZeroes(%d, %d)", r[0], r[1]), s.WriteZeroes(r[0], r[1]), backstore.ErrOutOfRange)
		}
	}
	// Nothing was written: the edges still read zeros.
	m := newModel(s)
	m.verify(t, s, 0, 1<<20)
	m.verify(t, s, s.Size()-1<<20, 1<<20)
}

func testZeroLength(t *testing.T, s backstore.Store, _ *rand.Rand) {
	for _, off := range []int64{0, 1, s.Size() - 1, s.Size()} {
		if n, err := s.ReadAt(nil, off); n != 0 || err != nil {
			t.Errorf("ReadAt(nil, %d) = %d, %v, want 0, nil", off, n, err)
		}
		if s.Caps().ReadOnly {
			continue
		}
		if n, err := s.WriteAt(nil, off); n != 0 || err != nil {
			t.Errorf("WriteAt(nil, %d) = %d, %v, want 0, nil", off, n, err)
		}
		if err := s.Unmap(off, 0); err != nil {
			t.Errorf("Unmap(%d, 0) = %v, want nil", off, err)
		}
		if err := s.WriteZeroes(off, 0); err != nil {
			t.Errorf("WriteZeroes(%d, 0) = %v, want nil", off, err)
		}
	}
}

// testConcurrentDisjoint has writers share the store in ranges whose
// edges are not aligned to anything, so neighbours meet inside blocks,
// pages and chunks; run it with -race.
func testConcurrentDisjoint(t *testing.T, s backstore.Store, rng *rand.Rand) {
	const writers = 8
	m := newModel(s)
	edges := make([]int64, writers+1)
	for i := 1; i < writers; i++ {
		edges[i] = int64(i)*s.Size()/writers + 333*int64(i)
	}
	edges[writers] = s.Size()
	seeds := make([]uint64, writers)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writer(s, m[edges[w]:edges[w+1]], edges[w], seeds[w])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	m.verifyAll(t, s)
}

// writer writes, zeroes and reads back inside [base, base+len(m)), keeping
// its part of the model.
func writer(s backstore.Store, m []byte, base int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed))
	span := int64(len(m))
	for i := range 60 {
		n := 1 + rng.Int64N(min(span, 96<<10))
		off := rng.Int64N(span - n + 1)
		// Always touch the edges of the range sometimes.
		switch i % 10 {
		case 0:
			off = 0
		case 1:
			off = span - n
		}
		if i%7 == 6 {
			if err := s.WriteZeroes(base+off, n); err != nil {
				return fmt.Errorf("WriteZeroes(%d, %d): %w", base+off, n, err)
			}
			clear(m[off : off+n])
		} else {
			p := random(rng, int(n))
			if got, err := s.WriteAt(p, base+off); err != nil || got != len(p) {
				return fmt.Errorf("WriteAt(%d bytes, %d) = %d, %w", n, base+off, got, err)
			}
			copy(m[off:], p)
		}
		p := make([]byte, n)
		if got, err := s.ReadAt(p, base+off); err != nil || got != len(p) {
			return fmt.Errorf("ReadAt(%d bytes, %d) = %d, %w", n, base+off, got, err)
		}
		if i := firstDiff(p, m[off:off+n]); i >= 0 {
			return fmt.Errorf("byte %d read back %#x, want %#x", base+off+int64(i), p[i], m[off+int64(i)])
		}
	}
	return nil
}

// testSteadyStateAllocs checks the zero-allocation budget of the data
// path: reads and writes of allocated ranges allocate nothing.
func testSteadyStateAllocs(t *testing.T, s backstore.Store, rng *rand.Rand) {
	bs := int(s.BlockSize())
	p := random(rng, 4096)
	off := int64(1<<20 + bs)
	if _, err := s.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(200, func() { s.ReadAt(p, off) }); a != 0 {
		t.Errorf("ReadAt of 4 KiB: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(200, func() { s.WriteAt(p, off) }); a != 0 {
		t.Errorf("WriteAt of 4 KiB: %v allocations, want 0", a)
	}
}

func testClose(t *testing.T, s backstore.Store, _ *rand.Rand) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	p := make([]byte, 512)
	_, err := s.ReadAt(p, 0)
	wantOpErr(t, "ReadAt after Close", err, backstore.ErrClosed)
	wantOpErr(t, "Flush after Close", s.Flush(), backstore.ErrClosed)
	if s.Caps().ReadOnly {
		return
	}
	_, err = s.WriteAt(p, 0)
	wantOpErr(t, "WriteAt after Close", err, backstore.ErrClosed)
	_, err = s.WriteAtSync(p, 0)
	wantOpErr(t, "WriteAtSync after Close", err, backstore.ErrClosed)
	wantOpErr(t, "Unmap after Close", s.Unmap(0, 512), backstore.ErrClosed)
	wantOpErr(t, "WriteZeroes after Close", s.WriteZeroes(0, 512), backstore.ErrClosed)
}

func testReadOnly(t *testing.T, s backstore.Store, _ *rand.Rand) {
	if !s.Caps().ReadOnly {
		t.Fatal("Caps().ReadOnly is false")
	}
	p := make([]byte, 4096)
	for _, off := range []int64{0, 4096, s.Size() - 4096} {
		n, err := s.WriteAt(p, off)
		wantOpErr(t, fmt.Sprintf("WriteAt(%d)", off), err, backstore.ErrReadOnly)
		if n != 0 {
			t.Errorf("WriteAt(%d) moved %d bytes", off, n)
		}
		_, err = s.WriteAtSync(p, off)
		wantOpErr(t, fmt.Sprintf("WriteAtSync(%d)", off), err, backstore.ErrReadOnly)
		wantOpErr(t, fmt.Sprintf("Unmap(%d)", off), s.Unmap(off, 4096), backstore.ErrReadOnly)
		wantOpErr(t, fmt.Sprintf("WriteZeroes(%d)", off), s.WriteZeroes(off, 4096), backstore.ErrReadOnly)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush on a read-only store = %v, want nil", err)
	}
	newModel(s).verifyAll(t, s)
}

// allocationMap walks the store with backstore.Allocator and checks the
// runs tile it exactly; it returns the allocation state of every block.
func allocationMap(t *testing.T, s backstore.Store, a backstore.Allocator) []bool {
	t.Helper()
	bs := int64(s.BlockSize())
	blocks := make([]bool, s.Size()/bs)
	for off := int64(0); off < s.Size(); {
		alloc, run, err := a.Allocation(off)
		if err != nil {
			t.Fatalf("Allocation(%d) = %v", off, err)
		}
		if run < bs || run > s.Size()-off || run%bs != 0 {
			t.Fatalf("Allocation(%d) run %d is not whole blocks within the store", off, run)
		}
		for b := off / bs; b < (off+run)/bs; b++ {
			blocks[b] = alloc
		}
		off += run
	}
	return blocks
}

// testAllocation checks stores that report allocation (GET LBA STATUS):
// written blocks are allocated, and with UnmapZeroes a large unmapped
// range is not.
func testAllocation(t *testing.T, s backstore.Store, rng *rand.Rand) {
	a, ok := s.(backstore.Allocator)
	if !ok {
		t.Skip("the store does not implement backstore.Allocator")
	}
	bs := int64(s.BlockSize())
	for _, off := range []int64{-1, s.Size(), s.Size() + bs} {
		_, _, err := a.Allocation(off)
		wantOpErr(t, fmt.Sprintf("Allocation(%d)", off), err, backstore.ErrOutOfRange)
	}
	written := []int64{0, 5 * bs, 1 << 20, s.Size() - bs}
	for _, off := range written {
		if _, err := s.WriteAt(random(rng, int(bs)), off); err != nil {
			t.Fatal(err)
		}
	}
	blocks := allocationMap(t, s, a)
	for _, off := range written {
		if !blocks[off/bs] {
			t.Errorf("block at %d was written but is not allocated", off)
		}
	}
	if !s.Caps().UnmapZeroes {
		return
	}
	if _, err := s.WriteAt(random(rng, 2<<20), 2<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmap(2<<20, 2<<20); err != nil {
		t.Fatal(err)
	}
	blocks = allocationMap(t, s, a)
	for b := (2 << 20) / bs; b < (4<<20)/bs; b++ {
		if blocks[b] {
			t.Fatalf("block at %d is allocated after Unmap of [2 MiB, 4 MiB)", b*bs)
		}
	}
	if !blocks[0] || !blocks[(s.Size()-bs)/bs] {
		t.Error("Unmap deallocated blocks outside its range")
	}
	// Mid-block offsets answer for their block.
	if alloc, run, err := a.Allocation(bs / 2); err != nil || !alloc || run < bs/2 {
		t.Errorf("Allocation(%d) = %v, %d, %v, want allocated", bs/2, alloc, run, err)
	}
}
