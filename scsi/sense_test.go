package scsi_test

import (
	"bytes"
	"testing"

	"github.com/srptgt/srptgt/scsi"
	"pgregory.net/rapid"
)

// TestSenseEncoding pins the sense data bytes of SPC-4 4.5.3 (fixed
// format, response code 70h) and 4.5.2 (descriptor format, 72h, with the
// information descriptor 00h, the sense key specific descriptor 02h and
// SSC's stream commands descriptor 04h).
func TestSenseEncoding(t *testing.T) {
	for _, tc := range []struct {
		name        string
		e           *scsi.SenseError
		fixed, desc string
		text        string
	}{
		{"invalid opcode", scsi.ErrInvalidOpcode,
			"70 00 05 00 00 00 00 0A 00 00 00 00 20 00 00 00 00 00",
			"72 05 20 00 00 00 00 00",
			"ILLEGAL REQUEST, ASC/ASCQ 20h/00h"},
		{"invalid field in CDB byte 2", scsi.InvalidCDB(2, -1),
			"70 00 05 00 00 00 00 0A 00 00 00 00 24 00 00 C0 00 02",
			"72 05 24 00 00 00 00 08 02 06 00 00 C0 00 02 00",
			"ILLEGAL REQUEST, ASC/ASCQ 24h/00h, field pointer 2"},
		{"invalid field in CDB byte 1 bit 4", scsi.InvalidCDB(1, 4),
			"70 00 05 00 00 00 00 0A 00 00 00 00 24 00 00 CC 00 01",
			"72 05 24 00 00 00 00 08 02 06 00 00 CC 00 01 00",
			"ILLEGAL REQUEST, ASC/ASCQ 24h/00h, field pointer 1 bit 4"},
		{"invalid field in parameter list byte 300 bit 7", scsi.InvalidParam(300, 7),
			"70 00 05 00 00 00 00 0A 00 00 00 00 26 00 00 8F 01 2C",
			"72 05 26 00 00 00 00 08 02 06 00 00 8F 01 2C 00",
			"ILLEGAL REQUEST, ASC/ASCQ 26h/00h, field pointer 300 bit 7"},
		{"miscompare at 77", scsi.MiscompareAt(77),
			"F0 00 0E 00 00 00 4D 0A 00 00 00 00 1D 00 00 00 00 00",
			"72 0E 1D 00 00 00 00 0C 00 0A 80 00 00 00 00 00 00 00 00 4D",
			"MISCOMPARE, ASC/ASCQ 1Dh/00h, information 77"},
		{"medium error above 32 bits", &scsi.SenseError{Key: scsi.MediumError, ASC: scsi.ASCUnrecoveredReadError, InfoValid: true, Info: 0x1_0000_0002},
			"70 00 03 00 00 00 00 0A 00 00 00 00 11 00 00 00 00 00",
			"72 03 11 00 00 00 00 0C 00 0A 80 00 00 00 00 01 00 00 00 02",
			"MEDIUM ERROR, ASC/ASCQ 11h/00h, information 4294967298"},
		{"filemark ILI", &scsi.SenseError{Key: scsi.NoSense, ASC: 0x0001, Flags: scsi.SenseFilemark | scsi.SenseILI, InfoValid: true, Info: 5},
			"F0 00 A0 00 00 00 05 0A 00 00 00 00 00 01 00 00 00 00",
			"72 00 00 01 00 00 00 10 00 0A 80 00 00 00 00 00 00 00 00 05 04 02 00 A0",
			"NO SENSE, ASC/ASCQ 00h/01h, information 5"},
		{"format progress", &scsi.SenseError{Key: scsi.NotReady, ASC: scsi.ASCNotReadyFormatInProgress, SKS: [3]byte{0x80, 0x40, 0x00}},
			"70 00 02 00 00 00 00 0A 00 00 00 00 04 04 00 80 40 00",
			"72 02 04 04 00 00 00 08 02 06 00 00 80 40 00 00",
			""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b [scsi.MaxSense]byte
			if n := tc.e.FixedSense(b[:]); !bytes.Equal(b[:n], hx(tc.fixed)) {
				t.Errorf("fixed\n got % x\nwant % x", b[:n], hx(tc.fixed))
			}
			if n := tc.e.DescriptorSense(b[:]); !bytes.Equal(b[:n], hx(tc.desc)) {
				t.Errorf("descriptor\n got % x\nwant % x", b[:n], hx(tc.desc))
			}
			if got := tc.e.Error(); tc.text != "" && got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
			// Both forms decode back.
			for _, s := range []string{tc.fixed, tc.desc} {
				g, err := scsi.ParseSense(hx(s))
				if err != nil {
					t.Fatalf("ParseSense(%s): %v", s, err)
				}
				if g.Key != tc.e.Key || g.ASC != tc.e.ASC || g.Flags != tc.e.Flags {
					t.Errorf("ParseSense(%s) = %+v", s, *g)
				}
			}
		})
	}
	// A short buffer takes what fits.
	var small [8]byte
	if n := scsi.InvalidCDB(2, -1).FixedSense(small[:]); n != 8 || !bytes.Equal(small[:], hx("70 00 05 00 00 00 00 0A")) {
		t.Errorf("fixed sense into 8 bytes: %d % x", n, small)
	}
}

func TestParseSenseRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"7F 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", // unknown response code
		"00 00 05 00 00 00 00 0A 00 00 00 00 24 00",             // response code 00h
		"70 00 05 00 00 00 00 0A 00 00 00 00 24",                // fixed, 13 bytes
		"72 05 24 00 00 00 00",                                  // descriptor header cut
		"72 05 24 00 00 00 00 08 02 06 00 00 C0 00 02",          // one byte short of ADDITIONAL SENSE LENGTH
		"72 05 24 00 00 00 00 04 02 06 00 00",                   // descriptor overruns the stated length
	} {
		if e, err := scsi.ParseSense(hx(s)); err == nil {
			t.Errorf("ParseSense(%s) = %+v, want an error", s, *e)
		}
	}
	// Deferred errors (71h, 73h) and unknown descriptors are accepted.
	for _, s := range []string{
		"71 00 03 00 00 00 00 0A 00 00 00 00 0C 00",
		"73 03 0C 00 00 00 00 06 80 04 01 02 03 04",
	} {
		if _, err := scsi.ParseSense(hx(s)); err != nil {
			t.Errorf("ParseSense(%s): %v", s, err)
		}
	}
}

// TestSenseRoundTrip: any SenseError survives both encodings, except what
// a format cannot carry (fixed: INFORMATION above 32 bits; descriptor:
// sense-key-specific bytes without SKSV).
func TestSenseRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := &scsi.SenseError{
			Key:       scsi.SenseKey(rapid.IntRange(0, 15).Draw(t, "key")),
			ASC:       scsi.ASC(rapid.Uint16().Draw(t, "asc")),
			Flags:     byte(rapid.IntRange(0, 7).Draw(t, "flags")) << 5,
			InfoValid: rapid.Bool().Draw(t, "infoValid"),
		}
		if e.InfoValid {
			e.Info = rapid.OneOf(rapid.Uint64Range(0, 0xFFFFFFFF), rapid.Uint64()).Draw(t, "info")
		}
		copy(e.SKS[:], rapid.SliceOfN(rapid.Byte(), 3, 3).Draw(t, "sks"))
		var b [scsi.MaxSense]byte
		for _, desc := range []bool{false, true} {
			var n int
			if desc {
				n = e.DescriptorSense(b[:])
			} else {
				n = e.FixedSense(b[:])
			}
			g, err := scsi.ParseSense(b[:n])
			if err != nil {
				t.Fatalf("desc=%v % x: %v", desc, b[:n], err)
			}
			want := *e
			if !desc && e.Info > 0xFFFFFFFF {
				want.InfoValid, want.Info = false, 0
			}
			if desc && e.SKS[0]&0x80 == 0 {
				want.SKS = [3]byte{}
			}
			if *g != want {
				t.Fatalf("desc=%v: %+v encoded as % x decodes as %+v", desc, *e, b[:n], *g)
			}
			// No strict prefix of descriptor sense data is accepted.
			if desc {
				for k := 0; k < n; k++ {
					if _, err := scsi.ParseSense(b[:k]); err == nil {
						t.Fatalf("prefix %d of % x accepted", k, b[:n])
					}
				}
			}
		}
	})
}

// TestLUNEncoding: SAM-5 4.7: single level peripheral device addressing
// (00b) below 256, flat space addressing (01b) up to 16383, and the
// extended well-known LUN form C1h.
func TestLUNEncoding(t *testing.T) {
	for _, tc := range []struct {
		raw      uint64
		lun      uint16
		wk, ok   bool
		encodeOK bool
	}{
		{0x0000_0000_0000_0000, 0, false, true, true},
		{0x0001_0000_0000_0000, 1, false, true, true},
		{0x00FF_0000_0000_0000, 255, false, true, true},
		{0x4100_0000_0000_0000, 256, false, true, true},
		{0x412C_0000_0000_0000, 300, false, true, true},
		{0x7FFF_0000_0000_0000, 16383, false, true, true},
		{0x4005_0000_0000_0000, 5, false, true, false}, // flat space below 256: decodes, not what EncodeLUN makes
		{0xC101_0000_0000_0000, 1, true, true, false},
		{0x0100_0000_0000_0000, 0, false, false, false}, // bus number 1
		{0x8001_0000_0000_0000, 0, false, false, false}, // logical unit addressing
		{0xC001_0000_0000_0000, 0, false, false, false}, // extended, not well known
		{0x0001_0001_0000_0000, 0, false, false, false}, // second level
		{0x0000_0000_0000_0001, 0, false, false, false},
	} {
		lun, wk, ok := scsi.DecodeLUN(tc.raw)
		if ok != tc.ok || ok && (lun != tc.lun || wk != tc.wk) {
			t.Errorf("DecodeLUN(%016x) = %d %v %v, want %d %v %v", tc.raw, lun, wk, ok, tc.lun, tc.wk, tc.ok)
		}
		if tc.encodeOK && scsi.EncodeLUN(tc.lun) != tc.raw {
			t.Errorf("EncodeLUN(%d) = %016x, want %016x", tc.lun, scsi.EncodeLUN(tc.lun), tc.raw)
		}
	}
	for l := uint16(0); l < 16384; l++ {
		got, wk, ok := scsi.DecodeLUN(scsi.EncodeLUN(l))
		if !ok || wk || got != l {
			t.Fatalf("LUN %d does not round-trip: %d %v %v", l, got, wk, ok)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{scsi.IllegalRequest.String(), "ILLEGAL REQUEST"},
		{scsi.SenseKey(0xF).String(), "COMPLETED"},
		{scsi.Ordered.String(), "ORDERED"},
		{scsi.TaskAttr(3).String(), "UNKNOWN"},
		{scsi.TMFIncorrectLUN.String(), "INCORRECT LOGICAL UNIT NUMBER"},
		{scsi.StatusError(scsi.StatusBusy).Error(), "scsi: status 0x08"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}
