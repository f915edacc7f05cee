package srpring

import (
	"sync/atomic"
	"unsafe"
)

// The header indexes are shared with the other domain: every access is an
// atomic 32-bit load or store on the mapped page. Only this file touches
// the page through unsafe.

func idx(page []byte, off int) *uint32 {
	_ = page[off+3]
	return (*uint32)(unsafe.Pointer(&page[off]))
}

func load32(page []byte, off int) uint32 { return atomic.LoadUint32(idx(page, off)) }

func store32(page []byte, off int, v uint32) { atomic.StoreUint32(idx(page, off), v) }

func aligned(b []byte) bool { return uintptr(unsafe.Pointer(&b[0]))%64 == 0 }
