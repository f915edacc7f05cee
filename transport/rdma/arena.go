package rdma

import (
	"errors"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// ErrNoBuffer is returned by Alloc when the registered arena has no free
// block large enough; the session answers the command BUSY.
var ErrNoBuffer = errors.New("rdma: registered buffer arena exhausted")

const arenaShift = 12 // smallest block: 4 KiB

// arena hands out power-of-two blocks of one registered memory region, so
// that no memory is registered per command. It is a buddy allocator: free
// blocks of each order sit in an intrusive doubly linked list indexed by
// 4 KiB block number, and a freed block merges with its free buddy, so a
// phase of 4 KiB commands does not strand the memory a later phase of
// 1 MiB commands needs. Alloc and Free take one mutex and allocate
// nothing.
type arena struct {
	mr   provider.MR
	mem  []byte
	base uintptr // &mem[0]
	addr uint64  // mr.Addr()
	lkey uint32
	rkey uint32

	mu     sync.Mutex
	nblk   int
	orders int
	head   []int32 // first free block of each order, -1 if none
	next   []int32
	prev   []int32
	// state of a block that starts a free or allocated run: order+1 if
	// free, -(order+1) if allocated, 0 inside a run.
	state []int8
	used  int // bytes allocated
}

func newArena(mr provider.MR) *arena {
	mem := mr.Bytes()
	n := len(mem) >> arenaShift
	a := &arena{
		mr: mr, mem: mem, base: uintptr(unsafe.Pointer(unsafe.SliceData(mem))),
		addr: mr.Addr(), lkey: mr.LKey(), rkey: mr.RKey(),
		nblk: n, orders: bits.Len(uint(n)),
		next: make([]int32, n), prev: make([]int32, n), state: make([]int8, n),
	}
	a.head = make([]int32, a.orders)
	for i := range a.head {
		a.head[i] = -1
	}
	// Cover the region with the largest aligned blocks that fit.
	for b := 0; b < n; {
		k := a.orders - 1
		for k > 0 && (b&(1<<k-1) != 0 || b+1<<k > n) {
			k--
		}
		a.push(int32(b), k)
		b += 1 << k
	}
	return a
}

func (a *arena) push(b int32, k int) {
	a.state[b] = int8(k + 1)
	a.prev[b] = -1
	a.next[b] = a.head[k]
	if h := a.head[k]; h >= 0 {
		a.prev[h] = b
	}
	a.head[k] = b
}

func (a *arena) unlink(b int32, k int) {
	if p := a.prev[b]; p >= 0 {
		a.next[p] = a.next[b]
	} else {
		a.head[k] = a.next[b]
	}
	if n := a.next[b]; n >= 0 {
		a.prev[n] = a.prev[b]
	}
	a.state[b] = 0
}

func orderOf(n int) int {
	blocks := (n + 1<<arenaShift - 1) >> arenaShift
	if blocks <= 1 {
		return 0
	}
	return bits.Len(uint(blocks - 1))
}

// alloc returns n bytes (a block of the next power of two, at least 4 KiB).
func (a *arena) alloc(n int) ([]byte, error) {
	if n <= 0 {
		n = 1
	}
	k := orderOf(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	j := k
	for j < a.orders && a.head[j] < 0 {
		j++
	}
	if j >= a.orders {
		return nil, ErrNoBuffer
	}
	b := a.head[j]
	a.unlink(b, j)
	for j > k {
		j--
		a.push(b+1<<j, j)
	}
	a.state[b] = int8(-(k + 1))
	a.used += 1 << (k + arenaShift)
	off := int(b) << arenaShift
	return a.mem[off : off+n : off+n], nil
}

// block returns the block number b starts, or -1 if b is not an arena
// block's start.
func (a *arena) block(b []byte) int32 {
	off, ok := a.offset(b)
	if !ok || off&(1<<arenaShift-1) != 0 {
		return -1
	}
	return int32(off >> arenaShift)
}

// offset locates b in the arena.
func (a *arena) offset(b []byte) (uintptr, bool) {
	if cap(b) == 0 {
		return 0, false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < a.base || p-a.base+uintptr(len(b)) > uintptr(len(a.mem)) {
		return 0, false
	}
	return p - a.base, true
}

// sge describes b (which must lie in the arena) for a work request.
func (a *arena) sge(b []byte) (provider.SGE, bool) {
	off, ok := a.offset(b)
	if !ok {
		return provider.SGE{}, false
	}
	return provider.SGE{Addr: a.addr + uint64(off), Len: uint32(len(b)), LKey: a.lkey}, true
}

// free returns a block from alloc. It reports false for memory that is not
// an allocated block of this arena (nothing changes then).
func (a *arena) free(b []byte) bool {
	blk := a.block(b)
	if blk < 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state[blk]
	if st >= 0 {
		return false
	}
	k := int(-st) - 1
	a.used -= 1 << (k + arenaShift)
	a.state[blk] = 0
	for k < a.orders-1 {
		buddy := blk ^ 1<<k
		if int(buddy)+1<<k > a.nblk || a.state[buddy] != int8(k+1) {
			break
		}
		a.unlink(buddy, k)
		blk = min(blk, buddy)
		k++
	}
	a.push(blk, k)
	return true
}

// inUse reports the bytes allocated.
func (a *arena) inUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}
