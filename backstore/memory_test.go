package backstore_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/backstore/storetest"
)

type allocated interface{ Allocated() int64 }

func openMemory(t *testing.T, spec backstore.Spec) backstore.Store {
	t.Helper()
	spec.Kind = backstore.KindMemory
	s, err := backstore.Open(spec)
	if err != nil {
		t.Fatalf("Open(%+v): %v", spec, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, size int64, bs uint32) backstore.Store {
		return openMemory(t, backstore.Spec{Size: size, BlockSize: bs})
	})
}

func TestMemoryReadOnlyConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, size int64, bs uint32) backstore.Store {
		return openMemory(t, backstore.Spec{Size: size, BlockSize: bs, ReadOnly: true})
	})
}

func TestMemoryCaps(t *testing.T) {
	s := openMemory(t, backstore.Spec{Size: 1 << 20})
	want := backstore.Caps{Thin: true, Unmap: true, UnmapZeroes: true, Immediate: true}
	if got := s.Caps(); got != want {
		t.Errorf("Caps() = %+v, want %+v", got, want)
	}
}

// A thin store allocates on first write and frees what Unmap and
// WriteZeroes cover whole.
func TestMemoryAllocation(t *testing.T) {
	const chunk = 64 << 10
	s := openMemory(t, backstore.Spec{Size: 100*chunk + 512})
	alloc := func() int64 { return s.(allocated).Allocated() }
	if a := alloc(); a != 0 {
		t.Fatalf("fresh store: %d bytes allocated", a)
	}
	buf := bytes.Repeat([]byte{0xa5}, chunk)
	s.WriteAt(buf[:1], chunk-1) // straddles chunks 0 and 1
	s.WriteAt(buf[:2], chunk-1)
	if a := alloc(); a != 2*chunk {
		t.Fatalf("after writes to two chunks: %d bytes allocated, want %d", a, 2*chunk)
	}
	buf0 := make([]byte, 10)
	if _, err := s.ReadAt(buf0, 50*chunk); err != nil || !bytes.Equal(buf0, make([]byte, 10)) || alloc() != 2*chunk {
		t.Fatalf("reading a hole: %v %x, %d allocated", err, buf0, alloc())
	}
	if err := s.Unmap(chunk-1, 1); err != nil || alloc() != 2*chunk {
		t.Fatalf("partial unmap freed memory: %v, %d allocated", err, alloc())
	}
	if err := s.Unmap(0, chunk); err != nil || alloc() != chunk {
		t.Fatalf("whole-chunk unmap: %v, %d allocated, want %d", err, alloc(), chunk)
	}
	if err := s.WriteZeroes(chunk, chunk); err != nil || alloc() != 0 {
		t.Fatalf("whole-chunk WriteZeroes: %v, %d allocated, want 0", err, alloc())
	}
	// The last chunk is short; unmapping to the end frees it.
	s.WriteAt(buf[:512], 100*chunk)
	if err := s.Unmap(100*chunk, 512); err != nil || alloc() != 0 {
		t.Fatalf("unmap of the short last chunk: %v, %d allocated, want 0", err, alloc())
	}
	// WriteZeroes of a hole allocates nothing.
	if err := s.WriteZeroes(0, 1000); err != nil || alloc() != 0 {
		t.Fatalf("WriteZeroes of a hole: %v, %d allocated", err, alloc())
	}
}

// MaxAllocated makes writes fail with ENOSPC, whole, when they would
// allocate past it: what the SCSI layer reports as SPACE ALLOCATION FAILED.
func TestMemoryMaxAllocated(t *testing.T) {
	const chunk = 64 << 10
	s := openMemory(t, backstore.Spec{Size: 1 << 30, MaxAllocated: 3 * chunk})
	p := bytes.Repeat([]byte{1}, 2*chunk)
	if n, err := s.WriteAt(p, 0); n != len(p) || err != nil {
		t.Fatalf("WriteAt within the cap = %d, %v", n, err)
	}
	// Needs chunks 2 and 3: one more than the cap allows.
	n, err := s.WriteAt(p, 2*chunk)
	if n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt past the cap = %d, %v, want 0, ENOSPC", n, err)
	}
	var oe *backstore.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || oe.Off != 2*chunk || oe.Len != 2*chunk {
		t.Fatalf("error %#v is not the write's OpError", err)
	}
	got := make([]byte, 2*chunk)
	s.ReadAt(got, 2*chunk)
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatal("the failed write left data behind")
	}
	if a := s.(allocated).Allocated(); a != 2*chunk {
		t.Fatalf("%d bytes allocated after the failed write, want %d", a, 2*chunk)
	}
	// Rewriting allocated space needs no more.
	if _, err := s.WriteAt(p, 0); err != nil {
		t.Fatalf("rewrite at the cap: %v", err)
	}
	// Freeing space makes room.
	if err := s.Unmap(0, chunk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(p, 5*chunk); err != nil {
		t.Fatalf("WriteAt after Unmap made room: %v", err)
	}
}

// A huge thin store costs almost nothing until it is written.
func TestMemoryHugeThin(t *testing.T) {
	s := openMemory(t, backstore.Spec{Size: 1 << 40, BlockSize: 4096})
	p := []byte("end of a terabyte")
	if _, err := s.WriteAt(p, 1<<40-int64(len(p))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(p))
	if _, err := s.ReadAt(got, 1<<40-int64(len(p))); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("ReadAt = %q, %v", got, err)
	}
	if a := s.(allocated).Allocated(); a != 64<<10 {
		t.Errorf("%d bytes allocated, want one chunk", a)
	}
}
