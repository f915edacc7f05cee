package backstore

import (
	"sync"
	"sync/atomic"
	"syscall"
)

// A memory store keeps its data in chunks allocated on first write and
// found through a two-level table of atomic pointers: a read of a hole
// loads a nil pointer and returns zeros. The bytes of a chunk are guarded by
// one of a set of striped reader/writer locks, so overlapping reads and
// writes — which SCSI allows from concurrent SIMPLE tasks — see each
// chunk's part of a write whole or not at all, and never race in the Go
// memory model's sense. How overlapping commands order is the SCSI layer's
// business.
const (
	chunkShift = 16 // 64 KiB chunks
	chunkSize  = 1 << chunkShift
	chunkMask  = chunkSize - 1
	leafShift  = 9 // 512 chunks (32 MiB) per leaf table
	leafLen    = 1 << leafShift
	leafMask   = leafLen - 1
)

type (
	chunk [chunkSize]byte
	leaf  [leafLen]atomic.Pointer[chunk]
)

// stripes is how many locks guard the chunks' bytes (chunk i uses lock
// i % stripes).
const stripes = 64

type memStore struct {
	geometry
	closed    atomic.Bool
	max       int64 // cap on allocated, 0 for none
	allocated atomic.Int64
	leaves    []atomic.Pointer[leaf]
	locks     [stripes]sync.RWMutex
}

func (s *memStore) lock(ci int64) *sync.RWMutex { return &s.locks[ci%stripes] }

func newMemory(size int64, bs uint32, readOnly bool, maxAllocated int64) *memStore {
	chunks := (size + chunkMask) >> chunkShift
	return &memStore{
		geometry: geometry{size: size, bs: bs, readOnly: readOnly},
		max:      maxAllocated,
		leaves:   make([]atomic.Pointer[leaf], (chunks+leafMask)>>leafShift),
	}
}

// Allocated reports the bytes of chunk memory in use: what Spec.MaxAllocated
// caps. The SCSI layer can reach it through an interface{ Allocated() int64 }.
func (s *memStore) Allocated() int64 { return s.allocated.Load() }

// slot returns chunk ci's pointer, or nil when its leaf does not exist.
func (s *memStore) slot(ci int64) *atomic.Pointer[chunk] {
	l := s.leaves[ci>>leafShift].Load()
	if l == nil {
		return nil
	}
	return &l[ci&leafMask]
}

func (s *memStore) chunkAt(ci int64) *chunk {
	if sl := s.slot(ci); sl != nil {
		return sl.Load()
	}
	return nil
}

// reserve accounts for k new chunks, or reports false if that would pass
// the cap.
func (s *memStore) reserve(k int64) bool {
	need := k * chunkSize
	if s.max == 0 {
		s.allocated.Add(need)
		return true
	}
	for {
		cur := s.allocated.Load()
		if cur+need > s.max {
			return false
		}
		if s.allocated.CompareAndSwap(cur, cur+need) {
			return true
		}
	}
}

func (s *memStore) release(k int64) { s.allocated.Add(-k * chunkSize) }

// ensure returns chunk ci, allocating it if need be from the reservation
// *held, or reserving one more when *held is spent.
func (s *memStore) ensure(ci int64, held *int64) (*chunk, bool) {
	lp := &s.leaves[ci>>leafShift]
	l := lp.Load()
	if l == nil {
		if nl := new(leaf); lp.CompareAndSwap(nil, nl) {
			l = nl
		} else {
			l = lp.Load()
		}
	}
	sl := &l[ci&leafMask]
	for {
		if c := sl.Load(); c != nil {
			return c, true
		}
		if *held == 0 {
			if !s.reserve(1) {
				return nil, false
			}
			*held = 1
		}
		c := new(chunk)
		if sl.CompareAndSwap(nil, c) {
			*held--
			return c, true
		}
	}
}

func (s *memStore) ReadAt(p []byte, off int64) (int, error) {
	if s.closed.Load() {
		return 0, errClosed(opRead, off, int64(len(p)))
	}
	if err := s.checkRead(off, len(p)); err != nil {
		return 0, err
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		co := pos & chunkMask
		m := min(len(p)-n, int(chunkSize-co))
		l := s.lock(pos >> chunkShift)
		l.RLock()
		if c := s.chunkAt(pos >> chunkShift); c != nil {
			copy(p[n:n+m], c[co:])
		} else {
			clear(p[n : n+m])
		}
		l.RUnlock()
		n += m
	}
	return len(p), nil
}

func (s *memStore) WriteAt(p []byte, off int64) (int, error) {
	if s.closed.Load() {
		return 0, errClosed(opWrite, off, int64(len(p)))
	}
	if err := s.checkWrite(opWrite, off, int64(len(p))); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Reserve every chunk the write needs first, so that running out of
	// space fails the write whole rather than half done.
	first, last := off>>chunkShift, (off+int64(len(p))-1)>>chunkShift
	var held int64
	for ci := first; ci <= last; ci++ {
		if s.chunkAt(ci) == nil {
			held++
		}
	}
	if held > 0 && !s.reserve(held) {
		return 0, &OpError{Op: opWrite, Off: off, Len: int64(len(p)), Err: syscall.ENOSPC}
	}
	defer func() {
		if held > 0 {
			s.release(held)
		}
	}()
	for n := 0; n < len(p); {
		pos := off + int64(n)
		l := s.lock(pos >> chunkShift)
		l.Lock()
		c, ok := s.ensure(pos>>chunkShift, &held)
		if !ok { // the range was unmapped under us and the cap reached
			l.Unlock()
			return n, &OpError{Op: opWrite, Off: off, Len: int64(len(p)), Err: syscall.ENOSPC}
		}
		n += copy(c[pos&chunkMask:], p[n:])
		l.Unlock()
	}
	return len(p), nil
}

func (s *memStore) WriteAtSync(p []byte, off int64) (int, error) { return s.WriteAt(p, off) }

func (s *memStore) Flush() error {
	if s.closed.Load() {
		return errClosed(opFlush, 0, 0)
	}
	return nil
}

func (s *memStore) Unmap(off, n int64) error { return s.zero(opUnmap, off, n) }

func (s *memStore) WriteZeroes(off, n int64) error { return s.zero(opWriteZeroes, off, n) }

// zero frees the whole chunks of [off, off+n) and clears the partial ones;
// holes stay holes, so it never allocates and never runs out of space.
func (s *memStore) zero(op string, off, n int64) error {
	if s.closed.Load() {
		return errClosed(op, off, n)
	}
	if err := s.checkWrite(op, off, n); err != nil {
		return err
	}
	for end := off + n; off < end; {
		co := off & chunkMask
		m := min(end-off, chunkSize-co)
		if sl := s.slot(off >> chunkShift); sl != nil {
			l := s.lock(off >> chunkShift)
			l.Lock()
			if m == chunkSize || (co == 0 && off+m == s.size) {
				if sl.Swap(nil) != nil {
					s.release(1)
				}
			} else if c := sl.Load(); c != nil {
				clear(c[co : co+m])
			}
			l.Unlock()
		}
		off += m
	}
	return nil
}

func (s *memStore) Caps() Caps {
	return Caps{ReadOnly: s.readOnly, Thin: true, Unmap: true, UnmapZeroes: true, Immediate: true}
}

// Close frees the data. Operations after Close fail with ErrClosed.
func (s *memStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for i := range s.leaves {
		s.leaves[i].Store(nil)
	}
	s.allocated.Store(0)
	return nil
}

// Allocation reports whether the chunk holding off is allocated and how
// far from off the same state runs (chunk granularity: 64 KiB).
func (s *memStore) Allocation(off int64) (bool, int64, error) {
	if s.closed.Load() {
		return false, 0, errClosed(opAllocation, off, 1)
	}
	if err := CheckRange(off, 1, s.size); err != nil {
		return false, 0, &OpError{Op: opAllocation, Off: off, Len: 1, Err: err}
	}
	const leafBytes = chunkSize << leafShift
	alloc := s.chunkAt(off>>chunkShift) != nil
	end := (off | chunkMask) + 1
	for end < s.size {
		if !alloc && end%leafBytes == 0 && s.leaves[end/leafBytes].Load() == nil {
			end += leafBytes // a whole leaf of holes
			continue
		}
		if (s.chunkAt(end>>chunkShift) != nil) != alloc {
			break
		}
		end += chunkSize
	}
	return alloc, min(end, s.size) - off, nil
}
