// Package shm is the one place the Xen rings touch memory shared with
// another domain through unsafe: 32-bit ring indexes loaded and stored
// atomically on the mapped page (the ordering ring.h's rmb/wmb/mb give:
// Go's atomic store on x86 is an XCHG, a full barrier).
package shm

import (
	"sync/atomic"
	"unsafe"
)

func idx(page []byte, off int) *uint32 {
	_ = page[off+3]
	return (*uint32)(unsafe.Pointer(&page[off]))
}

// Load32 atomically loads the 32-bit index at page[off:].
func Load32(page []byte, off int) uint32 { return atomic.LoadUint32(idx(page, off)) }

// Store32 atomically stores v at page[off:].
func Store32(page []byte, off int, v uint32) { atomic.StoreUint32(idx(page, off), v) }

// Aligned reports whether b starts on an n-byte boundary.
func Aligned(b []byte, n uintptr) bool { return uintptr(unsafe.Pointer(&b[0]))%n == 0 }
