// Package bufpool recycles data buffers by power-of-two size class (Pool),
// and other per-command objects (Stack), without allocating in steady
// state. Each class is a bounded stack: the buffer freed last is handed
// out first, so a steady stream of commands keeps reusing the few buffers
// still in the CPU's caches.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 12 // 4 KiB
	maxShift = 24 // 16 MiB
	perClass = 64
)

// Pool is a set of size classes. The zero value is not usable; use New.
type Pool struct {
	classes [maxShift - minShift + 1]Stack[[]byte]
	// alloc makes a new buffer of n bytes (n a class size).
	alloc func(n int) []byte
}

// Stack is a bounded free list, the most recently freed item on top: the
// one most likely still in the CPU's caches. It is safe for concurrent
// use and does not allocate after its first Push calls reach their
// depth. The zero value is a stack of depth 64.
type Stack[T any] struct {
	mu    sync.Mutex
	items []T
	Depth int // 0: 64
}

// Pop takes the item freed last.
func (s *Stack[T]) Pop() (T, bool) {
	var zero T
	s.mu.Lock()
	n := len(s.items)
	if n == 0 {
		s.mu.Unlock()
		return zero, false
	}
	it := s.items[n-1]
	s.items[n-1] = zero
	s.items = s.items[:n-1]
	s.mu.Unlock()
	return it, true
}

// Push frees it; a full stack drops it and reports false.
func (s *Stack[T]) Push(it T) bool {
	s.mu.Lock()
	if s.items == nil {
		s.items = make([]T, 0, s.depth())
	}
	if len(s.items) == cap(s.items) {
		s.mu.Unlock()
		return false
	}
	s.items = append(s.items, it)
	s.mu.Unlock()
	return true
}

func (s *Stack[T]) depth() int {
	if s.Depth > 0 {
		return s.Depth
	}
	return perClass
}

// New returns a pool. alloc makes fresh buffers; nil means make.
func New(alloc func(n int) []byte) *Pool {
	p := &Pool{alloc: alloc}
	if p.alloc == nil {
		p.alloc = func(n int) []byte { return make([]byte, n) }
	}
	return p
}

func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer of length n. Buffers larger than the largest class
// are made fresh and dropped by Put.
func (p *Pool) Get(n int) []byte {
	c := class(n)
	if c >= len(p.classes) {
		return p.alloc(n)
	}
	if b, ok := p.classes[c].Pop(); ok {
		return b[:n]
	}
	return p.alloc(1 << (c + minShift))[:n]
}

// Put returns a buffer from Get. A full class drops it.
func (p *Pool) Put(b []byte) {
	c := class(cap(b))
	if c >= len(p.classes) || cap(b) != 1<<(c+minShift) {
		return
	}
	p.classes[c].Push(b[:cap(b)])
}
