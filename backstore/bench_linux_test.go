package backstore_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
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
	dir  string
	path string
	err  error
}

// benchFile is a 256 MiB file of non-zero data, written once per test
// binary and removed by TestMain.
func benchFile(b *testing.B) string {
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "backstore-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "data")
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

func removeBenchFile() {
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
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

func benchReads(b *testing.B, read func(p []byte, off int64) (int, error)) {
	offs := benchOffsets(benchSize)
	p := pageBuf()
	b.SetBytes(4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := read(p, offs[i&(len(offs)-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchReadsParallel(b *testing.B, read func(p []byte, off int64) (int, error)) {
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
// pread-throughput-ratio: its throughput over pread's (1 is no overhead).
func BenchmarkFileRandRead4K(b *testing.B) {
	compareWithPread(b, benchReads)
}

// BenchmarkFileRandRead4KParallel is BenchmarkFileRandRead4K from
// GOMAXPROCS goroutines at once.
func BenchmarkFileRandRead4KParallel(b *testing.B) {
	compareWithPread(b, benchReadsParallel)
}

func compareWithPread(b *testing.B, run func(*testing.B, func([]byte, int64) (int, error))) {
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
		run(b, func(p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) })
		preadNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("store", func(b *testing.B) {
		run(b, s.ReadAt)
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if preadNs > 0 && ns > 0 {
			b.ReportMetric(preadNs/ns, "pread-throughput-ratio")
		}
	})
}
