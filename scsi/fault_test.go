package scsi_test

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

func fileStore(t testing.TB, size int64, bs uint32) backstore.Store {
	t.Helper()
	s, err := backstore.Open(backstore.Spec{Kind: backstore.KindFile, Path: filepath.Join(t.TempDir(), "lu.img"), Size: size, BlockSize: bs, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMediumErrors injects EIO with backstore.Faulty under a disk on a
// memory and on a file store. A failed read is MEDIUM ERROR, UNRECOVERED
// READ ERROR (11h/00h), a failed write, flush or deallocation MEDIUM
// ERROR, WRITE ERROR (0Ch/00h) (SPC-4 table 50), with VALID and the LBA
// of the first block that was not transferred in INFORMATION. The LU keeps
// serving, and data acknowledged before the faults reads back intact.
func TestMediumErrors(t *testing.T) {
	for _, kind := range []string{"memory", "file"} {
		t.Run(kind, func(t *testing.T) {
			var inner backstore.Store
			if kind == "memory" {
				inner = memStore(t, 1<<20, 512)
			} else {
				inner = fileStore(t, 1<<20, 512)
			}
			f := backstore.NewFaulty(inner)
			r := newRig(t, rigConfig{store: f})
			model := pattern(128*512, 41)
			r.good(r.do(scsitest.RW16(0x8A, 0, 0, 128), model, 0))
			blk := func(lba int) []byte { return model[lba*512 : (lba+1)*512] }
			rd := func(lba uint64) sense { return withInfo(sense{key: 3, asc: 0x1100}, lba) }
			wr := func(lba uint64) sense { return withInfo(sense{key: 3, asc: 0x0C00}, lba) }

			// Reads. A whole failure moved nothing: the first LBA of the
			// command; a short one stops at the failing block.
			f.Add(backstore.Fault{Name: "read", Op: backstore.FaultRead, Off: 40 * 512, Len: 512})
			r.both(func() {
				r.expect(r.do(scsitest.RW16(0x88, 0, 38, 4), nil, 2048), rd(38))
				r.expect(r.do(scsitest.RW10(0x28, 0, 40, 1), nil, 512), rd(40))
			})
			f.Add(backstore.Fault{Name: "read", Op: backstore.FaultRead, Off: 40 * 512, Len: 512, Short: true})
			r.both(func() {
				r.expect(r.do(scsitest.RW16(0x88, 0, 38, 4), nil, 2048), rd(40))
				r.expect(r.do(scsitest.RW16(0x8F, 0, 32, 16), nil, 0), rd(40))
				r.expect(r.do(scsitest.RW16(0x8F, 0x02, 36, 8), model[36*512:44*512], 0), rd(40))
				r.expect(r.do(scsitest.CompareAndWrite(0, 40, 1), cat(blk(40), blk(40)), 0), rd(40))
				// Self-test reads the first and last blocks: fine here.
				r.good(r.do(hx("1D 04 00 00 00 00"), nil, 0))
			})
			// The LU keeps serving around the bad block.
			r.data(r.do(scsitest.RW16(0x88, 0, 0, 40), nil, 40*512), model[:40*512])
			r.data(r.do(scsitest.RW16(0x88, 0, 41, 87), nil, 87*512), model[41*512:])
			if f.Hits("read") == 0 {
				t.Fatal("the read fault never tripped")
			}
			f.Remove("read")
			r.data(r.do(scsitest.RW16(0x88, 0, 0, 128), nil, 128*512), model)

			// Self-test failure: HARDWARE ERROR, LOGICAL UNIT FAILED
			// SELF-TEST (SPC-4 6.42).
			f.Add(backstore.Fault{Name: "read0", Op: backstore.FaultRead, Off: 0, Len: 512})
			r.both(func() { r.expect(r.do(hx("1D 04 00 00 00 00"), nil, 0), sense{key: 4, asc: 0x3E03}) })
			f.Remove("read0")

			// Writes: blocks before the failing one may have been written
			// by a short write; the failing block and those after keep the
			// acknowledged data.
			f.Add(backstore.Fault{Name: "write", Op: backstore.FaultWrite, Off: 50 * 512, Len: 512, Short: true})
			newData := pattern(4*512, 42)
			r.both(func() {
				r.expect(r.do(scsitest.RW16(0x8A, 0, 48, 4), newData, 0), wr(50))
				r.expect(r.do(scsitest.RW16(0x8A, 0x08, 48, 4), newData, 0), wr(50))
				r.expect(r.do(scsitest.RW16(0x8E, 0, 50, 1), newData[:512], 0), wr(50))
				r.expect(r.do(scsitest.WriteSame16(0, 48, 4), newData[:512], 0), wr(50))
				r.expect(r.do(scsitest.CompareAndWrite(0, 50, 1), cat(blk(50), newData[:512]), 0), wr(50))
			})
			// The short parts: WRITE SAME came last and wrote its block to
			// 48 and 49 before failing at 50.
			copy(model[48*512:], newData[:512])
			copy(model[49*512:], newData[:512])
			f.Add(backstore.Fault{Name: "write", Op: backstore.FaultWrite, Off: 50 * 512, Len: 512})
			r.expect(r.do(scsitest.RW16(0x8A, 0, 49, 2), newData[:1024], 0), wr(49))
			f.Remove("write")

			// Flush, deallocation, write zeroes.
			f.Add(backstore.Fault{Name: "flush", Op: backstore.FaultFlush})
			r.both(func() { r.expect(r.do(scsitest.RW16(0x91, 0, 7, 1), nil, 0), wr(7)) })
			f.Remove("flush")
			f.Add(backstore.Fault{Name: "unmap", Op: backstore.FaultUnmap | backstore.FaultWriteZeroes})
			unmapCDB, unmapP := scsitest.Unmap([2]uint64{60, 2})
			r.both(func() {
				r.expect(r.do(unmapCDB, unmapP, 0), wr(60))
				r.expect(r.do(scsitest.WriteSame16(0, 60, 2), make([]byte, 512), 0), wr(60))
				r.expect(r.do(scsitest.WriteSame16(0x08, 60, 2), make([]byte, 512), 0), wr(60))
			})
			f.Remove("unmap")

			// Everything acknowledged reads back.
			r.data(r.do(scsitest.RW16(0x88, 0, 0, 128), nil, 128*512), model)
			r.good(r.do(scsitest.TestUnitReady(), nil, 0))
		})
	}
}

// TestMediumErrorHighLBA: an LBA that does not fit the 4-byte INFORMATION
// field of fixed sense data leaves VALID 0 (SPC-4 4.5.3); descriptor
// format carries all 8 bytes.
func TestMediumErrorHighLBA(t *testing.T) {
	s, err := openNull((1<<32 + 16) * 512)
	if err != nil {
		t.Fatal(err)
	}
	f := backstore.NewFaulty(s)
	r := newRig(t, rigConfig{store: f})
	f.Add(backstore.Fault{Name: "read", Op: backstore.FaultRead})
	r.both(func() {
		r.expect(r.do(scsitest.RW16(0x88, 0, 1<<32+1, 1), nil, 512), withInfo(sense{key: 3, asc: 0x1100}, 1<<32+1))
	})
	f.Clear()
	r.data(r.do(scsitest.RW16(0x88, 0, 1<<32+1, 1), nil, 512), make([]byte, 512))
}

// TestSpaceAllocationFailed: a thin LU whose store runs out of space
// fails writes with DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT
// (SBC-3 4.7.3.6); what was written before still reads back, and freeing
// space with UNMAP lets writes succeed again.
func TestSpaceAllocationFailed(t *testing.T) {
	s, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 1 << 20, MaxAllocated: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigConfig{store: s})
	a := pattern(8*512, 51)
	r.good(r.do(scsitest.RW16(0x8A, 0, 0, 8), a, 0)) // the one 64 KiB chunk the cap allows
	full := sense{key: 7, asc: 0x2707}
	r.both(func() {
		r.expect(r.do(scsitest.RW16(0x8A, 0, 1000, 1), a[:512], 0), full)
		r.expect(r.do(scsitest.RW16(0x8A, 0x08, 100, 60), pattern(60*512, 1), 0), full) // crosses into a new chunk
		r.expect(r.do(scsitest.WriteSame16(0, 500, 4), a[:512], 0), full)
		r.expect(r.do(scsitest.CompareAndWrite(0, 300, 1), cat(zeros(512), a[:512]), 0), full)
	})
	r.data(r.do(scsitest.RW16(0x88, 0, 0, 8), nil, 8*512), a)
	r.data(r.do(scsitest.RW16(0x88, 0, 1000, 1), nil, 512), make([]byte, 512))
	r.good(r.do(scsitest.RW16(0x8A, 0, 8, 1), a[:512], 0)) // inside the allocated chunk
	cdb, p := scsitest.Unmap([2]uint64{0, 128})
	r.good(r.do(cdb, p, 0))
	r.good(r.do(scsitest.RW16(0x8A, 0, 1000, 1), a[:512], 0))
	r.data(r.do(scsitest.RW16(0x88, 0, 1000, 1), nil, 512), a[:512])

	// An ENOSPC from any store (here injected under a file) is the same.
	f := backstore.NewFaulty(fileStore(t, 1<<20, 512))
	r2 := newRig(t, rigConfig{store: f})
	r2.good(r2.do(scsitest.RW16(0x8A, 0, 0, 8), a, 0))
	f.Add(backstore.Fault{Name: "full", Op: backstore.FaultWrite, Err: syscall.ENOSPC})
	r2.both(func() { r2.expect(r2.do(scsitest.RW16(0x8A, 0, 8, 1), a[:512], 0), full) })
	f.Clear()
	r2.data(r2.do(scsitest.RW16(0x88, 0, 0, 8), nil, 8*512), a)
	if got := r2.image(0, 8); !bytes.Equal(got, a) {
		t.Fatal("store image differs from acknowledged data")
	}
}
