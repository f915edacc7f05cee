package backstore

import "unsafe"

// addrOf is the address of p's first byte, for alignment checks.
func addrOf(p []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(p))) }
