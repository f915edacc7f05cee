package backstore_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/backstore"
)

// The benchmarks read 4 KiB at random aligned offsets of a 256 MiB store
// whose data is all written (page cache warm for files and devices).
//
//	go test -run '^$' -bench . -benchtime 2s ./backstore/
const benchSize = 256 << 20

var bench struct {
	once sync.Once
	path string
	err  error
}

// benchFile is a 256 MiB file of non-zero data, written once per test
// binary in the directory TestMain removes.
func benchFile(b *testing.B) string {
	bench.once.Do(func() {
		bench.path = filepath.Join(scratchDir, "bench-data")
		f, err := os.Create(bench.path)
		if err != nil {
			bench.err = err
			return
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range buf {
			buf[i] = byte(rng.Uint32() | 1)
		}
		for off := int64(0); off < benchSize; off += int64(len(buf)) {
			if _, err := f.WriteAt(buf, off); err != nil {
				bench.err = err
				return
			}
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path
}

// benchOffsets are 64Ki random 4 KiB-aligned offsets, the same every run.
func benchOffsets(size int64) []int64 {
	rng := rand.New(rand.NewPCG(3, 4))
	offs := make([]int64, 1<<16)
	for i := range offs {
		offs[i] = rng.Int64N(size/4096) * 4096
	}
	return offs
}

// pageBuf returns a page-aligned 4 KiB buffer, as transports hand over.
func pageBuf() []byte {
	b := make([]byte, 8192)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)) % 4096
	return b[skip : skip+4096]
}

// batch is how many reads the benchmarks time together for their median.
const batch = 64

// benchReads reads at random offsets, b.N times. Besides ns/op it reports
// p50-ns/op, the median over batches of 64 reads: on a shared machine a
// batch that lost the CPU is an outlier, not the cost of a read.
func benchReads(b *testing.B, read func(p []byte, off int64) (int, error)) (p50 float64) {
	offs := benchOffsets(benchSize)
	mask := len(offs) - 1
	p := pageBuf()
	times := make([]time.Duration, 0, b.N/batch+1)
	b.SetBytes(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(batch, b.N-i)
		t0 := time.Now()
		for k := range n {
			if _, err := read(p, offs[(i+k)&mask]); err != nil {
				b.Fatal(err)
			}
		}
		if n == batch {
			times = append(times, time.Since(t0))
		}
		i += n
	}
	b.StopTimer()
	if len(times) == 0 {
		return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
	p50 = float64(median(times).Nanoseconds()) / batch
	b.ReportMetric(p50, "p50-ns/op")
	return p50
}

// benchReadsParallel reads at random offsets from GOMAXPROCS goroutines
// and returns ns/op.
func benchReadsParallel(b *testing.B, read func(p []byte, off int64) (int, error)) float64 {
	offs := benchOffsets(benchSize)
	var seq atomic.Int64
	b.SetBytes(4096)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := pageBuf()
		i := int(seq.Add(1) * 7919)
		for ; pb.Next(); i++ {
			if _, err := read(p, offs[i&(len(offs)-1)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

func openBench(b *testing.B, spec backstore.Spec) backstore.Store {
	b.Helper()
	s, err := backstore.Open(spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// filledMemory is a memory store with all of its 256 MiB written.
func filledMemory(b *testing.B) backstore.Store {
	s := openBench(b, backstore.Spec{Kind: "memory", Size: benchSize})
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i | 1)
	}
	for off := int64(0); off < benchSize; off += int64(len(buf)) {
		if _, err := s.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// warm reads the whole store once.
func warm(b *testing.B, s backstore.Store) {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < s.Size(); off += int64(len(buf)) {
		if _, err := s.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAt4K is a 4 KiB random read on every kind of store.
func BenchmarkReadAt4K(b *testing.B) {
	path := benchFile(b)
	b.Run("null", func(b *testing.B) {
		benchReads(b, openBench(b, backstore.Spec{Kind: "null", Size: benchSize}).ReadAt)
	})
	b.Run("null-pattern", func(b *testing.B) {
		benchReads(b, openBench(b, backstore.Spec{Kind: "null", Size: benchSize, NullPattern: "0xdeadbeef"}).ReadAt)
	})
	b.Run("memory", func(b *testing.B) {
		benchReads(b, filledMemory(b).ReadAt)
	})
	b.Run("faulty-memory", func(b *testing.B) {
		f := backstore.NewFaulty(filledMemory(b))
		f.Add(backstore.Fault{Name: "elsewhere", Op: backstore.FaultWrite, Off: 0, Len: 4096})
		benchReads(b, f.ReadAt)
	})
	b.Run("file", func(b *testing.B) {
		benchReads(b, openBench(b, backstore.Spec{Kind: "file", Path: path, ReadOnly: true}).ReadAt)
	})
	b.Run("file-direct", func(b *testing.B) {
		benchReads(b, openBench(b, backstore.Spec{Kind: "file", Path: path, ReadOnly: true, Direct: true}).ReadAt)
	})
	b.Run("block", func(b *testing.B) {
		dev := attachLoop(b, path, 512)
		s := openBench(b, backstore.Spec{Kind: "block", Path: dev, ReadOnly: true})
		warm(b, s) // the device's own page cache
		benchReads(b, s.ReadAt)
	})
	b.Run("block-direct", func(b *testing.B) {
		dev := attachLoop(b, path, 512)
		benchReads(b, openBench(b, backstore.Spec{Kind: "block", Path: dev, ReadOnly: true, Direct: true}).ReadAt)
	})
}

// BenchmarkFileRandRead4K compares the file store with plain pread(2) on
// the same warm file in the same run. The store sub-benchmark reports
// pread-throughput-ratio: its throughput over that of the pread
// sub-benchmark just before it (1 is no overhead), from the p50 batch
// times of each. The interleaved
// sub-benchmark alternates batches of the two, so that a machine whose
// load changes during the run slows both alike, and reports the same
// ratio from that.
func BenchmarkFileRandRead4K(b *testing.B) {
	compareWithPread(b, benchReads)
	path := benchFile(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	s := openBench(b, backstore.Spec{Kind: "file", Path: path, ReadOnly: true})
	b.Run("interleaved", func(b *testing.B) {
		offs := benchOffsets(benchSize)
		mask := len(offs) - 1
		p := pageBuf()
		preadRead := func(p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) }
		var times [2][]time.Duration // per batch: pread, store
		for j := range times {
			times[j] = make([]time.Duration, 0, b.N/(2*batch)+1)
		}
		b.ResetTimer()
		b.SetBytes(4096)
		b.ReportAllocs()
		for i := 0; i < b.N; i += 2 * batch {
			for j := range 2 {
				which := (j + i/(2*batch)) % 2 // alternate which goes first
				read := preadRead
				if which == 1 {
					read = s.ReadAt
				}
				base := i + which*len(offs)/2 // distinct offsets for each
				t0 := time.Now()
				for k := range batch {
					if _, err := read(p, offs[(base+k)&mask]); err != nil {
						b.Fatal(err)
					}
				}
				times[which] = append(times[which], time.Since(t0))
			}
		}
		b.StopTimer()
		pread, store := median(times[0]), median(times[1])
		b.ReportMetric(float64(pread.Nanoseconds())/batch, "pread-ns/op")
		b.ReportMetric(float64(store.Nanoseconds())/batch, "store-ns/op")
		b.ReportMetric(float64(pread)/float64(store), "pread-throughput-ratio")
	})
}

// BenchmarkFileRandRead4KParallel is BenchmarkFileRandRead4K from
// GOMAXPROCS goroutines at once; its ratio comes from plain ns/op, so it
// needs a quiet machine.
func BenchmarkFileRandRead4KParallel(b *testing.B) {
	compareWithPread(b, benchReadsParallel)
}

func compareWithPread(b *testing.B, run func(*testing.B, func([]byte, int64) (int, error)) float64) {
	path := benchFile(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	s := openBench(b, backstore.Spec{Kind: "file", Path: path, ReadOnly: true})
	var preadNs float64
	b.Run("pread", func(b *testing.B) {
		preadNs = run(b, func(p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) })
	})
	b.Run("store", func(b *testing.B) {
		if ns := run(b, s.ReadAt); preadNs > 0 && ns > 0 {
			b.ReportMetric(preadNs/ns, "pread-throughput-ratio")
		}
	})
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}
