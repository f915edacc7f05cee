//go:build linux

package xendev

import (
	"testing"
	"unsafe"

	"github.com/srptgt/srptgt/transport/xen"
)

// The segment layout of IOCTL_GNTDEV_GRANT_COPY for both directions:
// data-in copies from our buffer (source.virt) to the guest's page
// (dest.foreign, GNTCOPY_dest_gref); data-out the other way round.
func TestEncodeCopy(t *testing.T) {
	buf := make([]byte, 4096)
	segs := []xen.CopySeg{
		{Dom: 7, Ref: 0x1234, Offset: 512, Local: buf[:100], ToGuest: true},
		{Dom: 7, Ref: 0x5678, Offset: 0, Local: buf[100:4096], ToGuest: false},
	}
	raw := make([]byte, 2*sizeofCopySegment)
	if err := encodeCopy(raw, segs); err != nil {
		t.Fatal(err)
	}
	virt := func(i int) uint64 { return uint64(uintptr(unsafe.Pointer(&segs[i].Local[0]))) }
	in, out := raw[:sizeofCopySegment], raw[sizeofCopySegment:]
	if le.Uint64(in[0:]) != virt(0) || le.Uint32(in[offCopyDest+offForeignRef:]) != 0x1234 ||
		le.Uint16(in[offCopyDest+offForeignOffset:]) != 512 || le.Uint16(in[offCopyDest+offForeignDomid:]) != 7 ||
		le.Uint16(in[offCopyLen:]) != 100 || le.Uint16(in[offCopyFlags:]) != gntcopyDestGref {
		t.Errorf("data-in segment %x", in)
	}
	if le.Uint64(out[offCopyDest:]) != virt(1) || le.Uint32(out[offForeignRef:]) != 0x5678 ||
		le.Uint16(out[offForeignOffset:]) != 0 || le.Uint16(out[offForeignDomid:]) != 7 ||
		le.Uint16(out[offCopyLen:]) != 3996 || le.Uint16(out[offCopyFlags:]) != gntcopySourceGref {
		t.Errorf("data-out segment %x", out)
	}
	if err := encodeCopy(raw, []xen.CopySeg{{Offset: 4000, Local: buf[:97]}}); err == nil {
		t.Error("a segment crossing the guest's page was encoded")
	}
}
