package backstore_test

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/backstore/storetest"
)

func newFaulty(t *testing.T, size int64) *backstore.Faulty {
	return backstore.NewFaulty(openMemory(t, backstore.Spec{Size: size}))
}

// With no rule tripping, a Faulty store is its inner store.
func TestFaultyConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, size int64, bs uint32) backstore.Store {
		f := backstore.NewFaulty(openMemory(t, backstore.Spec{Size: size, BlockSize: bs}))
		// A rule that never trips: it watches a range past the end.
		f.Add(backstore.Fault{Name: "idle", Op: backstore.FaultAny &^ backstore.FaultFlush, Off: size, Len: 1})
		return f
	})
}

func TestFaultyReadEIO(t *testing.T) {
	f := newFaulty(t, 1<<20)
	f.Add(backstore.Fault{Name: "bad sector", Op: backstore.FaultRead, Off: 4096, Len: 512})
	p := make([]byte, 512)
	for _, off := range []int64{0, 3584, 4608, 8192} { // up to, and from, the range
		if _, err := f.ReadAt(p, off); err != nil {
			t.Errorf("ReadAt(%d) outside the rule = %v", off, err)
		}
	}
	for _, off := range []int64{3585, 4096, 4607} {
		n, err := f.ReadAt(p, off)
		if n != 0 || !errors.Is(err, syscall.EIO) {
			t.Errorf("ReadAt(%d) = %d, %v, want 0, EIO", off, n, err)
		}
		var oe *backstore.OpError
		if !errors.As(err, &oe) || oe.Op != "read" || oe.Off != off || oe.Len != 512 {
			t.Errorf("ReadAt(%d) error %#v, want the read's OpError", off, err)
		}
	}
	if _, err := f.WriteAt(p, 4096); err != nil {
		t.Errorf("a read rule failed a write: %v", err)
	}
	if h := f.Hits("bad sector"); h != 3 {
		t.Errorf("Hits = %d, want 3", h)
	}
}

func TestFaultyENOSPCTimes(t *testing.T) {
	f := newFaulty(t, 1<<20)
	f.Add(backstore.Fault{Name: "full", Op: backstore.FaultWrite, Err: syscall.ENOSPC, Times: 2})
	p := []byte("data")
	for i := range 2 {
		if _, err := f.WriteAtSync(p, int64(i)*100); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("write %d = %v, want ENOSPC", i, err)
		}
	}
	if _, err := f.WriteAt(p, 0); err != nil {
		t.Fatalf("write after the rule ran out = %v", err)
	}
	if h := f.Hits("full"); h != 2 {
		t.Errorf("Hits = %d, want 2", h)
	}
}

// A short write puts the bytes before the rule's offset on the store and
// returns how many.
func TestFaultyShortWrite(t *testing.T) {
	f := newFaulty(t, 1<<20)
	f.Add(backstore.Fault{Name: "short", Op: backstore.FaultWrite, Off: 1000, Short: true, Err: io.ErrShortWrite})
	p := bytes.Repeat([]byte{0xee}, 1000)
	n, err := f.WriteAt(p, 500)
	if n != 500 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("WriteAt = %d, %v, want 500, ErrShortWrite", n, err)
	}
	got := make([]byte, 1000)
	f.Inner().ReadAt(got, 500)
	if !bytes.Equal(got[:500], p[:500]) || !bytes.Equal(got[500:], make([]byte, 500)) {
		t.Fatal("a short write did not write exactly the bytes before the fault")
	}
	// Starting inside the range, nothing is written.
	if n, err := f.WriteAt(p, 2000); n != 0 || err == nil {
		t.Fatalf("WriteAt inside the range = %d, %v", n, err)
	}

	f.Clear()
	f.Add(backstore.Fault{Name: "short read", Op: backstore.FaultRead, Off: 700, Len: 10, Short: true})
	n, err = f.ReadAt(got, 500)
	if n != 200 || !errors.Is(err, syscall.EIO) || !bytes.Equal(got[:200], p[:200]) {
		t.Fatalf("short ReadAt = %d, %v, want 200, EIO", n, err)
	}
}

func TestFaultyOtherOps(t *testing.T) {
	f := newFaulty(t, 1<<20)
	f.Add(backstore.Fault{Name: "flush", Op: backstore.FaultFlush})
	f.Add(backstore.Fault{Name: "unmap", Op: backstore.FaultUnmap, Off: 0, Len: 4096, Err: syscall.EOPNOTSUPP})
	f.Add(backstore.Fault{Name: "zero", Op: backstore.FaultWriteZeroes, Err: syscall.ENOSPC})
	if err := f.Flush(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Flush = %v, want EIO", err)
	}
	if err := f.Unmap(512, 512); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("Unmap = %v, want EOPNOTSUPP", err)
	}
	if err := f.Unmap(8192, 512); err != nil {
		t.Errorf("Unmap outside the rule = %v", err)
	}
	if err := f.WriteZeroes(512, 512); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("WriteZeroes = %v, want ENOSPC", err)
	}
	if !f.Remove("flush") || f.Remove("flush") {
		t.Error("Remove did not report the rule exactly once")
	}
	if err := f.Flush(); err != nil {
		t.Errorf("Flush after Remove = %v", err)
	}
	// A rule of the same name replaces the old one.
	f.Add(backstore.Fault{Name: "zero", Op: backstore.FaultRead})
	if err := f.WriteZeroes(512, 512); err != nil {
		t.Errorf("WriteZeroes after the rule was replaced = %v", err)
	}
	f.Add(backstore.Fault{Name: "any", Op: backstore.FaultAny, Off: 1 << 19})
	if _, err := f.WriteAt([]byte{1}, 1<<19); !errors.Is(err, syscall.EIO) {
		t.Errorf("FaultAny did not fail a write: %v", err)
	}
	if err := f.Flush(); !errors.Is(err, syscall.EIO) {
		t.Errorf("FaultAny did not fail a flush: %v", err)
	}
}

// Rules never hide the inner store's own refusals.
func TestFaultyKeepsChecks(t *testing.T) {
	f := newFaulty(t, 1<<20)
	f.Add(backstore.Fault{Name: "all", Op: backstore.FaultAny, Times: 1})
	p := make([]byte, 512)
	if _, err := f.ReadAt(p, 1<<20); !errors.Is(err, backstore.ErrOutOfRange) {
		t.Errorf("out-of-range ReadAt = %v, want ErrOutOfRange", err)
	}
	if h := f.Hits("all"); h != 0 {
		t.Errorf("an out-of-range read tripped the rule (%d hits)", h)
	}
	ro := backstore.NewFaulty(openMemory(t, backstore.Spec{Size: 1 << 20, ReadOnly: true}))
	ro.Add(backstore.Fault{Name: "all", Op: backstore.FaultAny})
	if _, err := ro.WriteAt(p, 0); !errors.Is(err, backstore.ErrReadOnly) {
		t.Errorf("WriteAt on read-only = %v, want ErrReadOnly", err)
	}
}

func TestFaultyAllocs(t *testing.T) {
	f := newFaulty(t, 1<<20)
	p := make([]byte, 4096)
	f.WriteAt(p, 0)
	if a := testing.AllocsPerRun(100, func() { f.ReadAt(p, 0); f.WriteAt(p, 0) }); a != 0 {
		t.Errorf("no rules: %v allocations, want 0", a)
	}
	f.Add(backstore.Fault{Name: "elsewhere", Op: backstore.FaultAny, Off: 8192, Len: 512})
	if a := testing.AllocsPerRun(100, func() { f.ReadAt(p, 0); f.WriteAt(p, 0) }); a != 0 {
		t.Errorf("rules that do not match: %v allocations, want 0", a)
	}
}

// Rules change while I/O runs; run with -race.
func TestFaultyConcurrentRules(t *testing.T) {
	f := newFaulty(t, 1<<20)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 512)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				off := int64((w*1000 + i) % 2048 * 512)
				if _, err := f.WriteAt(p, off); err != nil && !errors.Is(err, syscall.EIO) {
					t.Error(err)
					return
				}
				if _, err := f.ReadAt(p, off); err != nil && !errors.Is(err, syscall.EIO) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 500 {
		f.Add(backstore.Fault{Name: "a", Op: backstore.FaultRead, Off: int64(i%2048) * 512, Len: 4096, Times: 3})
		f.Add(backstore.Fault{Name: "b", Op: backstore.FaultWrite, Off: int64(i%1000) * 512})
		f.Hits("a")
		if i%50 == 0 {
			f.Clear()
		}
		f.Remove("b")
	}
	close(stop)
	wg.Wait()
}
