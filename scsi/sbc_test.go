package scsi_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

func blocks(bs int, parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestReadWrite: every READ and WRITE form at both logical block sizes
// (SBC-3 5.11-5.14 READ, 5.32-5.35 WRITE), reading back what every other
// form wrote.
func TestReadWrite(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			r := newRig(t, rigConfig{bs: uint32(bs)})
			nblk := (1 << 20) / bs
			a, b, c, d := pattern(2*bs, 1), pattern(bs, 2), pattern(bs, 3), pattern(3*bs, 4)
			r.good(r.do(scsitest.RW6(0x0A, 5, 2), a, 0))
			r.good(r.do(scsitest.RW10(0x2A, 0, 10, 1), b, 0))
			r.good(r.do(scsitest.RW12(0xAA, 0, 11, 1), c, 0))
			r.good(r.do(scsitest.RW16(0x8A, 0, 12, 3), d, 0))
			last := pattern(bs, 5)
			r.good(r.do(scsitest.RW16(0x8A, 0, uint64(nblk-1), 1), last, 0))
			r.run([]row{
				{name: "READ(6)", cdb: scsitest.RW6(0x08, 5, 2), inLen: 2 * bs, want: a},
				{name: "READ(10)", cdb: scsitest.RW10(0x28, 0, 5, 2), inLen: 2 * bs, want: a},
				{name: "READ(12)", cdb: scsitest.RW12(0xA8, 0, 5, 2), inLen: 2 * bs, want: a},
				{name: "READ(16)", cdb: scsitest.RW16(0x88, 0, 5, 2), inLen: 2 * bs, want: a},
				{name: "READ(16) across", cdb: scsitest.RW16(0x88, 0, 10, 5), inLen: 5 * bs, want: blocks(bs, b, c, d)},
				{name: "READ(10) DPO FUA", cdb: scsitest.RW10(0x28, 0x18, 10, 1), inLen: bs, want: b},
				{name: "READ(16) last block", cdb: scsitest.RW16(0x88, 0, uint64(nblk-1), 1), inLen: bs, want: last},
				{name: "READ unwritten", cdb: scsitest.RW16(0x88, 0, 100, 1), inLen: bs, want: make([]byte, bs)},
				// SBC-3 5.11: TRANSFER LENGTH 0 in READ(6) means 256 blocks.
				{name: "READ(6) 256 blocks", cdb: scsitest.RW6(0x08, 0, 0), inLen: 256 * bs, want: r.image(0, 256)},
				// Zero blocks elsewhere: no transfer, not an error; the LBA
				// may equal the capacity (as LIO accepts).
				{name: "READ(16) length 0", cdb: scsitest.RW16(0x88, 0, 3, 0), inLen: bs, want: []byte{}},
				{name: "READ(16) length 0 at capacity", cdb: scsitest.RW16(0x88, 0, uint64(nblk), 0), want: nil},
				{name: "WRITE(16) length 0", cdb: scsitest.RW16(0x8A, 0, 3, 0), want: nil},
				{name: "WRITE(10) length 0", cdb: scsitest.RW10(0x2A, 0, 3, 0), want: nil},
			})
			// READ CAPACITY at this block size (SBC-3 5.15, 5.16).
			last32 := uint32(nblk - 1)
			r.data(r.do(scsitest.ReadCapacity10(), nil, 8), cat([]byte{byte(last32 >> 24), byte(last32 >> 16), byte(last32 >> 8), byte(last32)}, be32(uint32(bs))))
			r.data(r.do(scsitest.ReadCapacity16(32), nil, 32), cat("00 00 00 00", []byte{byte(last32 >> 24), byte(last32 >> 16), byte(last32 >> 8), byte(last32)}, be32(uint32(bs)), "00 00 C0 00", zeros(16)))
		})
	}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// image reads n blocks from lba straight from the store.
func (r *rig) image(lba, n int) []byte {
	b := make([]byte, n*r.bs)
	if _, err := r.store.ReadAt(b, int64(lba*r.bs)); err != nil {
		r.t.Fatal(err)
	}
	return b
}

func TestReadWriteErrors(t *testing.T) {
	// MaxTransfer 64 KiB: 128 blocks (VPD B0h MAXIMUM TRANSFER LENGTH).
	r := newRig(t, rigConfig{maxTransfer: 64 << 10})
	r.data(r.do(scsitest.Inquiry(true, 0xB0, 12), nil, 12), hx("00 B0 00 3C 01 40 00 08 00 00 00 80"))
	blk := pattern(512, 7)
	r.runBoth([]row{
		// LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 4.5, 5.x): the range
		// ends past the last LBA, or wraps.
		{name: "READ(16) past end", cdb: scsitest.RW16(0x88, 0, 2047, 2), inLen: 1024, err: se(5, 0x2100, "")},
		{name: "READ(16) length 0 past capacity", cdb: scsitest.RW16(0x88, 0, 2049, 0), err: se(5, 0x2100, "")},
		{name: "READ(16) LBA wraps", cdb: scsitest.RW16(0x88, 0, 1<<64-1, 2), inLen: 1024, err: se(5, 0x2100, "")},
		{name: "READ(10) LBA FFFFFFFFh", cdb: scsitest.RW10(0x28, 0, 0xFFFFFFFF, 1), inLen: 512, err: se(5, 0x2100, "")},
		{name: "READ(6) LBA 1FFFFFh", cdb: scsitest.RW6(0x08, 0x1FFFFF, 1), inLen: 512, err: se(5, 0x2100, "")},
		{name: "WRITE(12) past end", cdb: scsitest.RW12(0xAA, 0, 2040, 9), out: make([]byte, 9*512), err: se(5, 0x2100, "")},
		// TRANSFER LENGTH above MAXIMUM TRANSFER LENGTH: INVALID FIELD IN
		// CDB pointing at the TRANSFER LENGTH field (SBC-3 6.5.3).
		{name: "READ(16) too long", cdb: scsitest.RW16(0x88, 0, 0, 129), inLen: 129 * 512, err: se(5, 0x2400, "C0 00 0A")},
		{name: "READ(12) too long", cdb: scsitest.RW12(0xA8, 0, 0, 129), inLen: 129 * 512, err: se(5, 0x2400, "C0 00 06")},
		{name: "READ(10) too long", cdb: scsitest.RW10(0x28, 0, 0, 129), inLen: 129 * 512, err: se(5, 0x2400, "C0 00 07")},
		{name: "READ(6) 256 blocks", cdb: scsitest.RW6(0x08, 0, 0), inLen: 256 * 512, err: se(5, 0x2400, "C0 00 04")},
		{name: "WRITE(16) too long", cdb: scsitest.RW16(0x8A, 0, 0, 129), out: make([]byte, 129*512), err: se(5, 0x2400, "C0 00 0A")},
		// Fields this target does not implement: RDPROTECT, FUA_NV, GROUP
		// NUMBER, NACA and LINK in CONTROL.
		{name: "RDPROTECT", cdb: scsitest.RW10(0x28, 0x20, 0, 1), inLen: 512, err: se(5, 0x2400, "CD 00 01")},
		{name: "FUA_NV", cdb: scsitest.RW16(0x88, 0x02, 0, 1), inLen: 512, err: se(5, 0x2400, "C9 00 01")},
		{name: "WRPROTECT", cdb: scsitest.RW16(0x8A, 0xE0, 0, 1), out: blk, err: se(5, 0x2400, "CF 00 01")},
		{name: "GROUP NUMBER(10)", cdb: hx("28 00 00 00 00 00 01 00 01 00"), inLen: 512, err: se(5, 0x2400, "C8 00 06")},
		{name: "GROUP NUMBER(12)", cdb: hx("A8 00 00 00 00 00 00 00 00 01 01 00"), inLen: 512, err: se(5, 0x2400, "C8 00 0A")},
		{name: "NACA(16)", cdb: hx("88 00 00 00 00 00 00 00 00 00 00 00 00 01 00 04"), inLen: 512, err: se(5, 0x2400, "CA 00 0F")},
		{name: "LINK(6)", cdb: hx("08 00 00 00 01 01"), inLen: 512, err: se(5, 0x2400, "C8 00 05")},
		{name: "READ(6) reserved", cdb: hx("08 20 00 00 01 00"), inLen: 512, err: se(5, 0x2400, "CD 00 01")},
		// A data-out buffer that disagrees with the TRANSFER LENGTH is
		// refused whole (INVALID FIELD IN COMMAND INFORMATION UNIT, as an
		// SRP/iSCSI target reports a command IU it cannot honour).
		{name: "WRITE short data-out", cdb: scsitest.RW16(0x8A, 0, 0, 2), out: blk, err: se(5, 0x0E03, "")},
		{name: "WRITE long data-out", cdb: scsitest.RW10(0x2A, 0, 0, 1), out: make([]byte, 1024), err: se(5, 0x0E03, "")},
		{name: "WRITE no data-out", cdb: scsitest.RW6(0x0A, 0, 1), err: se(5, 0x0E03, "")},
	})
	// None of the refused writes touched the medium.
	if img := r.image(0, 4); !bytes.Equal(img, make([]byte, 4*512)) {
		t.Fatal("a refused WRITE changed the medium")
	}
}

// TestWriteProtected: a read-only LU fails every command that writes with
// DATA PROTECT, WRITE PROTECTED (SBC-3 4.11) and serves the rest.
func TestWriteProtected(t *testing.T) {
	r := newRig(t, rigConfig{readOnly: true})
	blk := pattern(512, 1)
	unmapCDB, unmapParam := scsitest.Unmap([2]uint64{0, 1})
	r.runBoth([]row{
		{name: "WRITE(6)", cdb: scsitest.RW6(0x0A, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "WRITE(10)", cdb: scsitest.RW10(0x2A, 0, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "WRITE(12)", cdb: scsitest.RW12(0xAA, 0, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "WRITE(16)", cdb: scsitest.RW16(0x8A, 0, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "WRITE AND VERIFY(10)", cdb: scsitest.RW10(0x2E, 0, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "WRITE SAME(10)", cdb: scsitest.RW10(0x41, 0, 0, 1), out: blk, err: se(7, 0x2700, "")},
		{name: "UNMAP", cdb: unmapCDB, out: unmapParam, err: se(7, 0x2700, "")},
		{name: "COMPARE AND WRITE", cdb: scsitest.CompareAndWrite(0, 0, 1), out: make([]byte, 1024), err: se(7, 0x2700, "")},
		{name: "FORMAT UNIT", cdb: hx("04 00 00 00 00 00"), err: se(7, 0x2700, "")},
		{name: "READ", cdb: scsitest.RW16(0x88, 0, 0, 1), inLen: 512, want: make([]byte, 512)},
		{name: "VERIFY", cdb: scsitest.RW16(0x8F, 0, 0, 1), want: nil},
		{name: "SYNCHRONIZE CACHE", cdb: scsitest.RW10(0x35, 0, 0, 0), want: nil},
	})
}

// TestVerify: VERIFY(10/16) with BYTCHK 00b (medium only), 01b (compare
// with the data-out buffer) and 11b (compare every block with the one
// block sent) (SBC-3 5.29/5.30, SBC-4 5.31). A miscompare is MISCOMPARE,
// MISCOMPARE DURING VERIFY OPERATION with the INFORMATION field set to the
// offset of the first byte that differs, counted in the (duplicated)
// Data-Out Buffer.
func TestVerify(t *testing.T) {
	r := newRig(t, rigConfig{})
	data := pattern(4*512, 8)
	r.good(r.do(scsitest.RW16(0x8A, 0, 10, 4), data, 0))
	blk := pattern(512, 9)
	r.good(r.do(scsitest.WriteSame16(0, 20, 4), blk, 0))
	odd := append([]byte(nil), blk...)
	odd[3] ^= 0xFF
	r.good(r.do(scsitest.RW16(0x8A, 0, 22, 1), odd, 0))
	bad := append([]byte(nil), data...)
	bad[700] ^= 0x01
	r.run([]row{
		{name: "BYTCHK 0 (10)", cdb: scsitest.RW10(0x2F, 0, 10, 4), want: nil},
		{name: "BYTCHK 0 (16)", cdb: scsitest.RW16(0x8F, 0x10, 10, 4), want: nil},
		{name: "BYTCHK 1 (10)", cdb: scsitest.RW10(0x2F, 0x02, 10, 4), out: data, want: nil},
		{name: "BYTCHK 1 (16)", cdb: scsitest.RW16(0x8F, 0x02, 10, 4), out: data, want: nil},
		{name: "BYTCHK 3 (16)", cdb: scsitest.RW16(0x8F, 0x06, 20, 2), out: blk, want: nil},
		{name: "BYTCHK 3 (10)", cdb: scsitest.RW10(0x2F, 0x06, 20, 2), out: blk, want: nil},
		{name: "length 0", cdb: scsitest.RW16(0x8F, 0x02, 10, 0), want: nil},
	})
	r.runBoth([]row{
		{name: "BYTCHK 1 miscompare", cdb: scsitest.RW16(0x8F, 0x02, 10, 4), out: bad, err: &sense{key: 0xE, asc: 0x1D00, info: 700, hasInfo: true}},
		{name: "BYTCHK 1 miscompare (10)", cdb: scsitest.RW10(0x2F, 0x02, 10, 4), out: bad, err: &sense{key: 0xE, asc: 0x1D00, info: 700, hasInfo: true}},
		{name: "BYTCHK 3 miscompare", cdb: scsitest.RW16(0x8F, 0x06, 20, 4), out: blk, err: &sense{key: 0xE, asc: 0x1D00, info: 2*512 + 3, hasInfo: true}},
		// BYTCHK 10b is reserved.
		{name: "BYTCHK 2", cdb: scsitest.RW16(0x8F, 0x04, 10, 4), err: se(5, 0x2400, "CA 00 01")},
		{name: "out of range", cdb: scsitest.RW16(0x8F, 0, 2046, 4), err: se(5, 0x2100, "")},
		{name: "data-out short", cdb: scsitest.RW16(0x8F, 0x02, 10, 4), out: data[:512], err: se(5, 0x0E03, "")},
		{name: "BYTCHK 0 with data-out", cdb: scsitest.RW16(0x8F, 0, 10, 1), out: blk, err: se(5, 0x0E03, "")},
		{name: "VRPROTECT", cdb: scsitest.RW10(0x2F, 0x20, 10, 1), err: se(5, 0x2400, "CD 00 01")},
	})
}

// TestWriteAndVerify: WRITE AND VERIFY(10/16) writes, then verifies
// (SBC-3 5.36/5.37; SBC-4: BYTCHK 00b, 01b; 10b and 11b reserved).
func TestWriteAndVerify(t *testing.T) {
	r := newRig(t, rigConfig{})
	a, b := pattern(1024, 11), pattern(1024, 12)
	r.good(r.do(scsitest.RW10(0x2E, 0, 30, 2), a, 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 30, 2), nil, 1024), a)
	r.good(r.do(scsitest.RW16(0x8E, 0x02, 30, 2), b, 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 30, 2), nil, 1024), b)
	r.good(r.do(scsitest.RW16(0x8E, 0x10, 30, 0), nil, 0))
	r.runBoth([]row{
		{name: "BYTCHK 10b", cdb: scsitest.RW16(0x8E, 0x04, 30, 2), out: a, err: se(5, 0x2400, "CA 00 01")},
		{name: "BYTCHK 11b", cdb: scsitest.RW10(0x2E, 0x06, 30, 2), out: a, err: se(5, 0x2400, "CA 00 01")},
		{name: "out of range", cdb: scsitest.RW16(0x8E, 0, 2047, 2), out: a, err: se(5, 0x2100, "")},
		{name: "data-out short", cdb: scsitest.RW16(0x8E, 0, 30, 2), out: a[:512], err: se(5, 0x0E03, "")},
	})
	r.data(r.do(scsitest.RW16(0x88, 0, 30, 2), nil, 1024), b)
}

// TestSynchronizeCache: SBC-3 5.22/5.23. The range is checked; NUMBER OF
// LOGICAL BLOCKS 0 means to the end of the medium.
func TestSynchronizeCache(t *testing.T) {
	rec := &recStore{Store: memStore(t, 1<<20, 512), volatile: true}
	r := newRig(t, rigConfig{store: rec})
	r.run([]row{
		{name: "10 all", cdb: scsitest.RW10(0x35, 0, 0, 0), want: nil},
		{name: "16 tail", cdb: scsitest.RW16(0x91, 0, 2000, 48), want: nil},
		{name: "16 IMMED", cdb: scsitest.RW16(0x91, 0x02, 0, 1), want: nil},
		{name: "10 SYNC_NV", cdb: scsitest.RW10(0x35, 0x04, 0, 1), want: nil},
		{name: "10 at capacity", cdb: scsitest.RW10(0x35, 0, 2048, 0), want: nil},
	})
	if n := len(rec.take()); n != 5 {
		t.Fatalf("%d store calls, want 5 flushes", n)
	}
	r.runBoth([]row{
		{name: "16 past end", cdb: scsitest.RW16(0x91, 0, 2000, 49), err: se(5, 0x2100, "")},
		{name: "10 past capacity", cdb: scsitest.RW10(0x35, 0, 2049, 0), err: se(5, 0x2100, "")},
		{name: "reserved bit", cdb: scsitest.RW10(0x35, 0x01, 0, 0), err: se(5, 0x2400, "C8 00 01")},
	})
}

func TestReadCapacity(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// RETURNED LOGICAL BLOCK ADDRESS 2047, LOGICAL BLOCK LENGTH 512.
		{name: "10", cdb: scsitest.ReadCapacity10(), inLen: 8, want: hx("00 00 07 FF 00 00 02 00")},
		{name: "10 PMI", cdb: hx("25 00 00 00 00 10 00 00 01 00"), inLen: 8, want: hx("00 00 07 FF 00 00 02 00")},
		{name: "10 short buffer", cdb: scsitest.ReadCapacity10(), inLen: 4, want: hx("00 00 07 FF")},
		// 16: LBPME and LBPRZ from the thin memory store (SBC-3 5.16).
		{name: "16", cdb: scsitest.ReadCapacity16(32), inLen: 32, want: cat("00 00 00 00 00 00 07 FF 00 00 02 00 00 00 C0 00", zeros(16))},
		{name: "16 alloc 12", cdb: scsitest.ReadCapacity16(12), inLen: 32, want: hx("00 00 00 00 00 00 07 FF 00 00 02 00")},
	})
	r.runBoth([]row{
		// SBC-3 5.15: LOGICAL BLOCK ADDRESS non-zero with PMI zero.
		{name: "10 LBA without PMI", cdb: hx("25 00 00 00 00 10 00 00 00 00"), inLen: 8, err: se(5, 0x2400, "C0 00 02")},
		{name: "10 reserved", cdb: hx("25 01 00 00 00 00 00 00 00 00"), inLen: 8, err: se(5, 0x2400, "C8 00 01")},
	})
}

// plainStore hides every method beyond backstore.Store (Allocator).
type plainStore struct{ backstore.Store }

// noUnmap hides a store's deallocation: the LU is fully provisioned.
type noUnmap struct{ backstore.Store }

func (s noUnmap) Caps() backstore.Caps {
	c := s.Store.Caps()
	c.Unmap, c.UnmapZeroes, c.Thin = false, false, false
	return c
}

// TestFullyProvisioned: without deallocation, LBPME is 0, UNMAP and GET
// LBA STATUS are not there, and the provisioning VPD page says nothing
// (SBC-3 4.7.2, 5.16, 6.5.4).
func TestFullyProvisioned(t *testing.T) {
	r := newRig(t, rigConfig{store: noUnmap{memStore(t, 1<<20, 512)}})
	unmapCDB, unmapParam := scsitest.Unmap([2]uint64{0, 1})
	r.run([]row{
		{name: "RC16", cdb: scsitest.ReadCapacity16(32), inLen: 32, want: cat("00 00 00 00 00 00 07 FF 00 00 02 00 00 00 00 00", zeros(16))},
		{name: "VPD B2h", cdb: scsitest.Inquiry(true, 0xB2, 64), inLen: 64, want: hx("00 B2 00 04 00 00 00 00")},
		{name: "VPD B0h", cdb: scsitest.Inquiry(true, 0xB0, 64), inLen: 64, want: cat("00 B0 00 3C",
			"01 40 00 08", "00 00 40 00", zeros(24), "00 00 00 00 00 40 00 00", zeros(20))},
		{name: "REPORT OPCODES UNMAP", cdb: scsitest.ReportOpcodes(false, 1, 0x42, 0, 64), inLen: 64, want: hx("00 01 00 00")},
		// WRITE SAME with UNMAP writes zeros instead.
		{name: "WRITE SAME UNMAP", cdb: scsitest.WriteSame16(0x08, 0, 8), out: make([]byte, 512), want: nil},
	})
	r.runBoth([]row{
		{name: "UNMAP", cdb: unmapCDB, out: unmapParam, err: se(5, 0x2000, "")},
		{name: "GET LBA STATUS", cdb: scsitest.GetLBAStatus(0, 32), inLen: 32, err: se(5, 0x2400, "CC 00 01")},
	})
}

// TestUnmap: SBC-3 5.25 with the limits of the Block Limits VPD page.
func TestUnmap(t *testing.T) {
	r := newRig(t, rigConfig{})
	img := pattern(64*512, 21)
	r.good(r.do(scsitest.RW16(0x8A, 0, 0, 64), img, 0))
	model := append([]byte(nil), img...)
	unmap := func(descs ...[2]uint64) ([]byte, []byte) { return scsitest.Unmap(descs...) }
	cdb, p := unmap([2]uint64{4, 2}, [2]uint64{10, 3}, [2]uint64{20, 0})
	r.good(r.do(cdb, p, 0))
	clear(model[4*512 : 6*512])
	clear(model[10*512 : 13*512])
	r.data(r.do(scsitest.RW16(0x88, 0, 0, 64), nil, 64*512), model)

	// A last descriptor cut short by the BLOCK DESCRIPTOR DATA LENGTH is
	// ignored (SBC-3 5.25.2).
	cdb, p = unmap([2]uint64{30, 1}, [2]uint64{31, 1})
	p[3] = 16 + 15
	r.good(r.do(cdb, p, 0))
	clear(model[30*512 : 31*512])
	r.data(r.do(scsitest.RW16(0x88, 0, 0, 64), nil, 64*512), model)

	cdbLen := func(n uint16) []byte {
		c := hx("42 00 00 00 00 00 00 00 00 00")
		c[7], c[8] = byte(n>>8), byte(n)
		return c
	}
	cdb, p = unmap([2]uint64{40, 2})
	tooMany := make([][2]uint64, 257)
	for i := range tooMany {
		tooMany[i] = [2]uint64{uint64(i), 1}
	}
	manyCDB, manyP := unmap(tooMany...)
	withLen := func(p []byte, off int, v byte) []byte { q := append([]byte(nil), p...); q[off] = v; return q }
	r.run([]row{
		// PARAMETER LIST LENGTH 0: nothing to do.
		{name: "length 0", cdb: cdbLen(0), want: nil},
		{name: "header only", cdb: cdbLen(8), out: hx("00 06 00 00 00 00 00 00"), want: nil},
	})
	r.runBoth([]row{
		// SBC-3 5.25.1: 1..7 is PARAMETER LIST LENGTH ERROR.
		{name: "length 7", cdb: cdbLen(7), out: make([]byte, 7), err: se(5, 0x1A00, "")},
		{name: "data-out shorter than length", cdb: cdbLen(24), out: make([]byte, 8), err: se(5, 0x1A00, "")},
		{name: "UNMAP DATA LENGTH", cdb: cdb, out: withLen(p, 1, 0x30), err: se(5, 0x2600, "80 00 00")},
		{name: "BLOCK DESCRIPTOR DATA LENGTH", cdb: cdb, out: withLen(p, 3, 0x20), err: se(5, 0x2600, "80 00 02")},
		// More descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (256).
		{name: "257 descriptors", cdb: manyCDB, out: manyP, err: se(5, 0x2600, "80 00 02")},
		{name: "out of range", cdb: cdb, out: withLen(p, 8, 0xFF), err: se(5, 0x2100, "")},
		{name: "ANCHOR", cdb: hx("42 01 00 00 00 00 00 00 18 00"), out: p, err: se(5, 0x2400, "C8 00 01")},
		{name: "GROUP NUMBER", cdb: hx("42 00 00 00 00 00 01 00 18 00"), out: p, err: se(5, 0x2400, "C8 00 06")},
	})
	// A bad descriptor anywhere means no descriptor is applied.
	cdb, p = unmap([2]uint64{50, 1}, [2]uint64{2048, 1})
	r.expect(r.do(cdb, p, 0), sense{key: 5, asc: 0x2100})
	r.data(r.do(scsitest.RW16(0x88, 0, 0, 64), nil, 64*512), model)
}

// TestUnmapLimits runs against a 4 GiB thin LU (8Mi blocks, allocated
// only where written) to reach MAXIMUM UNMAP LBA COUNT and MAXIMUM WRITE
// SAME LENGTH (4Mi blocks each, SBC-3 6.5.3).
func TestUnmapLimits(t *testing.T) {
	r := newRig(t, rigConfig{size: 4 << 30})
	const max = 1 << 22
	r.good(r.do(scsitest.RW16(0x8A, 0, 5, 1), pattern(512, 1), 0))
	cdb, p := scsitest.Unmap([2]uint64{0, max})
	r.good(r.do(cdb, p, 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 5, 1), nil, 512), make([]byte, 512))
	over, overP := scsitest.Unmap([2]uint64{0, max + 1})
	sum, sumP := scsitest.Unmap([2]uint64{0, max / 2}, [2]uint64{max, max/2 + 1})
	r.run([]row{
		{name: "WRITE SAME max", cdb: scsitest.WriteSame16(0x08, 0, max), out: make([]byte, 512), want: nil},
	})
	r.runBoth([]row{
		// One descriptor over the limit: pointer at its NUMBER OF LOGICAL
		// BLOCKS; the sum over the limit: at the descriptor data length.
		{name: "one descriptor", cdb: over, out: overP, err: se(5, 0x2600, "80 00 10")},
		{name: "sum", cdb: sum, out: sumP, err: se(5, 0x2600, "80 00 02")},
		{name: "WRITE SAME over", cdb: scsitest.WriteSame16(0x08, 0, max+1), out: make([]byte, 512), err: se(5, 0x2400, "C0 00 0A")},
	})
}

// TestWriteSame: SBC-3 5.41/5.42 (NDOB from SBC-4 5.50). A zero block with
// UNMAP on a store whose unmapped blocks read as zeros is unmapped; a
// zero block without UNMAP is written as zeros; anything else is written.
func TestWriteSame(t *testing.T) {
	rec := &recStore{Store: memStore(t, 1<<20, 512)}
	r := newRig(t, rigConfig{store: rec})
	blk := pattern(512, 5)
	r.good(r.do(scsitest.RW16(0x8A, 0, 100, 8), pattern(8*512, 6), 0))
	steps := []struct {
		name  string
		cdb   []byte
		out   []byte
		calls string
		want  []byte // blocks 100..103 afterwards
	}{
		{"10", scsitest.RW10(0x41, 0, 100, 4), blk, "[WriteAt 51200+2048]", bytes.Repeat(blk, 4)},
		{"16 zero", scsitest.WriteSame16(0, 100, 4), make([]byte, 512), "[WriteZeroes 51200+2048]", make([]byte, 2048)},
		{"16 data with UNMAP", scsitest.WriteSame16(0x08, 100, 4), blk, "[WriteAt 51200+2048]", bytes.Repeat(blk, 4)},
		{"16 zero with UNMAP", scsitest.WriteSame16(0x08, 100, 4), make([]byte, 512), "[Unmap 51200+2048]", make([]byte, 2048)},
		{"10 zero with UNMAP", scsitest.RW10(0x41, 0x08, 100, 4), make([]byte, 512), "[Unmap 51200+2048]", make([]byte, 2048)},
		{"16 NDOB", scsitest.WriteSame16(0x01, 100, 4), nil, "[WriteZeroes 51200+2048]", make([]byte, 2048)},
		{"16 NDOB UNMAP", scsitest.WriteSame16(0x09, 100, 4), nil, "[Unmap 51200+2048]", make([]byte, 2048)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			rr := r.on(t)
			rr.good(rr.do(scsitest.RW16(0x8A, 0, 100, 4), pattern(2048, 6), 0))
			rec.take()
			rr.good(rr.do(s.cdb, s.out, 0))
			if got := fmt.Sprint(rec.take()); got != s.calls {
				t.Fatalf("store calls %s, want %s", got, s.calls)
			}
			rr.data(rr.do(scsitest.RW16(0x88, 0, 100, 5), nil, 5*512), append(append([]byte(nil), s.want...), pattern(8*512, 6)[4*512:5*512]...))
		})
	}
	r.runBoth([]row{
		// WSNZ is 1 in the Block Limits VPD page: zero blocks is refused.
		{name: "10 zero blocks", cdb: scsitest.RW10(0x41, 0, 100, 0), out: blk, err: se(5, 0x2400, "C0 00 07")},
		{name: "16 zero blocks", cdb: scsitest.WriteSame16(0, 100, 0), out: blk, err: se(5, 0x2400, "C0 00 0A")},
		{name: "out of range", cdb: scsitest.WriteSame16(0, 2047, 2), out: blk, err: se(5, 0x2100, "")},
		{name: "data-out two blocks", cdb: scsitest.WriteSame16(0, 100, 2), out: make([]byte, 1024), err: se(5, 0x0E03, "")},
		// NDOB does not exist in WRITE SAME(10); ANCHOR is not supported.
		{name: "10 NDOB", cdb: scsitest.RW10(0x41, 0x01, 100, 1), out: blk, err: se(5, 0x2400, "C8 00 01")},
		{name: "16 ANCHOR", cdb: scsitest.WriteSame16(0x18, 100, 1), out: blk, err: se(5, 0x2400, "CC 00 01")},
		{name: "16 LBDATA", cdb: scsitest.WriteSame16(0x02, 100, 1), out: blk, err: se(5, 0x2400, "C9 00 01")},
	})
}

// TestCompareAndWrite: SBC-3 5.2. A miscompare reports MISCOMPARE,
// MISCOMPARE DURING VERIFY OPERATION with the INFORMATION field set to the
// offset of the first differing byte in the Data-Out Buffer, and writes
// nothing.
func TestCompareAndWrite(t *testing.T) {
	r := newRig(t, rigConfig{})
	a, b := pattern(512, 31), pattern(512, 32)
	r.good(r.do(scsitest.RW16(0x8A, 0, 50, 1), a, 0))
	r.good(r.do(scsitest.CompareAndWrite(0, 50, 1), cat(a, b), 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 50, 1), nil, 512), b)
	b77 := append([]byte(nil), b...)
	b77[77] ^= 0x40
	two := cat(b, zeros(512))
	two[600] = 1
	r.runBoth([]row{
		{name: "miscompare", cdb: scsitest.CompareAndWrite(0, 50, 1), out: cat(b77, a), err: &sense{key: 0xE, asc: 0x1D00, info: 77, hasInfo: true}},
		{name: "miscompare block 2", cdb: scsitest.CompareAndWrite(0, 50, 2), out: cat(two, zeros(1024)), err: &sense{key: 0xE, asc: 0x1D00, info: 600, hasInfo: true}},
		// More than MAXIMUM COMPARE AND WRITE LENGTH (64) blocks.
		{name: "65 blocks", cdb: scsitest.CompareAndWrite(0, 0, 65), out: make([]byte, 2*65*512), err: se(5, 0x2400, "C0 00 0D")},
		{name: "out of range", cdb: scsitest.CompareAndWrite(0, 2048, 1), out: make([]byte, 1024), err: se(5, 0x2100, "")},
		{name: "data-out one block", cdb: scsitest.CompareAndWrite(0, 50, 1), out: b, err: se(5, 0x0E03, "")},
		{name: "reserved byte 10", cdb: hx("89 00 00 00 00 00 00 00 00 32 01 00 00 01 00 00"), out: cat(b, a), err: se(5, 0x2400, "C8 00 0A")},
		{name: "GROUP NUMBER", cdb: hx("89 00 00 00 00 00 00 00 00 32 00 00 00 01 01 00"), out: cat(b, a), err: se(5, 0x2400, "C8 00 0E")},
	})
	r.data(r.do(scsitest.RW16(0x88, 0, 50, 2), nil, 1024), cat(b, zeros(512)))
	// NUMBER OF LOGICAL BLOCKS 0: nothing is read or written, not an error.
	r.good(r.do(scsitest.CompareAndWrite(0, 50, 0), nil, 0))
	// 64 blocks at once.
	big := pattern(64*512, 33)
	r.good(r.do(scsitest.CompareAndWrite(0x08, 200, 64), cat(make([]byte, 64*512), big), 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 200, 64), nil, 64*512), big)
}

// allocStore reports blocks in runs of 8 as alternately mapped and
// deallocated (backstore.Allocator), for GET LBA STATUS.
type allocStore struct{ backstore.Store }

func (s allocStore) Allocation(off int64) (bool, int64, error) {
	const run = 8 * 512
	end := (off/run + 1) * run
	return (off/run)%2 == 0, end - off, nil
}

// TestGetLBAStatus: SBC-3 5.7: PARAMETER DATA LENGTH, then LBA status
// descriptors (STARTING LBA, NUMBER OF LOGICAL BLOCKS, PROVISIONING STATUS
// 0 mapped / 1 deallocated).
func TestGetLBAStatus(t *testing.T) {
	r := newRig(t, rigConfig{store: allocStore{memStore(t, 1<<20, 512)}})
	desc := func(lba uint64, n uint32, st byte) []byte {
		return cat([]byte{byte(lba >> 56), byte(lba >> 48), byte(lba >> 40), byte(lba >> 32), byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba)}, be32(n), []byte{st, 0, 0, 0})
	}
	r.run([]row{
		{name: "three runs", cdb: scsitest.GetLBAStatus(0, 56), inLen: 64, want: cat("00 00 00 34 00 00 00 00", desc(0, 8, 0), desc(8, 8, 1), desc(16, 8, 0))},
		{name: "mid run", cdb: scsitest.GetLBAStatus(3, 24), inLen: 64, want: cat("00 00 00 14 00 00 00 00", desc(3, 5, 0))},
		{name: "last block", cdb: scsitest.GetLBAStatus(2047, 56), inLen: 64, want: cat("00 00 00 14 00 00 00 00", desc(2047, 1, 1))},
		{name: "alloc 4", cdb: scsitest.GetLBAStatus(0, 4), inLen: 64, want: hx("00 00 00 14")},
	})
	r.runBoth([]row{
		{name: "past end", cdb: scsitest.GetLBAStatus(2048, 32), inLen: 32, err: se(5, 0x2100, "")},
	})
	// A store that cannot tell reports everything mapped, in one run.
	m := newRig(t, rigConfig{store: plainStore{memStore(t, 1<<20, 512)}})
	m.data(m.do(scsitest.GetLBAStatus(100, 32), nil, 32), cat("00 00 00 14 00 00 00 00", desc(100, 1948, 0)))
}

// gateStore holds chosen operations until released, and reports every
// operation as it enters, so tests can see what runs when.
type gateStore struct {
	backstore.Store
	mu      sync.Mutex
	gates   map[string]chan struct{}
	entered chan string
}

func newGateStore(s backstore.Store) *gateStore {
	return &gateStore{Store: s, gates: map[string]chan struct{}{}, entered: make(chan string, 1024)}
}

// hold makes the operation op at byte offset off wait until release.
func (g *gateStore) hold(op string, off int64) (release func()) {
	key := fmt.Sprintf("%s %d", op, off)
	ch := make(chan struct{})
	g.mu.Lock()
	g.gates[key] = ch
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.gates, key)
			g.mu.Unlock()
			close(ch)
		})
	}
}

func (g *gateStore) pass(op string, off int64) {
	key := fmt.Sprintf("%s %d", op, off)
	select {
	case g.entered <- key:
	default:
	}
	g.mu.Lock()
	ch := g.gates[key]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// waitEnter waits for the operation to enter the store.
func (g *gateStore) waitEnter(t testing.TB, key string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case k := <-g.entered:
			if k == key {
				return
			}
		case <-timeout:
			t.Fatalf("%s never reached the store", key)
		}
	}
}

// quiet fails if any operation enters the store within d.
func (g *gateStore) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case k := <-g.entered:
		t.Fatalf("%s reached the store too early", k)
	case <-time.After(d):
	}
}

func (g *gateStore) ReadAt(p []byte, off int64) (int, error) {
	g.pass("read", off)
	return g.Store.ReadAt(p, off)
}

func (g *gateStore) WriteAt(p []byte, off int64) (int, error) {
	g.pass("write", off)
	return g.Store.WriteAt(p, off)
}

func (g *gateStore) Unmap(off, n int64) error {
	g.pass("unmap", off)
	return g.Store.Unmap(off, n)
}

// TestFormatUnit: SBC-3 5.3 with no parameter list, or a short/long
// parameter list header with no defect list. The medium reads as zeros
// afterwards; while the format runs (IMMED) medium access reports NOT
// READY, FORMAT IN PROGRESS with the progress indication (SPC-4
// 4.5.2.4.3) and REQUEST SENSE returns it as data.
func TestFormatUnit(t *testing.T) {
	g := newGateStore(memStore(t, 1<<20, 512))
	r := newRig(t, rigConfig{store: g})
	fill := func() { r.good(r.do(scsitest.RW16(0x8A, 0, 0, 16), pattern(16*512, 1), 0)) }
	zero := func() { r.data(r.do(scsitest.RW16(0x88, 0, 0, 16), nil, 16*512), make([]byte, 16*512)) }
	for _, tc := range []struct {
		name    string
		cdb, pl []byte
	}{
		{"no data", hx("04 00 00 00 00 00"), nil},
		{"short header", hx("04 10 00 00 00 00"), hx("00 00 00 00")},
		{"short header FOV", hx("04 10 00 00 00 00"), hx("00 80 00 00")},
		{"long header", hx("04 30 00 00 00 00"), hx("00 00 00 00 00 00 00 00")},
		{"CMPLST", hx("04 18 00 00 00 00"), hx("00 00 00 00")},
	} {
		fill()
		r.good(r.do(tc.cdb, tc.pl, 0))
		zero()
	}
	r.runBoth([]row{
		{name: "protection field usage", cdb: hx("04 10 00 00 00 00"), out: hx("01 00 00 00"), err: se(5, 0x2600, "8A 00 00")},
		// DPRY/DCRT/STPF/IP with FOV 0 (SBC-3 5.3.2.2).
		{name: "STPF without FOV", cdb: hx("04 10 00 00 00 00"), out: hx("00 10 00 00"), err: se(5, 0x2600, "8C 00 01")},
		{name: "IP", cdb: hx("04 10 00 00 00 00"), out: hx("00 88 00 00"), err: se(5, 0x2600, "8B 00 01")},
		{name: "defect list", cdb: hx("04 10 00 00 00 00"), out: hx("00 00 00 08"), err: se(5, 0x2600, "80 00 02")},
		// LONGLIST: the DEFECT LIST LENGTH is bytes 4-7 of the header.
		{name: "long defect list", cdb: hx("04 30 00 00 00 00"), out: hx("00 00 00 00 00 00 00 08"), err: se(5, 0x2600, "80 00 04")},
		{name: "long header short", cdb: hx("04 30 00 00 00 00"), out: hx("00 00 00 00"), err: se(5, 0x1A00, "")},
		{name: "long P_I_INFORMATION", cdb: hx("04 30 00 00 00 00"), out: hx("00 00 00 10 00 00 00 00"), err: se(5, 0x2600, "8C 00 03")},
		{name: "short header short", cdb: hx("04 10 00 00 00 00"), out: hx("00 00"), err: se(5, 0x1A00, "")},
		{name: "FMTPINFO", cdb: hx("04 40 00 00 00 00"), err: se(5, 0x2400, "CE 00 01")},
	})

	// IMMED: GOOD at once, then NOT READY, FORMAT IN PROGRESS until done.
	fill()
	release := g.hold("unmap", 0)
	defer release()
	r.good(r.do(hx("04 10 00 00 00 00"), hx("00 02 00 00"), 0))
	g.waitEnter(t, "unmap 0")
	r.both(func() {
		r.expect(r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 2, asc: 0x0404, sks: "80 00 00"})
		r.expect(r.do(scsitest.RW16(0x88, 0, 0, 1), nil, 512), sense{key: 2, asc: 0x0404, sks: "80 00 00"})
		r.expect(r.do(hx("04 00 00 00 00 00"), nil, 0), sense{key: 2, asc: 0x0404, sks: "80 00 00"})
	})
	r.data(r.do(scsitest.RequestSense(false, 252), nil, 252), hx("70 00 02 00 00 00 00 0A 00 00 00 00 04 04 00 80 00 00"))
	r.data(r.do(scsitest.RequestSense(true, 252), nil, 252), hx("72 02 04 04 00 00 00 08 02 06 00 00 80 00 00 00"))
	r.data(r.do(scsitest.Inquiry(false, 0, 96), nil, 96), stdInquiry)
	release()
	r.waitReady()
	zero()
}

// waitReady polls TEST UNIT READY until the unit is ready again.
func (r *rig) waitReady() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := r.do(scsitest.TestUnitReady(), nil, 0)
		if resp.Status == scsi.StatusGood {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("unit not ready: %v", resp.Err())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStartStopUnit: SBC-3 5.20. START 0 stops the unit (flushing first
// unless NO_FLUSH); medium access then reports NOT READY, LOGICAL UNIT
// NOT READY, INITIALIZING COMMAND REQUIRED (SBC-3 4.19) until START 1.
func TestStartStopUnit(t *testing.T) {
	rec := &recStore{Store: memStore(t, 1<<20, 512), volatile: true}
	r := newRig(t, rigConfig{store: rec})
	rec.take()
	r.good(r.do(scsitest.StartStop(false, 0x00), nil, 0))
	if got := fmt.Sprint(rec.take()); got != "[Flush]" {
		t.Fatalf("stop: store calls %s, want [Flush]", got)
	}
	notReady := se(2, 0x0402, "")
	r.runBoth([]row{
		{name: "TEST UNIT READY", cdb: scsitest.TestUnitReady(), err: notReady},
		{name: "READ", cdb: scsitest.RW16(0x88, 0, 0, 1), inLen: 512, err: notReady},
		{name: "WRITE", cdb: scsitest.RW10(0x2A, 0, 0, 1), out: make([]byte, 512), err: notReady},
		{name: "READ CAPACITY", cdb: scsitest.ReadCapacity10(), inLen: 8, err: notReady},
		{name: "SYNCHRONIZE CACHE", cdb: scsitest.RW10(0x35, 0, 0, 0), err: notReady},
		{name: "INQUIRY", cdb: scsitest.Inquiry(false, 0, 96), inLen: 96, want: stdInquiry},
		{name: "MODE SENSE", cdb: scsitest.ModeSense6(true, 0, 0x1C, 0, 255), inLen: 255, want: cat("0F 00 10 00", iecCur)},
		// Stopping again is harmless.
		{name: "stop again", cdb: scsitest.StartStop(true, 0x04), want: nil},
	})
	r.good(r.do(scsitest.StartStop(false, 0x01), nil, 0))
	r.good(r.do(scsitest.TestUnitReady(), nil, 0))
	// NO_FLUSH: no flush.
	rec.take()
	r.good(r.do(scsitest.StartStop(true, 0x04), nil, 0))
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("NO_FLUSH stop: store calls %q", got)
	}
	r.good(r.do(hx("1B 00 00 01 01 00"), nil, 0)) // POWER CONDITION MODIFIER with START
	r.good(r.do(scsitest.TestUnitReady(), nil, 0))
	r.runBoth([]row{
		// POWER CONDITION other than 0h and LOEJ on a fixed disk are refused.
		{name: "power condition", cdb: scsitest.StartStop(false, 0x10), err: se(5, 0x2400, "CF 00 04")},
		{name: "LOEJ", cdb: scsitest.StartStop(false, 0x02), err: se(5, 0x2400, "C9 00 04")},
		{name: "LOEJ START", cdb: scsitest.StartStop(false, 0x03), err: se(5, 0x2400, "C9 00 04")},
		{name: "reserved byte 1", cdb: hx("1B 02 00 00 01 00"), err: se(5, 0x2400, "C9 00 01")},
	})
	r.good(r.do(scsitest.TestUnitReady(), nil, 0))
}

// TestDisk4096 repeats what depends on the logical block size with
// 4096-byte blocks: the Block Limits granularities (SBC-3 6.5.3), the
// block descriptor, and offsets and LBAs in sense data.
func TestDisk4096(t *testing.T) {
	const bs = 4096
	r := newRig(t, rigConfig{bs: bs})
	r.run([]row{
		{name: "VPD B0h", cdb: scsitest.Inquiry(true, 0xB0, 64), inLen: 64, want: cat("00 B0 00 3C",
			"01 40 00 01", "00 00 08 00", "00 00 00 00", "00 00 00 00",
			"00 40 00 00", "00 00 01 00", "00 00 00 01", "00 00 00 00",
			"00 00 00 00 00 40 00 00", zeros(20))},
		{name: "RC16", cdb: scsitest.ReadCapacity16(32), inLen: 32, want: cat("00 00 00 00 00 00 00 FF 00 00 10 00 00 00 C0 00", zeros(16))},
		{name: "MODE SENSE(6) block descriptor", cdb: scsitest.ModeSense6(false, 0, 0x0A, 0, 255), inLen: 255,
			want: cat("17 00 10 08 00 00 01 00 00 00 10 00", controlCur)},
	})
	a := pattern(2*bs, 61)
	r.good(r.do(scsitest.RW16(0x8A, 0, 10, 2), a, 0))
	r.good(r.do(scsitest.WriteSame16(0, 20, 3), a[:bs], 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 20, 3), nil, 3*bs), bytes.Repeat(a[:bs], 3))
	bad := append([]byte(nil), a...)
	bad[bs+100] ^= 1
	badBlk := append([]byte(nil), a[:bs]...)
	badBlk[100] ^= 1
	r.both(func() {
		r.expect(r.do(scsitest.CompareAndWrite(0, 10, 2), cat(bad, a), 0), withInfo(sense{key: 0xE, asc: 0x1D00}, bs+100))
		r.expect(r.do(scsitest.RW16(0x8F, 0x02, 10, 2), bad, 0), withInfo(sense{key: 0xE, asc: 0x1D00}, bs+100))
		r.expect(r.do(scsitest.RW16(0x8F, 0x06, 20, 3), badBlk, 0), withInfo(sense{key: 0xE, asc: 0x1D00}, 100))
		r.expect(r.do(scsitest.RW16(0x8A, 0, 255, 2), a, 0), sense{key: 5, asc: 0x2100})
		// A data-out of 512-byte blocks does not fit 4096-byte blocks.
		r.expect(r.do(scsitest.RW16(0x8A, 0, 0, 1), a[:512], 0), sense{key: 5, asc: 0x0E03})
	})
	cdb, p := scsitest.Unmap([2]uint64{10, 1})
	r.good(r.do(cdb, p, 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 10, 2), nil, 2*bs), cat(zeros(bs), a[bs:]))
	r.good(r.do(scsitest.CompareAndWrite(0, 10, 2), cat(zeros(bs), a[bs:], a), 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 10, 2), nil, 2*bs), a)
}
