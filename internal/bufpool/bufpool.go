// Package bufpool recycles data buffers by power-of-two size class without
// allocating on Get or Put in steady state: free buffers wait in bounded
// channels, whose element (a slice header) is copied, not boxed.
package bufpool

import "math/bits"

const (
	minShift = 12 // 4 KiB
	maxShift = 24 // 16 MiB
	perClass = 64
)

// Pool is a set of size classes. The zero value is not usable; use New.
type Pool struct {
	classes [maxShift - minShift + 1]chan []byte
	// alloc makes a new buffer of n bytes (n a class size).
	alloc func(n int) []byte
}

// New returns a pool. alloc makes fresh buffers; nil means make.
func New(alloc func(n int) []byte) *Pool {
	p := &Pool{alloc: alloc}
	if p.alloc == nil {
		p.alloc = func(n int) []byte { return make([]byte, n) }
	}
	for i := range p.classes {
		p.classes[i] = make(chan []byte, perClass)
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
	select {
	case b := <-p.classes[c]:
		return b[:n]
	default:
		return p.alloc(1 << (c + minShift))[:n]
	}
}

// Put returns a buffer from Get.
func (p *Pool) Put(b []byte) {
	c := class(cap(b))
	if c >= len(p.classes) || cap(b) != 1<<(c+minShift) {
		return
	}
	select {
	case p.classes[c] <- b[:cap(b)]:
	default:
	}
}
