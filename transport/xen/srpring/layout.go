// Package srpring is the native SRP ring: SRP information units carried
// in the slots of a shared multi-page ring between a Xen guest and the
// backend, with SRP memory descriptors whose key is a grant reference.
// An SRP-speaking frontend gets login, credits, task management,
// asynchronous events and logout from the session layer (package srp)
// unchanged. docs/xen-srp-ring.md is the specification; this file is its
// layout.
//
// The shared area is 1 + 2*2^order pages, granted by the frontend and
// mapped by the backend in order as one region:
//
//	page 0                 header: the eight ring indexes
//	pages 1 .. 2^order     request slots (frontend to backend)
//	pages 2^order+1 ..     response slots (backend to frontend)
//
// Each direction is a single-producer single-consumer ring of fixed-size
// slots (2^slot_order bytes) with free-running 32-bit indexes; slot i is
// at (i mod nslots) * slot size. One IU per slot:
//
//	bytes 0-3  length of the IU in bytes, little-endian (1 .. slot size - 8)
//	bytes 4-7  reserved, zero
//	bytes 8-   the IU, in SRP's own (big-endian) encoding
//
// Header (little-endian u32 each; one cache line per writer):
//
//	0x00 magic "SRPR" (0x52505253)       0x04 version (1)
//	written by the frontend:
//	0x40 req_prod        next request slot the frontend will fill
//	0x44 req_cons_event  frontend: notify me when req_cons passes this
//	0x48 rsp_cons        next response slot the frontend will read
//	0x4c rsp_event       frontend: notify me when rsp_prod passes this
//	written by the backend:
//	0x80 rsp_prod        next response slot the backend will fill
//	0x84 rsp_cons_event  backend: notify me when rsp_cons passes this
//	0x88 req_cons        next request slot the backend will read
//	0x8c req_event       backend: notify me when req_prod passes this
//
// An "event" index follows io/ring.h: a producer that moved its index from
// old to new notifies when event-1 is in [old, new), that is when
// (new - event) < (new - old) in uint32 arithmetic. A consumer about to
// sleep sets event = cons + 1 and checks once more.
package srpring

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/srptgt/srptgt/srp"
)

// Header offsets.
const (
	OffMagic        = 0x00
	OffVersion      = 0x04
	OffReqProd      = 0x40
	OffReqConsEvent = 0x44
	OffRspCons      = 0x48
	OffRspEvent     = 0x4c
	OffRspProd      = 0x80
	OffRspConsEvent = 0x84
	OffReqCons      = 0x88
	OffReqEvent     = 0x8c

	Magic   = 0x52505253 // "SRPR" in memory
	Version = 1

	PageSize = 4096
	// SlotHeader is the length word and the reserved word before an IU.
	SlotHeader = 8
)

// Negotiation limits (XenStore max-ring-page-order, max-slot-order).
const (
	MinSlotOrder     = 7  // 128-byte slots: an SRP_CMD with one direct descriptor
	MaxSlotOrder     = 16 // 64 KiB slots
	MaxRingPageOrder = 8  // 256 pages each way
	// DefaultSlotOrder and DefaultRingPageOrder are what the Go frontend
	// asks for: 256-byte slots, 4 pages each way (64 slots).
	DefaultSlotOrder     = 8
	DefaultRingPageOrder = 2
)

var le = binary.LittleEndian

// Geometry is a ring's shape.
type Geometry struct {
	PageOrder uint // log2 of the pages in each direction
	SlotOrder uint // log2 of the slot size
}

// ErrGeometry reports a shape outside what the backend offers.
var ErrGeometry = errors.New("srpring: bad ring geometry")

// Check validates g against the backend's limits.
func (g Geometry) Check(maxPageOrder, maxSlotOrder uint) error {
	switch {
	case g.PageOrder > maxPageOrder || g.PageOrder > MaxRingPageOrder:
		return fmt.Errorf("%w: ring-page-order %d exceeds %d", ErrGeometry, g.PageOrder, min(maxPageOrder, MaxRingPageOrder))
	case g.SlotOrder < MinSlotOrder || g.SlotOrder > maxSlotOrder || g.SlotOrder > MaxSlotOrder:
		return fmt.Errorf("%w: slot-order %d outside %d..%d", ErrGeometry, g.SlotOrder, MinSlotOrder, min(maxSlotOrder, MaxSlotOrder))
	case g.SlotOrder > 12+g.PageOrder:
		return fmt.Errorf("%w: slot of 2^%d bytes exceeds the ring", ErrGeometry, g.SlotOrder)
	}
	return nil
}

// Pages is the number of pages in each direction.
func (g Geometry) Pages() int { return 1 << g.PageOrder }

// TotalPages is the number of granted pages: the header and both rings.
func (g Geometry) TotalPages() int { return 1 + 2*g.Pages() }

// SlotSize is the size of a slot.
func (g Geometry) SlotSize() int { return 1 << g.SlotOrder }

// Slots is the number of slots in each direction.
func (g Geometry) Slots() int { return g.Pages() * PageSize / g.SlotSize() }

// MaxIU is the largest IU a slot carries.
func (g Geometry) MaxIU() int { return g.SlotSize() - SlotHeader }

// ErrSlot is matched by every slot that does not decode: the peer broke
// the protocol and is disconnected.
var ErrSlot = errors.New("srpring: malformed slot")

// SlotError says what was wrong with a slot.
type SlotError struct {
	Index  uint32
	Reason string
	Err    error // the codec's *srp.DecodeError, if any
}

func (e *SlotError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("srpring: slot %d: %s: %v", e.Index, e.Reason, e.Err)
	}
	return fmt.Sprintf("srpring: slot %d: %s", e.Index, e.Reason)
}

func (e *SlotError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSlot, e.Err}
	}
	return []error{ErrSlot}
}

// SlotIU returns the IU of a slot from its length word. slot is the
// caller's private copy of a whole slot; the result aliases it.
func SlotIU(slot []byte) ([]byte, error) {
	if len(slot) < SlotHeader {
		return nil, &SlotError{Reason: fmt.Sprintf("slot of %d bytes", len(slot))}
	}
	n := le.Uint32(slot[0:])
	if n == 0 || uint64(n) > uint64(len(slot)-SlotHeader) {
		return nil, &SlotError{Reason: fmt.Sprintf("IU length %d outside 1..%d", n, len(slot)-SlotHeader)}
	}
	if r := le.Uint32(slot[4:]); r != 0 {
		return nil, &SlotError{Reason: fmt.Sprintf("reserved word %#x is not zero", r)}
	}
	return slot[SlotHeader : SlotHeader+int(n)], nil
}

// DecodeRequest decodes the IU in a request slot (the backend side):
// the length word, then the IU with the srp codec, which checks every
// length inside it against the slot's length word. slot is the private
// copy.
func DecodeRequest(slot []byte, iu *srp.IU) error {
	b, err := SlotIU(slot)
	if err != nil {
		return err
	}
	if err := iu.DecodeFromInitiator(b); err != nil {
		return &SlotError{Reason: "undecodable IU", Err: err}
	}
	return nil
}

// DecodeResponse is DecodeRequest for a response slot (the frontend side).
func DecodeResponse(slot []byte, iu *srp.IU) error {
	b, err := SlotIU(slot)
	if err != nil {
		return err
	}
	if err := iu.DecodeFromTarget(b); err != nil {
		return &SlotError{Reason: "undecodable IU", Err: err}
	}
	return nil
}

// PutSlot writes the length word of an IU of n bytes already placed at
// slot[SlotHeader:].
func PutSlot(slot []byte, n int) {
	le.PutUint32(slot[0:], uint32(n))
	le.PutUint32(slot[4:], 0)
}

// Descriptor encoding: an SRP memory descriptor on this ring names guest
// memory the guest granted to the backend, in one of two forms chosen by
// bit 63 of the VIRTUAL ADDRESS.
//
// Page descriptor (bit 63 clear), the fast path for page-sized I/O:
//
//	VIRTUAL ADDRESS  byte offset in the page (0..4095); bits 12-63 zero
//	MEMORY HANDLE    the grant reference of the page
//	DATA LENGTH      bytes, with offset+length <= 4096
//
// Region descriptor (bit 63 set), for buffers that span pages:
//
//	VIRTUAL ADDRESS  bit 63 set; bits 0-21 the byte offset in the region;
//	                 bits 22-62 zero
//	MEMORY HANDLE    the grant reference of a region page: up to 1024
//	                 little-endian 32-bit grant references, the region's
//	                 pages in order (the page may be granted read-only)
//	DATA LENGTH      bytes, with offset+length <= 4 MiB, and every page
//	                 the range touches listed in the region page
//
// An indirect descriptor table is itself described by such a descriptor.

// Descriptor address bits.
const (
	RegionFlag     = 1 << 63
	RegionMaxPages = PageSize / 4
	RegionMax      = RegionMaxPages * PageSize // 4 MiB
)

// ErrDescriptor is matched by a descriptor that breaks the encoding.
var ErrDescriptor = errors.New("srpring: bad memory descriptor")

// CheckDesc validates one descriptor's address and length.
func CheckDesc(d srp.MemDesc) error {
	if d.Addr&RegionFlag != 0 {
		off := d.Addr &^ RegionFlag
		if off >= RegionMax || off+uint64(d.Len) > RegionMax {
			return fmt.Errorf("%w: region offset %#x length %d exceed 4 MiB", ErrDescriptor, off, d.Len)
		}
		return nil
	}
	if d.Addr >= PageSize || d.Addr+uint64(d.Len) > PageSize {
		return fmt.Errorf("%w: address %#x length %d leaves the granted page", ErrDescriptor, d.Addr, d.Len)
	}
	return nil
}
