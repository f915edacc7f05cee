package scsi_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/: one CDB per command the
// disk implements and the interesting parameter lists; `go test` runs
// them as regression tests, `go test -fuzz` starts from them.

// fuzzTarget is a fresh target for one fuzz input: a 1 MiB memory disk at
// LUN 0, nothing at LUN 1.
func fuzzTarget(t *testing.T) *rig {
	return newRig(t, rigConfig{save: func([][]byte) error { return nil }})
}

var fuzzAttrs = [4]scsi.TaskAttr{scsi.Simple, scsi.HeadOfQueue, scsi.Ordered, scsi.ACA}

// checkOutcome holds the invariants every command keeps, whatever its
// CDB, data-out and data-in buffer: status GOOD or RESERVATION CONFLICT
// (no sense) or CHECK CONDITION (sense that parses, a sense key other than
// NO SENSE), data-in within the buffer.
func checkOutcome(t *testing.T, c *scsi.Command) {
	t.Helper()
	if c.Aborted() {
		t.Fatalf("CDB % x: aborted with no TMF", c.CDB)
	}
	if c.InLen < 0 || c.InLen > len(c.DataIn) || c.InWant < 0 || c.OutWant < 0 {
		t.Fatalf("CDB % x: InLen %d InWant %d OutWant %d with %d-byte data-in", c.CDB, c.InLen, c.InWant, c.OutWant, len(c.DataIn))
	}
	switch c.Status {
	case scsi.StatusGood:
		if c.SenseLen != 0 {
			t.Fatalf("CDB % x: GOOD with sense % x", c.CDB, c.SenseData())
		}
	case scsi.StatusReservationConflict:
		// A PERSISTENT RESERVE OUT or RESERVE that conflicts (SPC-4
		// 5.12): no sense data.
		if c.SenseLen != 0 {
			t.Fatalf("CDB % x: RESERVATION CONFLICT with sense % x", c.CDB, c.SenseData())
		}
	case scsi.StatusCheckCondition:
		e, err := scsi.ParseSense(c.SenseData())
		if err != nil {
			t.Fatalf("CDB % x: sense % x does not parse: %v", c.CDB, c.SenseData(), err)
		}
		if e.Key == scsi.NoSense {
			t.Fatalf("CDB % x: CHECK CONDITION with NO SENSE", c.CDB)
		}
	default:
		t.Fatalf("CDB % x: status %#x", c.CDB, c.Status)
	}
}

// recover brings the LU back to a state where it must serve a READ: the
// format that IMMED left running has finished, the unit is started, unit
// attentions are taken.
func (r *rig) recover() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		resp := r.do(scsitest.TestUnitReady(), nil, 0)
		if resp.Status == scsi.StatusGood {
			return
		}
		e := resp.SenseError()
		switch {
		case e == nil:
			r.t.Fatalf("TEST UNIT READY: status %#x", resp.Status)
		case e.Key == scsi.NotReady && e.ASC == scsi.ASCNotReadyFormatInProgress:
			if time.Now().After(deadline) {
				r.t.Fatal("FORMAT UNIT never finished")
			}
			time.Sleep(100 * time.Microsecond)
		case e.Key == scsi.NotReady && e.ASC == scsi.ASCNotReadyInitCmdRequired:
			r.good(r.do(scsitest.StartStop(false, 1), nil, 0))
		case e.Key == scsi.UnitAttention && i < 32:
		default:
			r.t.Fatalf("TEST UNIT READY: %v", resp.Err())
		}
	}
}

func (r *rig) mustRead() {
	r.t.Helper()
	r.recover()
	resp := r.do(scsitest.RW16(0x88, 0, 0, 1), nil, 512)
	if resp.Status != scsi.StatusGood || len(resp.Data) != 512 {
		r.t.Fatalf("READ after the fuzzed command: %v, %d bytes", resp.Err(), len(resp.Data))
	}
}

// FuzzCDB executes an arbitrary CDB with arbitrary data-out and an
// arbitrary data-in buffer, on the disk (LUN 0), on a LUN with no LU, or
// on the REPORT LUNS well-known LU, with any task attribute and either
// sense format; then the disk must still serve a READ.
func FuzzCDB(f *testing.F) {
	f.Add([]byte{0x12, 0, 0, 0, 96, 0}, []byte(nil), uint16(96), byte(0))
	f.Fuzz(func(t *testing.T, cdb, out []byte, inLen uint16, sel byte) {
		r := fuzzTarget(t)
		if sel&0x04 != 0 {
			r.setDSense(true)
		}
		lun := [4]uint64{scsi.EncodeLUN(0), scsi.EncodeLUN(1), 0xC101 << 48, scsi.EncodeLUN(0)}[sel&3]
		c := &scsi.Command{CDB: cdb, LUN: lun, Tag: 7, Attr: fuzzAttrs[(sel>>3)&3], DataOut: out}
		if inLen > 0 {
			c.DataIn = make([]byte, inLen)
		}
		r.n.Execute(c)
		checkOutcome(t, c)
		if sel&0x20 != 0 {
			// The same command again on the reused Command.
			in := c.DataIn
			c.Reset()
			c.CDB, c.LUN, c.Tag, c.DataOut, c.DataIn = cdb, lun, 8, out, in
			r.n.Execute(c)
			checkOutcome(t, c)
		}
		r.mustRead()
	})
}

// modePages returns MODE SENSE(10) data for all pages under pc, DBD set.
func (r *rig) modePages(pc byte) []byte {
	r.t.Helper()
	resp := r.do(scsitest.ModeSense10(false, true, pc, 0x3F, 0, 1024), nil, 1024)
	r.good(resp)
	return resp.Data[8:]
}

// FuzzModeSelect sends an arbitrary MODE SELECT(6/10) parameter list.
// A failed MODE SELECT changes nothing (SPC-4 6.9: the command is
// terminated); a good one leaves every non-changeable bit at its default
// value (SPC-4 6.11.1 changeable values); with SP the saved values equal
// the current ones (SPC-4 6.9).
func FuzzModeSelect(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0x0A, 0x04, 0x10, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0}, true, false)
	f.Fuzz(func(t *testing.T, param []byte, ten, sp bool) {
		r := fuzzTarget(t)
		before := r.modePages(0)
		def, mask := r.modePages(2), r.modePages(1)
		var cdb []byte
		if ten {
			if len(param) > 0xFFFF {
				param = param[:0xFFFF]
			}
			cdb = scsitest.ModeSelect10(sp, uint16(len(param)))
		} else {
			if len(param) > 0xFF {
				param = param[:0xFF]
			}
			cdb = scsitest.ModeSelect6(sp, byte(len(param)))
		}
		c := &scsi.Command{CDB: cdb, LUN: r.lun, Tag: 1, DataOut: param}
		r.n.Execute(c)
		checkOutcome(t, c)
		after := r.modePages(0)
		if c.Status != scsi.StatusGood {
			e, _ := scsi.ParseSense(c.SenseData())
			if e.Key != scsi.IllegalRequest || (e.ASC != scsi.ASCInvalidFieldInParamList && e.ASC != scsi.ASCParamListLength) {
				t.Fatalf("MODE SELECT % x: %v", param, e)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("failed MODE SELECT % x changed the pages\nbefore % x\nafter  % x", param, before, after)
			}
		} else {
			for i := range after {
				if (after[i]^def[i])&^mask[i] != 0 && !pageHeader(after, i) {
					t.Fatalf("MODE SELECT % x changed a non-changeable bit at %d: % x", param, i, after)
				}
			}
			if sp {
				saved := r.modePages(3)
				if !bytes.Equal(saved, after) {
					t.Fatalf("SP: saved % x, current % x", saved, after)
				}
			}
		}
		r.mustRead()
	})
}

// pageHeader reports whether byte i of a page list is a page code or
// page length byte.
func pageHeader(pages []byte, i int) bool {
	for off := 0; off+1 < len(pages); off += 2 + int(pages[off+1]) {
		if i == off || i == off+1 {
			return true
		}
	}
	return false
}

// FuzzUnmap sends an arbitrary UNMAP parameter list and PARAMETER LIST
// LENGTH. A refused UNMAP deallocates nothing (SBC-3 5.25: every
// descriptor is checked first); a good one zeroes exactly the blocks the
// descriptors name (LBPRZ) and leaves every other block as it was.
func FuzzUnmap(f *testing.F) {
	cdb, p := scsitest.Unmap([2]uint64{1, 2})
	f.Add(p, binary.BigEndian.Uint16(cdb[7:]))
	f.Fuzz(func(t *testing.T, param []byte, plen uint16) {
		// 128 blocks: small enough to compare whole each time.
		const nblk = 128
		r := newRig(t, rigConfig{size: nblk * 512})
		img := pattern(nblk*512, 77)
		r.good(r.do(scsitest.RW16(0x8A, 0, 0, nblk), img, 0))
		cdb := hx("42 00 00 00 00 00 00 00 00 00")
		binary.BigEndian.PutUint16(cdb[7:], plen)
		c := &scsi.Command{CDB: cdb, LUN: r.lun, Tag: 1, DataOut: param}
		r.n.Execute(c)
		checkOutcome(t, c)
		got := r.image(0, nblk)
		if c.Status != scsi.StatusGood {
			e, _ := scsi.ParseSense(c.SenseData())
			switch {
			case e.Key == scsi.IllegalRequest && (e.ASC == scsi.ASCInvalidFieldInParamList || e.ASC == scsi.ASCParamListLength || e.ASC == scsi.ASCLBAOutOfRange):
			default:
				t.Fatalf("UNMAP % x: %v", param, e)
			}
			if !bytes.Equal(got, img) {
				t.Fatalf("refused UNMAP % x changed the medium", param)
			}
			r.mustRead()
			return
		}
		want := append([]byte(nil), img...)
		if plen >= 8 && int(plen) <= len(param) {
			p := param[:plen]
			bdl := int(binary.BigEndian.Uint16(p[2:4]))
			for i := 0; i < bdl/16; i++ {
				d := p[8+16*i:]
				lba, n := binary.BigEndian.Uint64(d), uint64(binary.BigEndian.Uint32(d[8:]))
				clear(want[lba*512 : (lba+n)*512])
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("UNMAP % x (length %d): medium differs from the descriptors: %s", param, plen, diff(got, want))
		}
		r.mustRead()
	})
}

// FuzzFormatUnit sends FORMAT UNIT with an arbitrary CDB byte 1 and
// parameter list. A refused FORMAT UNIT leaves the data; a good one
// (IMMED or not) leaves the medium reading zeros.
func FuzzFormatUnit(f *testing.F) {
	f.Add(byte(0x10), []byte{0, 0x02, 0, 0})
	f.Fuzz(func(t *testing.T, b1 byte, param []byte) {
		r := fuzzTarget(t)
		img := pattern(16*512, 5)
		r.good(r.do(scsitest.RW16(0x8A, 0, 0, 16), img, 0))
		c := &scsi.Command{CDB: []byte{0x04, b1, 0, 0, 0, 0}, LUN: r.lun, Tag: 1, DataOut: param}
		r.n.Execute(c)
		checkOutcome(t, c)
		r.recover()
		got := r.image(0, 16)
		if c.Status != scsi.StatusGood {
			e, _ := scsi.ParseSense(c.SenseData())
			switch {
			case e.Key == scsi.IllegalRequest && (e.ASC == scsi.ASCInvalidFieldInCDB || e.ASC == scsi.ASCInvalidFieldInParamList || e.ASC == scsi.ASCParamListLength):
			default:
				t.Fatalf("FORMAT UNIT %02x % x: %v", b1, param, e)
			}
			if !bytes.Equal(got, img) {
				t.Fatalf("refused FORMAT UNIT %02x % x changed the medium", b1, param)
			}
		} else if !bytes.Equal(got, make([]byte, len(got))) {
			t.Fatalf("FORMAT UNIT %02x % x left data behind", b1, param)
		}
		r.mustRead()
	})
}

// FuzzParseSense decodes arbitrary bytes as sense data. It must never
// panic; what it accepts must re-encode, in both formats, to sense data
// that decodes to the same fields; and no strict prefix shorter than the
// format's fixed part or the descriptor list's stated length is accepted.
func FuzzParseSense(f *testing.F) {
	f.Add(hx("70 00 05 00 00 00 00 0A 00 00 00 00 24 00 00 C0 00 02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := scsi.ParseSense(b)
		if err != nil {
			return
		}
		if e.Key > 0xF || e.Flags&^0xE0 != 0 {
			t.Fatalf("% x: key %#x flags %#x", b, e.Key, e.Flags)
		}
		_ = e.Error()
		var buf [scsi.MaxSense]byte
		for _, desc := range []bool{false, true} {
			var n int
			if desc {
				n = e.DescriptorSense(buf[:])
			} else {
				n = e.FixedSense(buf[:])
			}
			g, err := scsi.ParseSense(buf[:n])
			if err != nil {
				t.Fatalf("% x re-encoded (desc=%v) as % x: %v", b, desc, buf[:n], err)
			}
			infoKept := e.InfoValid && (desc || e.Info <= 0xFFFFFFFF)
			sksKept := !desc || e.SKS[0]&0x80 != 0
			wantSKS := e.SKS
			if !sksKept {
				wantSKS = [3]byte{}
			}
			if g.Key != e.Key || g.ASC != e.ASC || g.Flags != e.Flags || g.InfoValid != infoKept ||
				(infoKept && g.Info != e.Info) || g.SKS != wantSKS {
				t.Fatalf("% x (desc=%v): decoded %+v, re-encoded % x, decoded again %+v", b, desc, *e, buf[:n], *g)
			}
		}
		min := 14
		if b[0]&0x7F >= 0x72 {
			min = 8 + int(b[7])
		}
		for k := 0; k < min && k < len(b); k++ {
			if _, err := scsi.ParseSense(b[:k]); err == nil {
				t.Fatalf("% x: prefix of %d bytes accepted", b, k)
			}
		}
	})
}
