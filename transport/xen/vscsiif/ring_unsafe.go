package vscsiif

import (
	"sync/atomic"
	"unsafe"
)

// The ring indexes are shared with the other domain: every access is an
// atomic 32-bit load or store on the mapped page (the x86 ordering the
// ring.h macros get from rmb/wmb/mb: Go's atomic store is an XCHG, a
// full barrier). Only this file touches the page through unsafe.

func idx(page []byte, off int) *uint32 {
	_ = page[off+3]
	return (*uint32)(unsafe.Pointer(&page[off]))
}

func load32(page []byte, off int) uint32 { return atomic.LoadUint32(idx(page, off)) }

func store32(page []byte, off int, v uint32) { atomic.StoreUint32(idx(page, off), v) }

func aligned(page []byte) bool { return uintptr(unsafe.Pointer(&page[0]))%4 == 0 }
