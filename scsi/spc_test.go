package scsi_test

import (
	"encoding/binary"
	"testing"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// Standard INQUIRY data of the test disk (SPC-4 6.6.2, table 140):
// peripheral device type 00h, VERSION 06h (SPC-4), HISUP and RESPONSE DATA
// FORMAT 2, ADDITIONAL LENGTH 91 (96 bytes), CMDQUE, the identification
// strings, then the version descriptors SAM-5 (00A0h), SRP (0940h), SPC-4
// (0460h) and SBC-3 (04C0h).
var stdInquiry = cat("00 00 06 12 5B 00 00 02", ascii("SRPTGT  "), ascii("VIRTUAL-DISK    "), ascii("0001"),
	zeros(22), "00 A0 09 40 04 60 04 C0", zeros(30))

func TestInquiry(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		{name: "standard", cdb: scsitest.Inquiry(false, 0, 96), inLen: 96, want: stdInquiry},
		// SPC-4 4.2.5.6: the allocation length truncates, not an error.
		{name: "standard alloc 36", cdb: scsitest.Inquiry(false, 0, 36), inLen: 255, want: stdInquiry[:36]},
		{name: "standard alloc 255", cdb: scsitest.Inquiry(false, 0, 255), inLen: 255, want: stdInquiry},
		// SPC-4 7.8.13: Supported VPD Pages, ascending order.
		{name: "VPD 00h", cdb: scsitest.Inquiry(true, 0x00, 255), inLen: 255, want: hx("00 00 00 07 00 80 83 86 B0 B1 B2")},
		// SPC-4 7.8.15: Unit Serial Number, the configured serial (the LU name).
		{name: "VPD 80h", cdb: scsitest.Inquiry(true, 0x80, 255), inLen: 255, want: cat("00 80 00 02", ascii("d0"))},
		// SPC-4 7.8.6: NAA 6 (binary, LU), T10 vendor ID (ASCII, LU),
		// relative target port (SRP, PIV, target port association), and
		// the 16-byte EUI-64 based target port name.
		{name: "VPD 83h", cdb: scsitest.Inquiry(true, 0x83, 255), inLen: 255, want: cat("00 83 00 3E",
			"01 03 00 10", testNAA[:],
			"02 01 00 0A", ascii("SRPTGT  d0"),
			"41 94 00 04 00 00 00 01",
			"41 92 00 10", testPort[:])},
		// SPC-4 7.8.7: HEADSUP ORDSUP SIMPSUP, no V_SUP (the memory store
		// has no volatile cache), LUICLR.
		{name: "VPD 86h", cdb: scsitest.Inquiry(true, 0x86, 255), inLen: 255, want: cat("00 86 00 3C 00 07 00 01", zeros(56))},
		// SBC-3 6.5.3: WSNZ, MAXIMUM COMPARE AND WRITE LENGTH 64, OPTIMAL
		// TRANSFER LENGTH GRANULARITY 8 (4 KiB), MAXIMUM TRANSFER LENGTH
		// 16384 (8 MiB), MAXIMUM UNMAP LBA COUNT 4Mi, MAXIMUM UNMAP BLOCK
		// DESCRIPTOR COUNT 256, OPTIMAL UNMAP GRANULARITY 8, MAXIMUM WRITE
		// SAME LENGTH 4Mi.
		{name: "VPD B0h", cdb: scsitest.Inquiry(true, 0xB0, 255), inLen: 255, want: cat("00 B0 00 3C",
			"01 40 00 08", "00 00 40 00", "00 00 00 00", "00 00 00 00",
			"00 40 00 00", "00 00 01 00", "00 00 00 08", "00 00 00 00",
			"00 00 00 00 00 40 00 00", zeros(20))},
		// SBC-3 6.5.2: MEDIUM ROTATION RATE 0001h, non-rotating medium.
		{name: "VPD B1h", cdb: scsitest.Inquiry(true, 0xB1, 255), inLen: 255, want: cat("00 B1 00 3C 00 01", zeros(58))},
		// SBC-3 6.5.4: LBPU LBPWS LBPWS10 LBPRZ, provisioning type 010b
		// (thin).
		{name: "VPD B2h", cdb: scsitest.Inquiry(true, 0xB2, 255), inLen: 255, want: hx("00 B2 00 04 00 E4 02 00")},
		{name: "VPD 83h alloc 8", cdb: scsitest.Inquiry(true, 0x83, 8), inLen: 255, want: cat("00 83 00 3E 01 03 00 10")},
	})
	r.runBoth([]row{
		// SPC-4 6.6.1: PAGE CODE not zero with EVPD zero.
		{name: "page without EVPD", cdb: scsitest.Inquiry(false, 0x80, 96), inLen: 96, err: se(5, 0x2400, "C0 00 02")},
		{name: "unsupported VPD page", cdb: scsitest.Inquiry(true, 0x99, 96), inLen: 96, err: se(5, 0x2400, "C0 00 02")},
		// CMDDT (byte 1 bit 1) is obsolete: a reserved bit set, pointed at
		// with BPV (SPC-4 4.5.2.4.2).
		{name: "CMDDT", cdb: hx("12 02 00 00 60 00"), inLen: 96, err: se(5, 0x2400, "C9 00 01")},
		// NACA in the CONTROL byte: this target does not support ACA.
		{name: "NACA", cdb: hx("12 00 00 00 60 04"), inLen: 96, err: se(5, 0x2400, "CA 00 05")},
	})
}

// TestInquiryMultiPort: MULTIP is set once the target has a second port
// (SPC-4 6.6.2).
func TestInquiryMultiPort(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.tgt.AddPort(other, "port1")
	want := append([]byte(nil), stdInquiry...)
	want[6] = 0x10
	r.data(r.do(scsitest.Inquiry(false, 0, 96), nil, 96), want)
}

func TestResiduals(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.good(r.do(scsitest.RW16(0x8A, 0, 0, 2), pattern(1024, 1), 0))
	for _, tc := range []struct {
		name        string
		cdb, out    []byte
		inLen       int
		inLenWant   int
		inResidual  int // positive: underflow, negative: overflow
		outResidual int
	}{
		// SAM-5 5.4.2 (residuals): the initiator offered less than the
		// command returns: overflow of the difference.
		{name: "READ short buffer", cdb: scsitest.RW16(0x88, 0, 0, 2), inLen: 512, inLenWant: 512, inResidual: -512},
		{name: "READ long buffer", cdb: scsitest.RW16(0x88, 0, 0, 2), inLen: 4096, inLenWant: 1024, inResidual: 3072},
		{name: "READ exact", cdb: scsitest.RW16(0x88, 0, 0, 2), inLen: 1024, inLenWant: 1024},
		// INQUIRY: the allocation length caps what the command returns.
		{name: "INQUIRY alloc below buffer", cdb: scsitest.Inquiry(false, 0, 36), inLen: 96, inLenWant: 36, inResidual: 60},
		{name: "INQUIRY buffer below alloc", cdb: scsitest.Inquiry(false, 0, 96), inLen: 10, inLenWant: 10, inResidual: -86},
		{name: "INQUIRY alloc above data", cdb: scsitest.Inquiry(false, 0, 200), inLen: 200, inLenWant: 96, inResidual: 104},
		{name: "MODE SELECT longer data-out", cdb: scsitest.ModeSelect10(false, 20), out: append(controlPage(false, false), 0, 0, 0, 0), outResidual: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.on(t).good(r.on(t).do(tc.cdb, tc.out, tc.inLen))
			if len(resp.Data) != tc.inLenWant || resp.InResidual != tc.inResidual || resp.OutResidual != tc.outResidual {
				t.Fatalf("got InLen %d in residual %d out residual %d, want %d %d %d",
					len(resp.Data), resp.InResidual, resp.OutResidual, tc.inLenWant, tc.inResidual, tc.outResidual)
			}
		})
	}
	// Command.Residuals directly: a WRITE whose data-out is short is
	// refused whole and reports the data-out underrun it saw.
	c := &scsi.Command{CDB: scsitest.RW16(0x8A, 0, 0, 2), LUN: r.lun, Tag: 77, DataOut: make([]byte, 512)}
	r.n.Execute(c)
	inOver, inUnder, outOver, outUnder := c.Residuals()
	if c.Status != scsi.StatusCheckCondition || inOver != 0 || inUnder != 0 || outOver != 512 || outUnder != 0 {
		t.Fatalf("short WRITE: status %#x residuals %d %d %d %d", c.Status, inOver, inUnder, outOver, outUnder)
	}
}

// Report LUNS data (SPC-4 6.33): LUN LIST LENGTH, 4 reserved bytes, then
// 8-byte LUNs.
func TestReportLUNs(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// SELECT REPORT 00h: the logical units, no well-known LUs.
		{name: "select 0", cdb: scsitest.ReportLUNs(0, 64), inLen: 64, want: hx("00 00 00 08 00 00 00 00  00 00 00 00 00 00 00 00")},
		// 01h: the well-known LUs only (REPORT LUNS W-LUN C101h).
		{name: "select 1", cdb: scsitest.ReportLUNs(1, 64), inLen: 64, want: hx("00 00 00 08 00 00 00 00  C1 01 00 00 00 00 00 00")},
		// 02h: all.
		{name: "select 2", cdb: scsitest.ReportLUNs(2, 64), inLen: 64, want: hx("00 00 00 10 00 00 00 00  00 00 00 00 00 00 00 00  C1 01 00 00 00 00 00 00")},
		// The LUN LIST LENGTH is not truncated with the list.
		{name: "select 2 alloc 16", cdb: scsitest.ReportLUNs(2, 16), inLen: 64, want: hx("00 00 00 10 00 00 00 00  00 00 00 00 00 00 00 00")},
	})
	r.runBoth([]row{
		{name: "select 3", cdb: scsitest.ReportLUNs(3, 64), inLen: 64, err: se(5, 0x2400, "C0 00 02")},
		// SPC-4 6.33: an ALLOCATION LENGTH below 16 is refused (the
		// standard's "may"; this target does).
		{name: "alloc 15", cdb: scsitest.ReportLUNs(0, 15), inLen: 64, err: se(5, 0x2400, "C0 00 06")},
	})
}

// TestNoLUNZero: a target whose LUs sit at LUN 1 and LUN 300, nothing at
// LUN 0 (SPC-4 5.9 / 8.2, SAM-5 4.7.2).
func TestNoLUNZero(t *testing.T) {
	r := newRig(t, rigConfig{lun: 1})
	lu2, err := scsi.NewDisk(scsi.DiskConfig{Name: "d300", LUN: 300, Store: memStore(t, 1<<20, 512)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lu2.Close() })
	if err := r.tgt.AddLU(lu2); err != nil {
		t.Fatal(err)
	}
	r.expect(r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 6, asc: 0x3F0E}) // REPORTED LUNS DATA HAS CHANGED
	lun0 := scsi.EncodeLUN(0)
	wlun := uint64(0xC101) << 48
	at := func(lun uint64, cdb []byte, inLen int) *scsitest.Response {
		return doOn(t, r.ini, lun, cdb, nil, inLen)
	}
	// Peripheral qualifier 011b, device type 1Fh: no LU can be here
	// (SPC-4 6.6.2); 36 bytes of standard data.
	r.data(at(lun0, scsitest.Inquiry(false, 0, 96), 96),
		cat("7F 00 06 12 1F 00 00 02", ascii("SRPTGT  "), ascii("NO LOGICAL UNIT "), ascii("0001")))
	// The REPORT LUNS well-known LU: qualifier 000b, type 1Eh (SPC-4 8.2).
	r.data(at(wlun, scsitest.Inquiry(false, 0, 96), 96),
		cat("1E 00 06 12 1F 00 00 02", ascii("SRPTGT  "), ascii("REPORT LUNS WLUN"), ascii("0001")))
	r.data(at(wlun, scsitest.Inquiry(true, 0, 96), 96), hx("1E 00 00 01 00"))
	// LUN 1 peripheral addressing, LUN 300 (12Ch) flat space addressing
	// (SAM-5 4.7.7.2: 01b in bits 7-6 of byte 0).
	list := hx("00 00 00 10 00 00 00 00  00 01 00 00 00 00 00 00  41 2C 00 00 00 00 00 00")
	// REPORT LUNS works through LUN 0 even with no LU there (SPC-4 6.33)
	// and through the well-known LU.
	r.data(at(lun0, scsitest.ReportLUNs(0, 64), 64), list)
	r.data(at(wlun, scsitest.ReportLUNs(0, 64), 64), list)
	r.data(at(wlun, scsitest.ReportLUNs(2, 64), 64),
		hx("00 00 00 18 00 00 00 00  00 01 00 00 00 00 00 00  41 2C 00 00 00 00 00 00  C1 01 00 00 00 00 00 00"))
	// REQUEST SENSE to a LUN with no LU returns ILLEGAL REQUEST, LOGICAL
	// UNIT NOT SUPPORTED as parameter data with GOOD (SPC-4 6.29.2).
	r.data(at(lun0, scsitest.RequestSense(false, 252), 252), hx("70 00 05 00 00 00 00 0A 00 00 00 00 25 00 00 00 00 00"))
	r.data(at(lun0, scsitest.RequestSense(true, 252), 252), hx("72 05 25 00 00 00 00 00"))
	r.data(at(wlun, scsitest.RequestSense(false, 252), 252), hx("70 00 00 00 00 00 00 0A 00 00 00 00 00 00 00 00 00 00"))
	r.good(at(wlun, scsitest.TestUnitReady(), 0))
	// Every other command: CHECK CONDITION, LOGICAL UNIT NOT SUPPORTED.
	for _, cdb := range [][]byte{scsitest.TestUnitReady(), scsitest.RW10(0x28, 0, 0, 1), scsitest.ReadCapacity10(), hx("25 00 00 00 00 00 00 00 00 00")} {
		expectOn(t, at(lun0, cdb, 512), sense{key: 5, asc: 0x2500}, false)
	}
	expectOn(t, at(scsi.EncodeLUN(7), scsitest.RW16(0x88, 0, 0, 1), 512), sense{key: 5, asc: 0x2500}, false)
	// A LUN of a form this target does not decode.
	expectOn(t, at(0x8000000000000000, scsitest.TestUnitReady(), 0), sense{key: 5, asc: 0x2500}, false)
	expectOn(t, at(lun0, scsitest.ReportLUNs(0, 8), 64), sense{key: 5, asc: 0x2400, sks: "C0 00 06"}, false)
}

func TestRequestSense(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// SPC-4 6.29: no pending condition: NO SENSE.
		{name: "fixed", cdb: scsitest.RequestSense(false, 252), inLen: 252, want: hx("70 00 00 00 00 00 00 0A 00 00 00 00 00 00 00 00 00 00")},
		{name: "descriptor", cdb: scsitest.RequestSense(true, 252), inLen: 252, want: hx("72 00 00 00 00 00 00 00")},
		{name: "alloc 8", cdb: scsitest.RequestSense(false, 8), inLen: 252, want: hx("70 00 00 00 00 00 00 0A")},
	})
	r.runBoth([]row{
		{name: "reserved bit", cdb: hx("03 02 00 00 FC 00"), inLen: 252, err: se(5, 0x2400, "C9 00 01")},
	})
	// A stopped unit reports its state through REQUEST SENSE as data.
	r.good(r.do(scsitest.StartStop(false, 0), nil, 0))
	r.data(r.do(scsitest.RequestSense(false, 252), nil, 252), hx("70 00 02 00 00 00 00 0A 00 00 00 00 04 02 00 00 00 00"))
	r.good(r.do(scsitest.StartStop(false, 1), nil, 0))
}

// TestUnitAttentions checks the delivery rules of SAM-5 5.14 and SPC-4
// 5.14 (UA_INTLCK_CTRL 00b).
func TestUnitAttentions(t *testing.T) {
	r := newRig(t, rigConfig{keepUA: true})
	tur := scsitest.TestUnitReady()
	// INQUIRY neither reports nor clears a unit attention.
	r.data(r.do(scsitest.Inquiry(false, 0, 96), nil, 96), stdInquiry)
	// REPORT LUNS does not report one and clears only REPORTED LUNS DATA
	// HAS CHANGED.
	r.good(r.do(scsitest.ReportLUNs(0, 64), nil, 64))
	// REQUEST SENSE returns it as parameter data and clears it.
	r.data(r.do(scsitest.RequestSense(false, 252), nil, 252), sense{key: 6, asc: 0x2900}.fixed())
	r.good(r.do(tur, nil, 0))

	// A new nexus: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED; the
	// same nexus after a loss: I_T NEXUS LOSS OCCURRED (SAM-5 6.3.4).
	n2, d2 := r.attach(other)
	r.tgt.Detach(n2)
	n2, err := r.tgt.Attach(scsi.NexusID{Initiator: other, Target: testPort}, r.port)
	if err != nil {
		t.Fatal(err)
	}
	d2 = scsitest.NewDirect(n2)
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2907}, false)
	r.good(doOn(t, d2, r.lun, tur, nil, 0))

	// MODE SELECT that changes a parameter: MODE PARAMETERS CHANGED on
	// every other I_T nexus (SPC-4 7.5.2), none on the one that sent it.
	r.modeSelect(controlPage(true, false))
	r.good(r.do(tur, nil, 0))
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2A01}, true)
	r.good(doOn(t, d2, r.lun, tur, nil, 0))
	// The same values again change nothing: no unit attention.
	r.modeSelect(controlPage(true, false))
	r.good(doOn(t, d2, r.lun, tur, nil, 0))
	r.modeSelect(controlPage(false, false))
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2A01}, false)

	// A unit attention is delivered in the format D_SENSE selects.
	r.setDSense(true)
	lu2, err := scsi.NewDisk(scsi.DiskConfig{Name: "d1", LUN: 1, Store: memStore(t, 1<<20, 512)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lu2.Close() })
	// AddLU: REPORTED LUNS DATA HAS CHANGED on every LU of every nexus
	// (SPC-4 6.33, SAM-5 5.14).
	if err := r.tgt.AddLU(lu2); err != nil {
		t.Fatal(err)
	}
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x3F0E})
	r.good(r.do(tur, nil, 0))
	// The other nexus has both conditions queued, oldest first, in the
	// format of the LU's D_SENSE (one mode page policy for every nexus).
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2A01}, true)
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x3F0E}, true)
	// REPORT LUNS neither reports a unit attention nor lets it stand
	// when it is REPORTED LUNS DATA HAS CHANGED on the I_T_L nexus it was
	// sent through (SPC-4 6.33); the new LU's other conditions stay.
	r.good(doOn(t, d2, scsi.EncodeLUN(1), scsitest.ReportLUNs(0, 64), nil, 64))
	r.good(doOn(t, d2, scsi.EncodeLUN(1), tur, nil, 0))

	if _, err := r.tgt.RemoveLU("d1"); err != nil {
		t.Fatal(err)
	}
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x3F0E})
	r.good(r.do(tur, nil, 0))
	// After RemoveLU the LUN has no logical unit.
	expectOn(t, doOn(t, d2, scsi.EncodeLUN(1), tur, nil, 0), sense{key: 5, asc: 0x2500}, false)
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x3F0E}, true)

	// Several conditions queue and come out oldest first; a reset
	// condition supersedes what was queued (SAM-5 5.14: POWER ON, RESET
	// ... reports that the others happened too).
	r.lu.CapacityChanged()
	expectOn(t, doOn(t, d2, r.lun, tur, nil, 0), sense{key: 6, asc: 0x2A09}, true)
	r.good(doOn(t, d2, r.lun, scsitest.ModeSelect10(false, 20), controlPage(false, false), 0))
	r.dsns = false
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x2A09})
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x2A01})
	r.good(r.do(tur, nil, 0))
	r.lu.CapacityChanged()
	r.n.LUReset(r.lun, r.n.Mark())
	r.expect(r.do(tur, nil, 0), sense{key: 6, asc: 0x2903})
	r.good(r.do(tur, nil, 0))
}

// Mode pages of the test disk (SPC-4 7.5, SBC-3 6.4).
var (
	cachingCur  = cat("08 12 00", zeros(17))                // WCE 0: the memory store has no volatile cache
	cachingMask = cat("08 12 04", zeros(17))                // WCE changeable
	controlCur  = hx("0A 0A 00 10 00 00 00 00 FF FF 00 00") // QAM 1, BUSY TIMEOUT PERIOD unlimited
	controlMask = hx("0A 0A 04 00 08 00 00 00 00 00 00 00") // D_SENSE, SWP changeable
	iecCur      = hx("1C 0A 08 00 00 00 00 00 00 00 00 00") // DEXCPT
	iecMask     = hx("1C 0A 08 00 00 00 00 00 00 00 00 00") // DEXCPT changeable
	shortBD     = hx("00 00 08 00 00 00 02 00")             // 2048 blocks of 512 bytes
	longBD      = hx("00 00 00 00 00 00 08 00 00 00 00 00 00 00 02 00")
)

func TestModeSense(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// MODE SENSE(6) header: MODE DATA LENGTH, MEDIUM TYPE, DEVICE-
		// SPECIFIC PARAMETER (DPOFUA, SBC-3 6.4.1), BLOCK DESCRIPTOR
		// LENGTH; the short LBA block descriptor; pages in ascending order.
		{name: "6 all current", cdb: scsitest.ModeSense6(false, 0, 0x3F, 0, 255), inLen: 255,
			want: cat("37 00 10 08", shortBD, cachingCur, controlCur, iecCur)},
		{name: "6 all changeable DBD", cdb: scsitest.ModeSense6(true, 1, 0x3F, 0, 255), inLen: 255,
			want: cat("2F 00 10 00", cachingMask, controlMask, iecMask)},
		{name: "6 all default DBD", cdb: scsitest.ModeSense6(true, 2, 0x3F, 0, 255), inLen: 255,
			want: cat("2F 00 10 00", cachingCur, controlCur, iecCur)},
		// Subpage FFh: all pages and subpages; this LU has no subpages.
		{name: "6 all subpages", cdb: scsitest.ModeSense6(true, 0, 0x3F, 0xFF, 255), inLen: 255,
			want: cat("2F 00 10 00", cachingCur, controlCur, iecCur)},
		{name: "6 caching", cdb: scsitest.ModeSense6(false, 0, 0x08, 0, 255), inLen: 255, want: cat("1F 00 10 08", shortBD, cachingCur)},
		{name: "6 caching DBD", cdb: scsitest.ModeSense6(true, 0, 0x08, 0, 255), inLen: 255, want: cat("17 00 10 00", cachingCur)},
		{name: "6 control changeable", cdb: scsitest.ModeSense6(true, 1, 0x0A, 0, 255), inLen: 255, want: cat("0F 00 10 00", controlMask)},
		{name: "6 IEC default", cdb: scsitest.ModeSense6(true, 2, 0x1C, 0, 255), inLen: 255, want: cat("0F 00 10 00", iecCur)},
		// Truncated by the allocation length; MODE DATA LENGTH is not.
		{name: "6 alloc 4", cdb: scsitest.ModeSense6(false, 0, 0x3F, 0, 4), inLen: 255, want: hx("37 00 10 08")},
		// MODE SENSE(10): 8-byte header; LLBAA gives the long LBA block
		// descriptor (SBC-3 6.4.2.3) with LONGLBA set.
		{name: "10 control LLBAA", cdb: scsitest.ModeSense10(true, false, 0, 0x0A, 0, 255), inLen: 255,
			want: cat("00 22 00 10 01 00 00 10", longBD, controlCur)},
		{name: "10 IEC short BD", cdb: scsitest.ModeSense10(false, false, 0, 0x1C, 0, 255), inLen: 255,
			want: cat("00 1A 00 10 00 00 00 08", shortBD, iecCur)},
		{name: "10 all DBD+LLBAA", cdb: scsitest.ModeSense10(true, true, 0, 0x3F, 0, 255), inLen: 255,
			want: cat("00 32 00 10 00 00 00 00", cachingCur, controlCur, iecCur)},
		{name: "10 caching changeable", cdb: scsitest.ModeSense10(false, true, 1, 0x08, 0, 255), inLen: 255,
			want: cat("00 1A 00 10 00 00 00 00", cachingMask)},
		{name: "10 caching default", cdb: scsitest.ModeSense10(false, true, 2, 0x08, 0, 255), inLen: 255,
			want: cat("00 1A 00 10 00 00 00 00", cachingCur)},
	})
	r.runBoth([]row{
		// SPC-4 6.11: saved values with no way to save them.
		{name: "PC 3 unsaveable", cdb: scsitest.ModeSense6(false, 3, 0x0A, 0, 255), inLen: 255, err: se(5, 0x3900, "")},
		{name: "PC 3 unsaveable 10", cdb: scsitest.ModeSense10(false, false, 3, 0x3F, 0, 255), inLen: 255, err: se(5, 0x3900, "")},
		// An unsupported page: the field pointer names the PAGE CODE
		// field's most significant bit.
		{name: "page 05h", cdb: scsitest.ModeSense6(false, 0, 0x05, 0, 255), inLen: 255, err: se(5, 0x2400, "CD 00 02")},
		{name: "page 08h subpage 01h", cdb: scsitest.ModeSense6(false, 0, 0x08, 0x01, 255), inLen: 255, err: se(5, 0x2400, "CD 00 02")},
		// Page 3Fh, subpage 01h-FEh: a reserved code value.
		{name: "page 3Fh subpage 01h", cdb: scsitest.ModeSense6(false, 0, 0x3F, 0x01, 255), inLen: 255, err: se(5, 0x2400, "C0 00 03")},
		{name: "page 3Fh subpage FEh", cdb: scsitest.ModeSense10(false, false, 0, 0x3F, 0xFE, 255), inLen: 255, err: se(5, 0x2400, "C0 00 03")},
		// LLBAA does not exist in MODE SENSE(6): byte 1 bit 4 reserved.
		{name: "6 LLBAA", cdb: hx("1A 10 3F 00 FF 00"), inLen: 255, err: se(5, 0x2400, "CC 00 01")},
	})
	// The device-specific parameter has WP set on a write-protected LU
	// (SBC-3 6.4.1).
	ro := newRig(t, rigConfig{readOnly: true})
	ro.data(ro.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 90 00", controlCur))
}

func TestModeSenseLargeCapacity(t *testing.T) {
	// 2^32+16 blocks: more than the short block descriptor and READ
	// CAPACITY(10) can hold; they report FFFFFFFFh (SBC-3 6.4.2.2, 5.15).
	s, err := openNull((1<<32 + 16) * 512)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigConfig{store: s})
	r.data(r.do(scsitest.ModeSense6(false, 0, 0x0A, 0, 255), nil, 255), cat("17 00 10 08 FF FF FF FF 00 00 02 00", controlCur))
	r.data(r.do(scsitest.ModeSense10(true, false, 0, 0x0A, 0, 255), nil, 255),
		cat("00 22 00 10 01 00 00 10 00 00 00 01 00 00 00 10 00 00 00 00 00 00 02 00", controlCur))
	r.data(r.do(scsitest.ReadCapacity10(), nil, 8), hx("FF FF FF FF 00 00 02 00"))
	r.data(r.do(scsitest.ReadCapacity16(32), nil, 32), cat("00 00 00 01 00 00 00 0F 00 00 02 00 00 00 C0 00", zeros(16)))
}

func TestModeSelect(t *testing.T) {
	r := newRig(t, rigConfig{})
	hdr6 := "00 00 00 00"
	hdr10 := "00 00 00 00 00 00 00 00"
	r.run([]row{
		// A header alone, and a short block descriptor that matches the
		// medium (NUMBER OF LOGICAL BLOCKS 0: unchanged), are accepted.
		{name: "6 header only", cdb: scsitest.ModeSelect6(false, 4), out: hx(hdr6), want: nil},
		{name: "6 block descriptor", cdb: scsitest.ModeSelect6(false, 12), out: hx("00 00 00 08 00 00 00 00 00 00 02 00"), want: nil},
		{name: "10 long block descriptor", cdb: scsitest.ModeSelect10(false, 24), out: hx("00 00 00 00 01 00 00 10 00 00 00 00 00 00 08 00 00 00 00 00 00 00 02 00"), want: nil},
		{name: "6 IEC page", cdb: scsitest.ModeSelect6(false, 16), out: cat(hdr6, iecCur), want: nil},
		{name: "10 two pages", cdb: scsitest.ModeSelect10(false, 8+20+12), out: cat(hdr10, cachingCur, controlCur), want: nil},
		// SPC-4 6.9: PARAMETER LIST LENGTH zero is not an error.
		{name: "length 0", cdb: scsitest.ModeSelect6(false, 0), want: nil},
	})
	bad := func(off int, b byte) []byte { p := cat(hdr10, controlCur); p[off] = b; return p }
	r.runBoth([]row{
		// Changing a bit that is not changeable (QAM, byte 3 of the page at
		// offset 8): INVALID FIELD IN PARAMETER LIST, C/D 0, BPV, bit 4,
		// byte 11 (SPC-4 6.9, 4.5.2.4.2).
		{name: "QAM not changeable", cdb: scsitest.ModeSelect10(false, 20), out: bad(11, 0x00), err: se(5, 0x2600, "8C 00 0B")},
		{name: "busy timeout", cdb: scsitest.ModeSelect10(false, 20), out: bad(16, 0x00), err: se(5, 0x2600, "8F 00 10")},
		// PAGE LENGTH other than the device's (SPC-4 7.5.7).
		{name: "page length", cdb: scsitest.ModeSelect10(false, 21), out: cat(hdr10, "0A 0B 00 10 00 00 00 00 FF FF 00 00 00"), err: se(5, 0x2600, "80 00 09")},
		{name: "unknown page", cdb: scsitest.ModeSelect10(false, 20), out: cat(hdr10, "19 0A 00 00 00 00 00 00 00 00 00 00"), err: se(5, 0x2600, "8D 00 08")},
		// The control page in the sub_page format (SPF set, subpage 00h,
		// 2-byte PAGE LENGTH 8): the page is page_0 format only (SPC-4
		// 7.5.7); pointer at the SPF bit. Found by FuzzModeSelect.
		{name: "SPF on a page_0 page", cdb: scsitest.ModeSelect10(false, 20), out: cat(hdr10, "4A 00 00 08 00 00 00 00 FF FF 00 00"), err: se(5, 0x2600, "8E 00 08")},
		// A page cut short by the parameter list length (SPC-4 6.9).
		{name: "truncated page", cdb: scsitest.ModeSelect10(false, 14), out: cat(hdr10, "0A 0A 00 10 00 00"), err: se(5, 0x1A00, "")},
		{name: "truncated header", cdb: scsitest.ModeSelect10(false, 6), out: hx("00 00 00 00 00 00"), err: se(5, 0x1A00, "")},
		{name: "data-out short", cdb: scsitest.ModeSelect10(false, 20), out: hx(hdr10), err: se(5, 0x1A00, "")},
		// Block descriptor: wrong LOGICAL BLOCK LENGTH, wrong count,
		// wrong descriptor length.
		{name: "block length", cdb: scsitest.ModeSelect6(false, 12), out: hx("00 00 00 08 00 00 00 00 00 00 10 00"), err: se(5, 0x2600, "80 00 09")},
		{name: "block count", cdb: scsitest.ModeSelect6(false, 12), out: hx("00 00 00 08 00 00 00 05 00 00 02 00"), err: se(5, 0x2600, "80 00 04")},
		{name: "long block length", cdb: scsitest.ModeSelect10(false, 24), out: hx("00 00 00 00 01 00 00 10 00 00 00 00 00 00 08 00 00 00 00 00 00 00 10 00"), err: se(5, 0x2600, "80 00 14")},
		{name: "descriptor length", cdb: scsitest.ModeSelect6(false, 8), out: hx("00 00 00 04 00 00 00 00"), err: se(5, 0x2600, "80 00 03")},
		// PF 0 (SPC-1 vendor-specific pages) is refused; SP 1 without a
		// way to save is INVALID FIELD IN CDB (SPC-4 6.9).
		{name: "PF 0", cdb: hx("15 00 00 00 10 00"), out: cat(hdr6, iecCur), err: se(5, 0x2400, "CC 00 01")},
		{name: "SP unsaveable", cdb: scsitest.ModeSelect6(true, 16), out: cat(hdr6, iecCur), err: se(5, 0x2400, "C8 00 01")},
		{name: "reserved byte 2", cdb: hx("15 10 01 00 10 00"), out: cat(hdr6, iecCur), err: se(5, 0x2400, "C8 00 02")},
	})
	// An invalid page anywhere in the list changes nothing, not even the
	// valid pages before it (SPC-4 6.9: the command is terminated).
	p := cat(hdr10, "0A 0A 04 10 00 00 00 00 FF FF 00 00", "19 0A 00 00 00 00 00 00 00 00 00 00")
	r.expect(r.do(scsitest.ModeSelect10(false, uint16(len(p))), p, 0), sense{key: 5, asc: 0x2600, sks: "8D 00 14"})
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00", controlCur))
}

// TestModeSelectWCE: WCE is changeable, and a write cache turned off over
// a store with a volatile cache makes every write durable before GOOD
// (SBC-3 6.4.5: WCE 0 means the device server shall complete a write only
// once the data is on the medium).
func TestModeSelectWCE(t *testing.T) {
	rec := &recStore{Store: memStore(t, 1<<20, 512), volatile: true}
	r := newRig(t, rigConfig{store: rec})
	// A volatile store starts with WCE 1 and reports V_SUP.
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x08, 0, 255), nil, 255), cat("17 00 10 00 08 12 04", zeros(17)))
	r.data(r.do(scsitest.Inquiry(true, 0x86, 8), nil, 8), hx("00 86 00 3C 00 07 01 01"))
	// Files and block devices report no rotation rate.
	r.data(r.do(scsitest.Inquiry(true, 0xB1, 8), nil, 8), hx("00 B1 00 3C 00 00 00 00"))
	blk := pattern(512, 3)
	check := func(what string, cdb, out []byte, want ...string) {
		t.Helper()
		rec.take()
		r.good(r.do(cdb, out, 0))
		got := rec.take()
		if len(got) != len(want) {
			t.Fatalf("%s: store calls %q, want %q", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: store calls %q, want %q", what, got, want)
			}
		}
	}
	check("WRITE(16) WCE 1", scsitest.RW16(0x8A, 0, 4, 1), blk, "WriteAt 2048+512")
	// FUA forces the write through whatever WCE says (SBC-3 5.35).
	check("WRITE(16) FUA", scsitest.RW16(0x8A, 0x08, 4, 1), blk, "WriteAtSync 2048+512")
	check("WRITE(12) FUA", scsitest.RW12(0xAA, 0x08, 4, 1), blk, "WriteAtSync 2048+512")
	check("WRITE(10) FUA", scsitest.RW10(0x2A, 0x08, 4, 1), blk, "WriteAtSync 2048+512")
	check("WRITE(6)", scsitest.RW6(0x0A, 4, 1), blk, "WriteAt 2048+512")
	check("COMPARE AND WRITE FUA", scsitest.CompareAndWrite(0x08, 4, 1), append(append([]byte(nil), blk...), blk...), "WriteAtSync 2048+512")
	check("WRITE AND VERIFY", scsitest.RW16(0x8E, 0, 4, 1), blk, "WriteAtSync 2048+512")
	check("WRITE SAME WCE 1", scsitest.WriteSame16(0, 4, 2), blk, "WriteAt 2048+1024")
	check("SYNCHRONIZE CACHE(10)", scsitest.RW10(0x35, 0, 0, 0), nil, "Flush")
	check("SYNCHRONIZE CACHE(16)", scsitest.RW16(0x91, 0x02, 8, 8), nil, "Flush")

	r.modeSelect(cachingPage(false))
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x08, 0, 255), nil, 255), cat("17 00 10 00", cachingCur))
	check("WRITE(16) WCE 0", scsitest.RW16(0x8A, 0, 4, 1), blk, "WriteAtSync 2048+512")
	check("WRITE(6) WCE 0", scsitest.RW6(0x0A, 4, 1), blk, "WriteAtSync 2048+512")
	check("COMPARE AND WRITE WCE 0", scsitest.CompareAndWrite(0, 4, 1), append(append([]byte(nil), blk...), blk...), "WriteAtSync 2048+512")
	check("WRITE SAME WCE 0", scsitest.WriteSame16(0, 4, 2), blk, "WriteAt 2048+1024", "Flush")

	// The setting survives nothing: a logical unit reset brings back the
	// default (no saved pages, SPC-4 7.5.2).
	r.n.LUReset(r.lun, r.n.Mark())
	r.expect(r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 6, asc: 0x2903})
	check("WRITE(16) after reset", scsitest.RW16(0x8A, 0, 4, 1), blk, "WriteAt 2048+512")
}

// TestModeSelectSWP: the control mode page's SWP makes the LU write
// protected (SPC-4 7.5.8; SBC-3 4.11: DATA PROTECT, SOFTWARE WRITE
// PROTECTED) and sets WP in the mode parameter header.
func TestModeSelectSWP(t *testing.T) {
	r := newRig(t, rigConfig{})
	blk := pattern(512, 9)
	r.good(r.do(scsitest.RW16(0x8A, 0, 7, 1), blk, 0))
	r.modeSelect(controlPage(false, true))
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 90 00 0A 0A 00 10 08 00 00 00 FF FF 00 00"))
	unmapCDB, unmapParam := scsitest.Unmap([2]uint64{0, 1})
	rows := []row{
		{name: "WRITE(16)", cdb: scsitest.RW16(0x8A, 0, 7, 1), out: blk, err: se(7, 0x2702, "")},
		{name: "WRITE(6)", cdb: scsitest.RW6(0x0A, 7, 1), out: blk, err: se(7, 0x2702, "")},
		{name: "WRITE SAME", cdb: scsitest.WriteSame16(0, 7, 1), out: blk, err: se(7, 0x2702, "")},
		{name: "UNMAP", cdb: unmapCDB, out: unmapParam, err: se(7, 0x2702, "")},
		{name: "COMPARE AND WRITE", cdb: scsitest.CompareAndWrite(0, 7, 1), out: append(append([]byte(nil), blk...), blk...), err: se(7, 0x2702, "")},
		{name: "FORMAT UNIT", cdb: hx("04 00 00 00 00 00"), err: se(7, 0x2702, "")},
		// Reads still work.
		{name: "READ", cdb: scsitest.RW16(0x88, 0, 7, 1), inLen: 512, want: blk},
	}
	for _, desc := range []bool{false, true} {
		r.modeSelect(controlPage(desc, true))
		r.dsns = desc
		r.run(rows)
	}
	r.modeSelect(controlPage(false, false))
	r.good(r.do(scsitest.RW16(0x8A, 0, 7, 1), blk, 0))
}

// TestSavedModePages: with a saver, pages are saveable (PS), MODE SENSE
// PC=3 reports the saved values, SP=1 saves every saveable page, and a
// new LU (the daemon restarted) and a logical unit reset restore them
// (SPC-4 6.9, 6.11, 7.5.2).
func TestSavedModePages(t *testing.T) {
	var saved [][]byte
	saver := func(p [][]byte) error {
		saved = nil
		for _, b := range p {
			saved = append(saved, append([]byte(nil), b...))
		}
		return nil
	}
	r := newRig(t, rigConfig{save: saver})
	// PS (bit 7 of byte 0) on every page; saved = default before any save.
	r.data(r.do(scsitest.ModeSense6(true, 3, 0x3F, 0, 255), nil, 255),
		cat("2F 00 10 00 88 12 00", zeros(17), "8A 0A 00 10 00 00 00 00 FF FF 00 00 9C 0A 08 00 00 00 00 00 00 00 00 00"))
	// D_SENSE with SP=0: current only.
	r.setDSense(true)
	r.data(r.do(scsitest.ModeSense6(true, 3, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00 8A 0A 00 10 00 00 00 00 FF FF 00 00"))
	// SP=1 with only the caching page in the list saves the control page's
	// current D_SENSE too: "all the saveable mode pages including any sent".
	p := cachingPage(true)
	r.good(r.do(scsitest.ModeSelect10(true, uint16(len(p))), p, 0))
	want := [][]byte{cat("08 12 04", zeros(17)), hx("0A 0A 04 10 00 00 00 00 FF FF 00 00"), iecCur}
	if len(saved) != len(want) {
		t.Fatalf("saver got %d pages % x, want %d", len(saved), saved, len(want))
	}
	for i := range want {
		if string(saved[i][1:]) != string(want[i][1:]) || saved[i][0]&0x3F != want[i][0] {
			t.Fatalf("saved page %d: % x, want % x", i, saved[i], want[i])
		}
	}
	r.data(r.do(scsitest.ModeSense6(true, 3, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00 8A 0A 04 10 00 00 00 00 FF FF 00 00"))
	// Current changes; a logical unit reset brings back the saved values.
	r.setDSense(false)
	r.n.LUReset(r.lun, r.n.Mark())
	r.dsns = true
	r.expect(r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 6, asc: 0x2903})
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00 8A 0A 04 10 00 00 00 00 FF FF 00 00"))

	// A new LU restores the saved pages: its first error comes in
	// descriptor format.
	r2 := newRig(t, rigConfig{save: saver, saved: saved, keepUA: true})
	r2.dsns = true
	r2.expect(r2.do(scsitest.TestUnitReady(), nil, 0), sense{key: 6, asc: 0x2900})
	r2.data(r2.do(scsitest.ModeSense6(true, 0, 0x08, 0, 255), nil, 255), cat("17 00 10 00 88 12 04", zeros(17)))
	// Malformed saved pages are ignored.
	r3 := newRig(t, rigConfig{save: saver, saved: [][]byte{hx("0A 0A 04"), hx("0A 0A 00 00 00 00 00 00 00 00 00 00"), nil, hx("33 02 00 00")}})
	r3.data(r3.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00 8A 0A 00 10 00 00 00 00 FF FF 00 00"))
}

// TestSavedModePagesFailure: a saver that fails reports HARDWARE ERROR,
// INTERNAL TARGET FAILURE; the current values the command set still take
// effect (the sense format follows D_SENSE as MODE SENSE reports it).
func TestSavedModePagesFailure(t *testing.T) {
	r := newRig(t, rigConfig{save: func([][]byte) error { return errTest }})
	p := controlPage(true, false)
	r.dsns = true
	r.expect(r.do(scsitest.ModeSelect10(true, uint16(len(p))), p, 0), sense{key: 4, asc: 0x4400})
	r.data(r.do(scsitest.ModeSense6(true, 0, 0x0A, 0, 255), nil, 255), cat("0F 00 10 00 8A 0A 04 10 00 00 00 00 FF FF 00 00"))
	r.expect(r.do(scsitest.Inquiry(true, 0x55, 96), nil, 96), sense{key: 5, asc: 0x2400, sks: "C0 00 02"})
}

// Operation codes the memory disk supports, in the order of REPORT
// SUPPORTED OPERATION CODES (SPC-4 6.35.2): opcode, service action,
// SERVACTV, CDB LENGTH.
var supportedOps = []struct {
	op     byte
	sa     uint16
	servAV bool
	cdbLen uint16
}{
	{0x00, 0, false, 6}, {0x03, 0, false, 6}, {0x04, 0, false, 6}, {0x08, 0, false, 6}, {0x0A, 0, false, 6},
	{0x12, 0, false, 6}, {0x15, 0, false, 6}, {0x16, 0, false, 6}, {0x17, 0, false, 6}, {0x1A, 0, false, 6}, {0x1B, 0, false, 6}, {0x1D, 0, false, 6},
	{0x1E, 0, false, 6}, {0x25, 0, false, 10}, {0x28, 0, false, 10}, {0x2A, 0, false, 10}, {0x2E, 0, false, 10},
	{0x2F, 0, false, 10}, {0x35, 0, false, 10}, {0x41, 0, false, 10}, {0x42, 0, false, 10}, {0x55, 0, false, 10},
	{0x56, 0, false, 10}, {0x57, 0, false, 10}, {0x5A, 0, false, 10},
	// PERSISTENT RESERVE IN (4 service actions) and OUT (8).
	{0x5E, 0, true, 10}, {0x5E, 1, true, 10}, {0x5E, 2, true, 10}, {0x5E, 3, true, 10},
	{0x5F, 0, true, 10}, {0x5F, 1, true, 10}, {0x5F, 2, true, 10}, {0x5F, 3, true, 10},
	{0x5F, 4, true, 10}, {0x5F, 5, true, 10}, {0x5F, 6, true, 10}, {0x5F, 7, true, 10}, {0x88, 0, false, 16}, {0x89, 0, false, 16}, {0x8A, 0, false, 16}, {0x8E, 0, false, 16},
	{0x8F, 0, false, 16}, {0x91, 0, false, 16}, {0x93, 0, false, 16}, {0x9E, 0x10, true, 16}, {0x9E, 0x12, true, 16},
	{0xA0, 0, false, 12}, {0xA3, 0x0C, true, 12}, {0xA3, 0x0D, true, 12}, {0xA8, 0, false, 12}, {0xAA, 0, false, 12},
}

func allCommands(rctd bool) []byte {
	out := make([]byte, 4)
	for _, o := range supportedOps {
		d := []byte{o.op, 0, byte(o.sa >> 8), byte(o.sa), 0, 0, byte(o.cdbLen >> 8), byte(o.cdbLen)}
		if o.servAV {
			d[5] |= 0x01
		}
		if rctd {
			d[5] |= 0x02 // CTDP
			d = append(d, cat("00 0A", zeros(10))...)
		}
		out = append(out, d...)
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

func TestReportSupportedOpcodes(t *testing.T) {
	r := newRig(t, rigConfig{})
	timeouts := cat("00 0A", zeros(10)) // SPC-4 6.35.4: no timeouts given
	r.run([]row{
		{name: "all", cdb: scsitest.ReportOpcodes(false, 0, 0, 0, 4096), inLen: 4096, want: allCommands(false)},
		{name: "all RCTD", cdb: scsitest.ReportOpcodes(true, 0, 0, 0, 4096), inLen: 4096, want: allCommands(true)},
		{name: "all alloc 12", cdb: scsitest.ReportOpcodes(false, 0, 0, 0, 12), inLen: 4096, want: allCommands(false)[:12]},
		// One command (SPC-4 6.35.3): SUPPORT 011b, CDB SIZE, CDB USAGE
		// DATA (the bits the device server looks at).
		{name: "READ(10)", cdb: scsitest.ReportOpcodes(false, 1, 0x28, 0, 64), inLen: 64, want: hx("00 03 00 0A 28 18 FF FF FF FF 00 FF FF 00")},
		{name: "READ(10) RCTD", cdb: scsitest.ReportOpcodes(true, 1, 0x28, 0, 64), inLen: 64, want: cat("00 83 00 0A 28 18 FF FF FF FF 00 FF FF 00", timeouts)},
		{name: "WRITE SAME(16)", cdb: scsitest.ReportOpcodes(false, 1, 0x93, 0, 64), inLen: 64, want: hx("00 03 00 10 93 09 FF FF FF FF FF FF FF FF FF FF FF FF 00 00")},
		{name: "INQUIRY", cdb: scsitest.ReportOpcodes(false, 1, 0x12, 0, 64), inLen: 64, want: hx("00 03 00 06 12 01 FF FF FF 00")},
		// With service action: the SERVICE ACTION field reads as the action.
		{name: "READ CAPACITY(16)", cdb: scsitest.ReportOpcodes(false, 2, 0x9E, 0x10, 64), inLen: 64, want: hx("00 03 00 10 9E 10 FF FF FF FF FF FF FF FF FF FF FF FF 01 00")},
		{name: "REPORT TMFs RCTD", cdb: scsitest.ReportOpcodes(true, 2, 0xA3, 0x0D, 64), inLen: 64, want: cat("00 83 00 0C A3 0D 80 00 00 00 FF FF FF FF 00 00", timeouts)},
		// Not supported: SUPPORT 001b.
		{name: "unsupported opcode", cdb: scsitest.ReportOpcodes(false, 1, 0x20, 0, 64), inLen: 64, want: hx("00 01 00 00")},
		{name: "unsupported service action", cdb: scsitest.ReportOpcodes(false, 2, 0x9E, 0x11, 64), inLen: 64, want: hx("00 01 00 00")},
		// REPORTING OPTIONS 011b (SPC-4 r37): opcode and service action;
		// a non-zero service action for a command without service actions
		// is reported as not supported (this target's reading).
		{name: "option 3 no SA", cdb: scsitest.ReportOpcodes(false, 3, 0x28, 0, 64), inLen: 64, want: hx("00 03 00 0A 28 18 FF FF FF FF 00 FF FF 00")},
		{name: "option 3 SA", cdb: scsitest.ReportOpcodes(false, 3, 0x9E, 0x12, 64), inLen: 64, want: hx("00 03 00 10 9E 12 FF FF FF FF FF FF FF FF FF FF FF FF 00 00")},
		{name: "option 3 bogus SA", cdb: scsitest.ReportOpcodes(false, 3, 0x28, 5, 64), inLen: 64, want: hx("00 01 00 00")},
	})
	r.runBoth([]row{
		// 001b for an opcode with service actions, 010b for one without:
		// INVALID FIELD IN CDB (SPC-4 6.35.1), pointing at REPORTING OPTIONS.
		{name: "option 1 with SA", cdb: scsitest.ReportOpcodes(false, 1, 0x9E, 0, 64), inLen: 64, err: se(5, 0x2400, "CA 00 02")},
		{name: "option 2 without SA", cdb: scsitest.ReportOpcodes(false, 2, 0x28, 0, 64), inLen: 64, err: se(5, 0x2400, "CA 00 02")},
		{name: "option 4", cdb: scsitest.ReportOpcodes(false, 4, 0, 0, 64), inLen: 64, err: se(5, 0x2400, "CA 00 02")},
		// An unknown service action of MAINTENANCE IN.
		{name: "MAINTENANCE IN 1Fh", cdb: hx("A3 1F 00 00 00 00 00 00 01 00 00 00"), inLen: 64, err: se(5, 0x2400, "CC 00 01")},
	})
}

func TestReportSupportedTMFs(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// SPC-4 6.37: ATS ATSS CACAS CTSS LURS QTS; no TRS, WAKES, QAES,
		// QTSS, ITNRS.
		{name: "REPD 0", cdb: scsitest.ReportTMFs(false, 4), inLen: 64, want: hx("FC 00 00 00")},
		{name: "REPD 1", cdb: scsitest.ReportTMFs(true, 64), inLen: 64, want: cat("FC 00 00 0C", zeros(12))},
		{name: "alloc 2", cdb: scsitest.ReportTMFs(false, 2), inLen: 64, want: hx("FC 00")},
	})
}

func TestPreventAllow(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		{name: "prevent", cdb: hx("1E 00 00 00 01 00"), want: nil},
		{name: "allow", cdb: hx("1E 00 00 00 00 00"), want: nil},
	})
	r.runBoth([]row{
		// PREVENT 10b and 11b are obsolete (SBC-3 5.13): refused.
		{name: "prevent 2", cdb: hx("1E 00 00 00 02 00"), err: se(5, 0x2400, "C9 00 04")},
		{name: "prevent 3", cdb: hx("1E 00 00 00 03 00"), err: se(5, 0x2400, "C9 00 04")},
		{name: "reserved", cdb: hx("1E 01 00 00 00 00"), err: se(5, 0x2400, "C8 00 01")},
	})
}

func TestSendDiagnostic(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.run([]row{
		// SELFTEST 1: the default self-test (SPC-4 6.42).
		{name: "self-test", cdb: hx("1D 04 00 00 00 00"), want: nil},
		{name: "self-test offline", cdb: hx("1D 07 00 00 00 00"), want: nil},
		{name: "no operation", cdb: hx("1D 10 00 00 00 00"), want: nil},
	})
	r.runBoth([]row{
		// SELF-TEST CODE must be 000b with SELFTEST 1; the background and
		// foreground self-tests are not supported.
		{name: "self-test code with SELFTEST", cdb: hx("1D 24 00 00 00 00"), err: se(5, 0x2400, "CF 00 01")},
		{name: "background short self-test", cdb: hx("1D 20 00 00 00 00"), err: se(5, 0x2400, "CF 00 01")},
		{name: "SELFTEST with parameter list", cdb: hx("1D 04 00 00 04 00"), out: hx("00 00 00 00"), err: se(5, 0x2400, "C0 00 03")},
		// A diagnostic page: none is supported.
		{name: "diagnostic page", cdb: hx("1D 10 00 00 04 00"), out: hx("80 00 00 00"), err: se(5, 0x2600, "80 00 00")},
		{name: "reserved bit 3", cdb: hx("1D 08 00 00 00 00"), err: se(5, 0x2400, "CB 00 01")},
	})
}

func TestInvalidOpcode(t *testing.T) {
	r := newRig(t, rigConfig{})
	r.runBoth([]row{
		// SPC-4 4.5.6 / table 50: INVALID COMMAND OPERATION CODE, with no
		// field pointer.
		{name: "20h", cdb: hx("20 00 00 00 00 00 00 00 00 00"), err: se(5, 0x2000, "")},
		{name: "FFh", cdb: hx("FF 00 00 00 00 00"), err: se(5, 0x2000, "")},
		{name: "7Fh", cdb: make16(0x7F), err: se(5, 0x2000, "")},
		// An unknown service action of SERVICE ACTION IN(16).
		{name: "9Eh/1Fh", cdb: hx("9E 1F 00 00 00 00 00 00 00 00 00 00 00 20 00 00"), inLen: 32, err: se(5, 0x2400, "CC 00 01")},
		// A CDB shorter than its command: INVALID FIELD IN COMMAND
		// INFORMATION UNIT (SAM-5, as SRP carries CDBs).
		{name: "short CDB", cdb: hx("88 00 00 00 00 00 00 00"), err: se(5, 0x0E03, "")},
	})
	// A pending unit attention wins over an unknown opcode (SAM-5 5.14).
	r2 := newRig(t, rigConfig{keepUA: true})
	r2.expect(r2.do(hx("20 00 00 00 00 00 00 00 00 00"), nil, 0), sense{key: 6, asc: 0x2900})
	r2.expect(r2.do(hx("20 00 00 00 00 00 00 00 00 00"), nil, 0), sense{key: 5, asc: 0x2000})
	// An empty CDB.
	r2.expect(r2.do(nil, nil, 0), sense{key: 5, asc: 0x0E03})
}

func make16(op byte) []byte { c := make([]byte, 16); c[0] = op; return c }
