package scsi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// FuzzTransportID decodes arbitrary bytes as a TransportID (SPC-4 7.6.4):
// no panic; an accepted one is an SRP TransportID of 24 bytes whose
// initiator port identifier re-encodes to the same bytes; every strict
// prefix of an accepted one is refused.
func FuzzTransportID(f *testing.F) {
	good := scsi.SRPTransportID(scsi.PortID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(good[:])
	f.Add([]byte{0x44, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x05, 0, 0, 0, 'i', 'q', 'n', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, n, err := scsi.ParseTransportID(b)
		if err != nil {
			return
		}
		if n != scsi.TransportIDLen || len(b) < n || b[0]&0xCF != scsi.ProtocolSRP {
			t.Fatalf("accepted % x: length %d", b, n)
		}
		re := scsi.SRPTransportID(id)
		// Byte 0 bits 5-4 are reserved and not checked.
		if re[0] != b[0]&0xCF || !bytes.Equal(re[8:], b[8:24]) {
			t.Fatalf("% x re-encodes as % x", b[:24], re)
		}
		for i := 0; i < n; i++ {
			if _, _, err := scsi.ParseTransportID(b[:i]); err == nil {
				t.Fatalf("the %d-byte prefix of % x was accepted", i, b[:n])
			}
		}
	})
}

// prFuzzState is what PERSISTENT RESERVE IN reports: the keys, the
// reservation and the full status, generation included.
func prFuzzState(t *testing.T, d *scsitest.Direct) []byte {
	t.Helper()
	drainUA(d)
	var out []byte
	for _, sa := range []byte{scsitest.PRInReadKeys, scsitest.PRInReadReservation, scsitest.PRInReadFullStatus} {
		resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.PRIn(sa, 8192), InLen: 8192})
		if err != nil || resp.Status != scsi.StatusGood {
			t.Fatalf("PERSISTENT RESERVE IN %d: %v %v", sa, err, resp.Err())
		}
		out = append(out, resp.Data...)
	}
	return out
}

// checkPRIn holds what the parameter data of READ KEYS and READ FULL STATUS
// must be, whatever came before: lengths that add up, and an SRP
// TransportID in every full status descriptor (SPC-4 6.15.2, 6.15.5).
func checkPRIn(t *testing.T, d *scsitest.Direct) int {
	t.Helper()
	keys := prFuzzState(t, d)
	n := int(binary.BigEndian.Uint32(keys[4:]))
	if n%8 != 0 || len(keys) < 8+n {
		t.Fatalf("READ KEYS additional length %d", n)
	}
	drainUA(d)
	resp, _ := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.PRIn(scsitest.PRInReadFullStatus, 8192), InLen: 8192})
	fs := resp.Data
	l := int(binary.BigEndian.Uint32(fs[4:]))
	if len(fs) != 8+l {
		t.Fatalf("READ FULL STATUS: %d bytes, additional length %d", len(fs), l)
	}
	count := 0
	for p := 8; p < len(fs); count++ {
		if p+24 > len(fs) {
			t.Fatalf("READ FULL STATUS: a descriptor cut at %d", p)
		}
		dl := int(binary.BigEndian.Uint32(fs[p+20:]))
		if _, tl, err := scsi.ParseTransportID(fs[p+24 : min(len(fs), p+24+dl)]); err != nil || tl != dl {
			t.Fatalf("READ FULL STATUS descriptor at %d: TransportID %v (%d of %d)", p, err, tl, dl)
		}
		p += 24 + dl
	}
	if count != n/8 {
		t.Fatalf("READ KEYS has %d keys, READ FULL STATUS %d descriptors", n/8, count)
	}
	return count
}

// FuzzPROut sends an arbitrary PERSISTENT RESERVE OUT — any service
// action, scope and type, any parameter list and PARAMETER LIST LENGTH —
// from I_T nexus A of a target where A, B and C may be registered and
// one of them may hold a reservation (set up from setup's bits). The
// outcome is GOOD, RESERVATION CONFLICT or CHECK CONDITION with ILLEGAL
// REQUEST (or HARDWARE ERROR if saving fails); a command that does not
// complete with GOOD changes nothing PERSISTENT RESERVE IN can see (SPC-4
// 6.16: terminated commands have no effect); the PERSISTENT RESERVE IN data
// stays well formed; the saved state (APTPL) parses and has as many
// registrations as READ KEYS reports.
func FuzzPROut(f *testing.F) {
	reg := scsitest.PROutParams{SAKey: 0xA}.Bytes()
	f.Add(byte(0), byte(0), reg, uint32(24), byte(0))
	f.Add(byte(1), byte(0x01), scsitest.PROutParams{Key: 0xA}.Bytes(), uint32(24), byte(1))
	f.Add(byte(4), byte(0x03), scsitest.PROutParams{Key: 0xA, SAKey: 0xB}.Bytes(), uint32(24), byte(0x1F))
	f.Add(byte(5), byte(0x07), scsitest.PROutParams{Key: 0xA, SAKey: 0}.Bytes(), uint32(24), byte(0x3F))
	spec := scsitest.PROutParams{SAKey: 0xA, SpecIPT: true, AllTgPt: true, APTPL: true, TransportIDs: []scsi.PortID{other, initiator}}.Bytes()
	f.Add(byte(0), byte(0), spec, uint32(len(spec)), byte(0))
	move := scsitest.RegisterMoveParams{Key: 0xA, SAKey: 0xB, RelativePort: 1, To: other, Unreg: true, APTPL: true}.Bytes()
	f.Add(byte(7), byte(0), move, uint32(len(move)), byte(0x0B))
	f.Add(byte(3), byte(0xFF), scsitest.PROutParams{Key: 0xA}.Bytes(), uint32(24), byte(0xFF))
	f.Fuzz(func(t *testing.T, sa, scopeType byte, param []byte, plen uint32, setup byte) {
		store, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 1 << 16, BlockSize: 512})
		if err != nil {
			t.Fatal(err)
		}
		var saved []byte
		saveFails := setup&0x80 != 0
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "f", Store: store, SavePR: func(b []byte) error {
			if saveFails {
				return errTest
			}
			saved = append([]byte(nil), b...)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer lu.Close()
		tgt := scsi.NewTarget(scsi.TargetConfig{})
		port := tgt.AddPort(testPort, "p")
		if err := tgt.AddLU(lu); err != nil {
			t.Fatal(err)
		}
		ids := []scsi.PortID{initiator, other, {0x55, 15: 0x55}}
		var ini []*scsitest.Direct
		for _, id := range ids {
			n, err := tgt.Attach(scsi.NexusID{Initiator: id, Target: testPort}, port)
			if err != nil {
				t.Fatal(err)
			}
			d := scsitest.NewDirect(n)
			d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.TestUnitReady()})
			ini = append(ini, d)
		}
		do := func(d *scsitest.Direct, cdb, out []byte) *scsitest.Response {
			resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: cdb, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// Set-up: bits 0-2 register A, B, C with keys 0xA, 0xB, 0xC (with
		// APTPL from bit 6); bits 3-5 pick who reserves and with what
		// type.
		for i := 0; i < 3; i++ {
			if setup&(1<<i) != 0 {
				p := scsitest.PROutParams{SAKey: uint64(0xA + i), APTPL: setup&0x40 != 0 && !saveFails}.Bytes()
				do(ini[i], scsitest.PROut(scsitest.PROutRegister, 0, 0, 24), p)
			}
		}
		if r := int(setup>>3) & 7; r != 0 {
			who := r % 3
			types := []byte{1, 3, 5, 6, 7, 8}
			p := scsitest.PROutParams{Key: uint64(0xA + who)}.Bytes()
			do(ini[who], scsitest.PROut(scsitest.PROutReserve, 0, types[r%6], 24), p)
		}
		before := prFuzzState(t, ini[1])
		cdb := []byte{0x5F, sa, scopeType, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(cdb[5:], plen)
		c := &scsi.Command{CDB: cdb, LUN: scsi.EncodeLUN(0), Tag: 99, DataOut: param}
		ini[0].Nexus.Execute(c)
		checkOutcome(t, c)
		if c.Status == scsi.StatusCheckCondition {
			e, _ := scsi.ParseSense(c.SenseData())
			if e.Key != scsi.IllegalRequest && !(e.Key == scsi.UnitAttention) && !(saveFails && e.Key == scsi.HardwareError) {
				t.Fatalf("PERSISTENT RESERVE OUT % x: %v", cdb, e)
			}
		}
		if c.Status != scsi.StatusGood {
			if after := prFuzzState(t, ini[1]); !bytes.Equal(before, after) {
				t.Fatalf("PERSISTENT RESERVE OUT % x failed (%#x) but changed the state:\n% x\n% x", cdb, c.Status, before, after)
			}
		}
		regs := checkPRIn(t, ini[2])
		if st := lu.PRState(); st.APTPL && !saveFails {
			s, err := scsi.ParsePRState(saved)
			if err != nil {
				t.Fatalf("saved state: %v\n%s", err, saved)
			}
			if len(s.Registrations) != regs {
				t.Fatalf("saved %d registrations, READ KEYS %d", len(s.Registrations), regs)
			}
		}
	})
}

// FuzzPRState decodes arbitrary bytes as a saved persistent reservation
// state: no panic; an accepted state builds an LU that reports it; a
// strict prefix of an accepted state — a torn write — is refused.
func FuzzPRState(f *testing.F) {
	f.Add([]byte("srptgt persistent reservations v1\naptpl 0\ncrc32c e6c59207\n"))
	f.Add([]byte("srptgt persistent reservations v1\naptpl 1\nreg 000000000000000a 00000000000000410000000000000001 fe800000000000000002c90300000001\nreg 000000000000000b 00000000000000420000000000000001 fe800000000000000002c90300000001\nres 6 00000000000000410000000000000001 fe800000000000000002c90300000001\ncrc32c 6b9337f6\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scsi.ParsePRState(b)
		if err != nil {
			return
		}
		for i := 0; i < len(b); i++ {
			if _, err := scsi.ParsePRState(b[:i]); err == nil {
				t.Fatalf("the %d-byte prefix of an accepted state was accepted", i)
			}
		}
		store, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 1 << 16, BlockSize: 512})
		if err != nil {
			t.Fatal(err)
		}
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "f", Store: store, SavePR: func([]byte) error { return nil }, SavedPR: b})
		if err != nil {
			t.Fatalf("an accepted state does not restore: %v", err)
		}
		defer lu.Close()
		got := lu.PRState()
		if got.String() != s.String() || len(got.Registrations) != len(s.Registrations) {
			t.Fatalf("restored %v, parsed %v", got, s)
		}
	})
}

// drainUA takes the unit attentions pending for d with REQUEST SENSE.
func drainUA(d *scsitest.Direct) {
	for i := 0; i < 16; i++ {
		resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RequestSense(false, 18), InLen: 18})
		if err != nil || len(resp.Data) < 3 || resp.Data[2]&0x0F != byte(scsi.UnitAttention) {
			return
		}
	}
}
