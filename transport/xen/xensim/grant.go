package xensim

import (
	"github.com/srptgt/srptgt/transport/xen"
)

// A guest's grant table is an array of 8-byte entries in shared memory,
// laid out as Xen's struct grant_entry_v1 (xen/include/public/
// grant_table.h), little-endian:
//
//	bytes 0-1  flags: GTF_permit_access (1) and GTF_readonly (4)
//	bytes 2-3  domid: the domain the page is granted to
//	bytes 4-7  frame: the page, as an index into the guest's memory
//
// The guest writes whole entries with one 64-bit atomic store; whoever
// uses a grant reads the entry once with a 64-bit atomic load and checks
// that copy, as Xen does.
const (
	EntrySize = 8

	GTFPermitAccess = 1 << 0 // GTF_permit_access
	GTFReadonly     = 1 << 2 // GTF_readonly

	// ReservedRefs are the first grant references, which Xen reserves
	// (GNTTAB_NR_RESERVED_ENTRIES: console and XenStore).
	ReservedRefs = 8
)

// Entry is a decoded grant table entry.
type Entry struct {
	Flags uint16
	Dom   xen.DomID
	Frame uint32
}

func decodeEntry(v uint64) Entry {
	return Entry{Flags: uint16(v), Dom: xen.DomID(v >> 16), Frame: uint32(v >> 32)}
}

func (e Entry) encode() uint64 {
	return uint64(e.Flags) | uint64(e.Dom)<<16 | uint64(e.Frame)<<32
}

// check validates a grant for use by domain by, with write access or
// not, in a guest of pages pages; it returns the frame or a GNTST_* code.
func (e Entry) check(by xen.DomID, write bool, pages int) (uint32, xen.GrantStatus) {
	switch {
	case e.Flags&GTFPermitAccess == 0:
		return 0, xen.GrantBadRef
	case e.Dom != by:
		return 0, xen.GrantPermission
	case write && e.Flags&GTFReadonly != 0:
		return 0, xen.GrantPermission
	case uint64(e.Frame) >= uint64(pages):
		return 0, xen.GrantBadPage
	}
	return e.Frame, xen.GrantOK
}
