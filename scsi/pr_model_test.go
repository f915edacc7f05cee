package scsi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// The model-based test of persistent reservations: four I_T nexuses — two
// initiator ports through target port 1, a third initiator port through
// port 2, and the first initiator port again through port 2 — send 10,000
// random commands to one disk LU: every PERSISTENT RESERVE IN and OUT
// service action with valid and invalid fields and parameter lists, SPC-2
// RESERVE and RELEASE, READ and WRITE, TEST UNIT READY and REQUEST SENSE,
// and now and then a LOGICAL UNIT RESET or a logout and login. A reference
// model written from SPC-4 5.12 and 6.15-6.16, SPC-2 5.5.1 and SBC-3 4.18
// predicts each response; status, sense data and data-in must equal its
// prediction byte for byte. The model is sequential and shares no code with
// the target: registrations, the holder, unit attention queues and the
// medium are its own.

const (
	prmNexuses = 4
	prmOps     = 10000
	prmBlocks  = 64
	prmBS      = 512
)

// prmNexus describes the model's I_T nexuses.
var prmNexus = [prmNexuses]struct {
	ini  int // initiator port index
	port int // target port, 1 or 2
}{{0, 1}, {1, 1}, {2, 2}, {0, 2}}

func prmIni(i int) scsi.PortID {
	return scsi.PortID{0xC0, 0, 0, 0, 0, 0, 0, byte(i), 0, 0, 0, 0, 0, 0, 0, 0x11}
}

var prmPorts = [3]scsi.PortID{{}, {0xFE, 0x80, 15: 1}, {0xFE, 0x80, 15: 2}}

// The reference model.

type mReg struct {
	key  uint64
	ini  int
	port int // 0: ALL_TG_PT
}

// mNex is an I_T nexus as the model sees it: initiator port index and
// target port. Registrations (SPEC_I_PT, REGISTER AND MOVE) may name I_T
// nexuses no model initiator uses.
type mNex struct{ ini, port int }

func nexOf(n int) mNex { return mNex{prmNexus[n].ini, prmNexus[n].port} }

func (r mReg) coversNex(x mNex) bool { return r.ini == x.ini && (r.port == 0 || r.port == x.port) }

func (r mReg) covers(n int) bool { return r.coversNex(nexOf(n)) }

type prModel struct {
	gen      uint32
	regs     []mReg
	resType  byte
	resNexus mNex // holder of a non-all-registrants reservation
	aptpl    bool
	spc2     int // holder nexus of an SPC-2 reservation, -1: none
	ua       [prmNexuses][]uint16
	seen     [prmNexuses]bool
	image    []byte
}

func (m *prModel) addUA(n int, asc uint16) {
	q := m.ua[n]
	if asc>>8 == 0x29 {
		m.ua[n] = []uint16{asc}
		return
	}
	for _, a := range q {
		if a == asc {
			return
		}
	}
	if len(q) < 8 {
		m.ua[n] = append(q, asc)
	}
}

func (m *prModel) regOf(n int) int {
	for i, r := range m.regs {
		if r.covers(n) {
			return i
		}
	}
	return -1
}

func mAllReg(t byte) bool  { return t == 7 || t == 8 }
func mRegOnly(t byte) bool { return t == 5 || t == 6 }

func (m *prModel) holds(n int) bool {
	switch {
	case m.resType == 0:
		return false
	case mAllReg(m.resType):
		return m.regOf(n) >= 0
	}
	return m.resNexus == nexOf(n)
}

func (m *prModel) holderKey() uint64 {
	for _, r := range m.regs {
		if r.coversNex(m.resNexus) {
			return r.key
		}
	}
	panic("the holder is not registered")
}

// uaFor establishes asc for every nexus the registrations cover but n.
func (m *prModel) uaFor(regs []mReg, n int, asc uint16) {
	for x := 0; x < prmNexuses; x++ {
		if x == n {
			continue
		}
		for _, r := range regs {
			if r.covers(x) {
				m.addUA(x, asc)
				break
			}
		}
	}
}

// dropReg removes registration i, releasing a reservation it held.
func (m *prModel) dropReg(i int) {
	r := m.regs[i]
	m.regs = append(append([]mReg(nil), m.regs[:i]...), m.regs[i+1:]...)
	if m.resType == 0 {
		return
	}
	if mAllReg(m.resType) {
		if len(m.regs) == 0 {
			m.resType = 0
		}
		return
	}
	if r.coversNex(m.resNexus) {
		t := m.resType
		m.resType = 0
		if mRegOnly(t) {
			// The I_T nexus that sent the command has just lost its
			// registration: no one but the remaining registrants.
			m.uaFor(m.regs, -1, 0x2A04)
		}
	}
}

// Expected outcomes.

type mResult struct {
	status scsi.Status
	sense  []byte
	data   []byte
}

func good(data []byte) mResult { return mResult{status: scsi.StatusGood, data: data} }

var conflictRes = mResult{status: scsi.StatusReservationConflict}

func checkCond(key byte, asc uint16, sks []byte) mResult {
	s := make([]byte, 18)
	s[0], s[2], s[7] = 0x70, key, 0x0A
	s[12], s[13] = byte(asc>>8), byte(asc)
	copy(s[15:], sks)
	return mResult{status: scsi.StatusCheckCondition, sense: s}
}

func fieldPtr(cdb bool, off, bit int) []byte {
	b := byte(0x80)
	if cdb {
		b |= 0x40
	}
	if bit >= 0 {
		b |= 0x08 | byte(bit)
	}
	return []byte{b, byte(off >> 8), byte(off)}
}

func badCDB(off, bit int) mResult   { return checkCond(5, 0x2400, fieldPtr(true, off, bit)) }
func badParam(off, bit int) mResult { return checkCond(5, 0x2600, fieldPtr(false, off, bit)) }

var (
	plError       = checkCond(5, 0x1A00, nil)
	invalidRelRes = checkCond(5, 0x2604, nil)
)

// Command kinds of the generator.
const (
	kPRIn = iota
	kPROut
	kRead
	kWrite
	kTUR
	kReqSense
	kReserve6
	kRelease6
	kReserve10
	kRelease10
	kLUReset
	kRelogin
)

type mCmd struct {
	kind  int
	cdb   []byte
	param []byte
	inLen int
}

// expect applies cmd from nexus n to the model and returns the expected
// result.
func (m *prModel) expect(n int, c mCmd) mResult {
	if c.kind == kReqSense {
		// UA-exempt: reports (and clears) the oldest unit attention.
		d := make([]byte, 18)
		d[0], d[7] = 0x70, 0x0A
		if len(m.ua[n]) > 0 {
			a := m.ua[n][0]
			m.ua[n] = m.ua[n][1:]
			d[2], d[12], d[13] = 6, byte(a>>8), byte(a)
		}
		return good(d)
	}
	if len(m.ua[n]) > 0 {
		a := m.ua[n][0]
		m.ua[n] = m.ua[n][1:]
		return checkCond(6, a, nil)
	}
	sa := byte(0)
	if c.kind == kPRIn || c.kind == kPROut {
		sa = c.cdb[1] & 0x1F
		if c.kind == kPRIn && sa > 3 || c.kind == kPROut && sa > 7 {
			return badCDB(1, 4)
		}
	}
	if r, ok := m.conflict(n, c, sa); !ok {
		return r
	}
	switch c.kind {
	case kPRIn:
		return m.prIn(sa, int(binary.BigEndian.Uint16(c.cdb[7:9])))
	case kPROut:
		return m.prOut(n, c.cdb, c.param)
	case kRead:
		lba := int(binary.BigEndian.Uint32(c.cdb[2:6]))
		nb := int(binary.BigEndian.Uint16(c.cdb[7:9]))
		if lba+nb > prmBlocks {
			return checkCond(5, 0x2100, nil)
		}
		return good(append([]byte(nil), m.image[lba*prmBS:(lba+nb)*prmBS]...))
	case kWrite:
		lba := int(binary.BigEndian.Uint32(c.cdb[2:6]))
		nb := int(binary.BigEndian.Uint16(c.cdb[7:9]))
		if lba+nb > prmBlocks {
			return checkCond(5, 0x2100, nil)
		}
		copy(m.image[lba*prmBS:], c.param)
		return good(nil)
	case kReserve6, kReserve10, kRelease6, kRelease10:
		reserve := c.kind == kReserve6 || c.kind == kReserve10
		if len(m.regs) > 0 {
			// SPC-4 5.12.3 (CRH=1).
			if m.holds(n) || m.resType != 0 && (mRegOnly(m.resType) || mAllReg(m.resType)) && m.regOf(n) >= 0 {
				return good(nil)
			}
			return conflictRes
		}
		if reserve {
			if m.spc2 >= 0 && m.spc2 != n {
				return conflictRes
			}
			m.spc2 = n
		} else if m.spc2 == n {
			m.spc2 = -1
		}
		return good(nil)
	}
	return good(nil) // TEST UNIT READY
}

// conflict is the model's conflict table: false with the result when the
// command conflicts.
func (m *prModel) conflict(n int, c mCmd, sa byte) (mResult, bool) {
	if m.spc2 >= 0 {
		switch c.kind {
		case kPRIn, kPROut:
			return conflictRes, false
		case kRelease6, kRelease10:
			return mResult{}, true
		}
		if m.spc2 != n {
			return conflictRes, false
		}
		return mResult{}, true
	}
	if m.resType == 0 || m.holds(n) {
		return mResult{}, true
	}
	reg := m.regOf(n) >= 0
	rr := mRegOnly(m.resType) || mAllReg(m.resType)
	we := m.resType == 1 || m.resType == 5 || m.resType == 7
	ok := false
	switch c.kind {
	case kTUR, kPRIn, kReserve6, kReserve10, kRelease6, kRelease10:
		ok = true
	case kRead:
		ok = we || rr && reg
	case kWrite:
		ok = rr && reg
	case kPROut:
		switch sa {
		case 0, 6:
			ok = true
		case 2, 3, 4, 5:
			ok = reg
		}
	}
	if !ok {
		return conflictRes, false
	}
	return mResult{}, true
}

func (m *prModel) prIn(sa byte, alloc int) mResult {
	var b []byte
	u32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.BigEndian.AppendUint64(b, v) }
	switch sa {
	case 0:
		u32(m.gen)
		u32(uint32(8 * len(m.regs)))
		for _, r := range m.regs {
			u64(r.key)
		}
	case 1:
		u32(m.gen)
		if m.resType == 0 {
			u32(0)
			break
		}
		u32(16)
		if mAllReg(m.resType) {
			u64(0)
		} else {
			u64(m.holderKey())
		}
		b = append(b, 0, 0, 0, 0, 0, m.resType, 0, 0)
	case 2:
		b = []byte{0, 8, 0x1D, 0xA0, 0xEA, 0x01, 0, 0}
		if m.aptpl {
			b[3] |= 1
		}
	case 3:
		u32(m.gen)
		u32(uint32(48 * len(m.regs)))
		for _, r := range m.regs {
			u64(r.key)
			u32(0)
			f, t := byte(0), byte(0)
			if r.port == 0 {
				f |= 2
			}
			holder := m.resType != 0 && (mAllReg(m.resType) || r.coversNex(m.resNexus))
			if holder {
				f |= 1
				t = m.resType
			}
			b = append(b, f, t, 0, 0, 0, 0, 0, byte(r.port))
			u32(24)
			id := prmIni(r.ini)
			b = append(b, 4, 0, 0, 0, 0, 0, 0, 0)
			b = append(b, id[:]...)
		}
	}
	if len(b) > alloc {
		b = b[:alloc]
	}
	return good(b)
}

func validType(t byte) bool { return t == 1 || t == 3 || t == 5 || t == 6 || t == 7 || t == 8 }

func (m *prModel) prOut(n int, cdb, p []byte) mResult {
	sa, scope, typ := cdb[1]&0x1F, cdb[2]>>4, cdb[2]&0x0F
	if sa == 1 || sa == 4 || sa == 5 {
		if scope != 0 {
			return badCDB(2, 7)
		}
		if !validType(typ) {
			return badCDB(2, 3)
		}
	}
	plen := int(binary.BigEndian.Uint32(cdb[5:9]))
	if len(p) < plen {
		return plError
	}
	p = p[:plen]
	if len(p) < 24 {
		return plError
	}
	key, sakey := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
	if sa == 7 {
		return m.registerMove(n, p, key, sakey)
	}
	spec := p[20]&8 != 0
	all := p[20]&4 != 0 && (sa == 0 || sa == 6)
	aptpl := p[20]&1 != 0 && (sa == 0 || sa == 6)
	if spec && sa != 0 {
		return badParam(20, 3)
	}
	var tids []int // initiator indexes; 99: not a model initiator
	var tidOff []int
	if !spec {
		if len(p) != 24 {
			return plError
		}
	} else {
		if len(p) < 28 || int(binary.BigEndian.Uint32(p[24:])) != len(p)-28 {
			return plError
		}
		for off := 28; off < len(p); off += 24 {
			if p[off] != 4 || off+24 > len(p) {
				return badParam(off, -1)
			}
			var id scsi.PortID
			copy(id[:], p[off+8:off+24])
			ix := 99
			for i := 0; i < 3; i++ {
				if prmIni(i) == id {
					ix = i
				}
			}
			tids = append(tids, ix)
			tidOff = append(tidOff, off)
		}
	}
	me := m.regOf(n)
	switch sa {
	case 0, 6:
		// No APTPL refusal: this LU can save.
		if me >= 0 {
			if sa == 0 && key != m.regs[me].key {
				return conflictRes
			}
			if spec {
				return badParam(20, 3)
			}
			if sakey == 0 {
				m.dropReg(me)
			} else {
				m.regs[me].key = sakey
			}
		} else {
			if sa == 0 && key != 0 {
				return conflictRes
			}
			if sakey != 0 {
				myIni, myPort := prmNexus[n].ini, prmNexus[n].port
				if all {
					for _, r := range m.regs {
						if r.ini == myIni {
							return badParam(20, 2)
						}
					}
				}
				port := myPort
				if all {
					port = 0
				}
				add := []mReg{{sakey, myIni, port}}
				for k, ix := range tids {
					if ix == myIni {
						continue
					}
					if ix == 99 {
						// Not an initiator port of the model: the
						// generator never sends one.
						panic("unknown TransportID")
					}
					dup := false
					for _, a := range add {
						if a.ini == ix {
							dup = true
						}
					}
					if dup {
						continue
					}
					for _, r := range m.regs {
						if r.ini == ix && (all || r.port == 0 || r.port == myPort) {
							return badParam(tidOff[k], -1)
						}
					}
					add = append(add, mReg{sakey, ix, port})
				}
				m.regs = append(m.regs, add...)
			}
		}
		m.gen++
		m.aptpl = aptpl
		return good(nil)
	}
	if me < 0 || m.regs[me].key != key {
		return conflictRes
	}
	switch sa {
	case 1: // RESERVE
		if m.resType != 0 {
			if m.holds(n) && m.resType == typ {
				return good(nil)
			}
			return conflictRes
		}
		m.resType, m.resNexus = typ, nexOf(n)
	case 2: // RELEASE
		if !m.holds(n) {
			return good(nil)
		}
		if scope != 0 || typ != m.resType {
			return invalidRelRes
		}
		t := m.resType
		m.resType = 0
		if mRegOnly(t) || mAllReg(t) {
			m.uaFor(m.regs, n, 0x2A04)
		}
	case 3: // CLEAR
		m.uaFor(m.regs, n, 0x2A03)
		m.regs, m.resType = nil, 0
		m.gen++
	case 4, 5: // PREEMPT, PREEMPT AND ABORT
		ar := m.resType != 0 && mAllReg(m.resType)
		if sakey == 0 && !ar {
			return badParam(8, -1)
		}
		mine := m.regs[me]
		if m.resType != 0 && (ar && sakey == 0 || !ar && sakey == m.holderKey()) {
			old := m.resType
			var kept, lost []mReg
			for _, r := range m.regs {
				if r != mine && (ar || r.key == sakey) {
					lost = append(lost, r)
				} else {
					kept = append(kept, r)
				}
			}
			m.regs = kept
			m.resType, m.resNexus = typ, nexOf(n)
			m.uaFor(lost, n, 0x2A05)
			if old != typ {
				m.uaFor(m.regs, n, 0x2A04)
			}
		} else {
			var lost []mReg
			for i := 0; i < len(m.regs); {
				if m.regs[i].key == sakey {
					lost = append(lost, m.regs[i])
					m.dropReg(i)
					continue
				}
				i++
			}
			if len(lost) == 0 {
				return conflictRes
			}
			m.uaFor(lost, n, 0x2A05)
		}
		m.gen++
	}
	return good(nil)
}

func (m *prModel) registerMove(n int, p []byte, key, sakey uint64) mResult {
	unreg, aptpl := p[17]&2 != 0, p[17]&1 != 0
	rel := int(binary.BigEndian.Uint16(p[18:]))
	tlen := int(binary.BigEndian.Uint32(p[20:]))
	if tlen != len(p)-24 {
		return plError
	}
	if tlen < 24 || tlen%4 != 0 {
		return badParam(20, -1)
	}
	if p[24] != 4 {
		return badParam(24, -1)
	}
	if tlen != 24 {
		return badParam(20, -1)
	}
	var id scsi.PortID
	copy(id[:], p[32:48])
	to := -1
	for i := 0; i < 3; i++ {
		if prmIni(i) == id {
			to = i
		}
	}
	me := m.regOf(n)
	if me < 0 || m.regs[me].key != key {
		return conflictRes
	}
	if !m.holds(n) || mAllReg(m.resType) {
		return conflictRes
	}
	if sakey == 0 {
		return badParam(8, -1)
	}
	if rel != 1 && rel != 2 {
		return badParam(18, -1)
	}
	// The destination may be an I_T nexus no model initiator uses.
	dest := mNex{to, rel}
	j := -1
	for i, r := range m.regs {
		if r.coversNex(dest) {
			j = i
			break
		}
	}
	if dest == nexOf(n) || j == me {
		return badParam(24, -1)
	}
	if j >= 0 {
		m.regs[j].key = sakey
	} else {
		m.regs = append(m.regs, mReg{sakey, to, rel})
	}
	m.resNexus = dest
	if unreg {
		m.dropReg(m.regOf(n))
	}
	m.gen++
	m.aptpl = aptpl
	return good(nil)
}

// The generator.

// genCmd makes a random command for nexus n. It peeks at the model only
// to send the nexus's own registered key half of the time, so that the
// service actions get past the key check often enough to reach their
// deeper rules.
func genCmd(rng *rand.Rand, m *prModel, n int) mCmd {
	keys := []uint64{0, 0, 1, 2, 3, 0xAA}
	key := func() uint64 {
		if i := m.regOf(n); i >= 0 && rng.IntN(2) == 0 {
			return m.regs[i].key
		}
		return keys[rng.IntN(len(keys))]
	}
	sakey := func() uint64 { return keys[rng.IntN(len(keys))] }
	types := []byte{1, 3, 5, 6, 7, 8, 1, 3, 5, 6, 7, 8, 0, 2}
	switch r := rng.IntN(100); {
	case r < 12:
		sa := byte(rng.IntN(4))
		if rng.IntN(40) == 0 {
			sa = 4 + byte(rng.IntN(28))
		}
		alloc := []uint16{4096, 4096, 8, 16, 20, 30, 60}[rng.IntN(7)]
		return mCmd{kind: kPRIn, cdb: scsitest.PRIn(sa, alloc), inLen: int(alloc)}
	case r < 55:
		// Registrations and reservations often, so that the others have
		// something to act on.
		sa := []byte{0, 0, 6, 6, 1, 1, 1, 2, 3, 4, 5, 7, 7, 7}[rng.IntN(14)]
		if rng.IntN(50) == 0 {
			sa = 8 + byte(rng.IntN(24))
		}
		scope := byte(0)
		if rng.IntN(30) == 0 {
			scope = 1
		}
		typ := types[rng.IntN(len(types))]
		var param []byte
		if sa == 7 {
			param = scsitest.RegisterMoveParams{Key: key(), SAKey: sakey(), Unreg: rng.IntN(3) == 0, APTPL: rng.IntN(4) == 0,
				RelativePort: uint16(1 + rng.IntN(2)), To: prmIni(rng.IntN(3))}.Bytes()
			if rng.IntN(20) == 0 {
				param[24] = 0x05 // iSCSI: not SRP
			}
			if rng.IntN(30) == 0 {
				binary.BigEndian.PutUint16(param[18:], 3)
			}
		} else {
			p := scsitest.PROutParams{Key: key(), SAKey: sakey(), AllTgPt: rng.IntN(5) == 0, APTPL: rng.IntN(4) == 0}
			if rng.IntN(6) == 0 {
				p.SpecIPT = true
				for i := rng.IntN(3); i >= 0; i-- {
					p.TransportIDs = append(p.TransportIDs, prmIni(rng.IntN(3)))
				}
			}
			param = p.Bytes()
			if p.SpecIPT && rng.IntN(8) == 0 {
				param[28] = 0x01 // a Fibre Channel TransportID
			}
		}
		plen := uint32(len(param))
		switch rng.IntN(40) {
		case 0:
			plen -= uint32(1 + rng.IntN(4))
		case 1:
			param = append(param, 0, 0, 0, 0)
			plen += 4
		}
		return mCmd{kind: kPROut, cdb: scsitest.PROut(sa, scope, typ, plen), param: param}
	case r < 70:
		lba, n := uint32(rng.IntN(prmBlocks)), uint16(1+rng.IntN(2))
		return mCmd{kind: kRead, cdb: scsitest.RW10(0x28, 0, lba, n), inLen: int(n) * prmBS}
	case r < 82:
		lba, n := uint32(rng.IntN(prmBlocks)), uint16(1+rng.IntN(2))
		data := make([]byte, int(n)*prmBS)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		return mCmd{kind: kWrite, cdb: scsitest.RW10(0x2A, 0, lba, n), param: data}
	case r < 85:
		return mCmd{kind: kTUR, cdb: scsitest.TestUnitReady()}
	case r < 90:
		return mCmd{kind: kReqSense, cdb: scsitest.RequestSense(false, 18), inLen: 18}
	case r < 97:
		k := kReserve6 + rng.IntN(4)
		cdb := map[int][]byte{kReserve6: scsitest.Reserve6(), kRelease6: scsitest.Release6(), kReserve10: scsitest.Reserve10(), kRelease10: scsitest.Release10()}[k]
		return mCmd{kind: k, cdb: cdb}
	case r < 99:
		return mCmd{kind: kLUReset}
	}
	return mCmd{kind: kRelogin}
}

func TestPRModel(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { prModelRun(t, seed) })
	}
}

func prModelRun(t *testing.T, seed uint64) {
	store, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: prmBlocks * prmBS, BlockSize: prmBS})
	if err != nil {
		t.Fatal(err)
	}
	var saved []byte
	lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "m", Store: store, SavePR: func(b []byte) error { saved = b; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer lu.Close()
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	ports := [3]*scsi.Port{nil, tgt.AddPort(prmPorts[1], "p1"), tgt.AddPort(prmPorts[2], "p2")}
	if err := tgt.AddLU(lu); err != nil {
		t.Fatal(err)
	}
	m := &prModel{spc2: -1, image: make([]byte, prmBlocks*prmBS)}
	var nex [prmNexuses]*scsi.Nexus
	var ini [prmNexuses]*scsitest.Direct
	login := func(n int) {
		id := scsi.NexusID{Initiator: prmIni(prmNexus[n].ini), Target: prmPorts[prmNexus[n].port]}
		x, err := tgt.Attach(id, ports[prmNexus[n].port])
		if err != nil {
			t.Fatal(err)
		}
		nex[n], ini[n] = x, scsitest.NewDirect(x)
		if m.seen[n] {
			m.ua[n] = []uint16{0x2907}
		} else {
			m.ua[n] = []uint16{0x2900}
		}
		m.seen[n] = true
	}
	for n := range nex {
		login(n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5052))
	counts := map[string]int{}
	var history []string
	note := func(f string, a ...any) {
		history = append(history, fmt.Sprintf(f, a...))
		if len(history) > 30 {
			history = history[1:]
		}
	}
	for op := 0; op < prmOps; op++ {
		n := rng.IntN(prmNexuses)
		c := genCmd(rng, m, n)
		switch c.kind {
		case kLUReset:
			if r := nex[n].LUReset(scsi.EncodeLUN(0), nex[n].Mark()); r != scsi.TMFComplete {
				t.Fatalf("op %d: LOGICAL UNIT RESET: %v", op, r)
			}
			for x := range m.ua {
				m.addUA(x, 0x2903)
			}
			m.spc2 = -1
			counts["LU RESET"]++
			note("op %d: nexus %d LOGICAL UNIT RESET", op, n)
			continue
		case kRelogin:
			tgt.Detach(nex[n])
			if m.spc2 == n {
				m.spc2 = -1
			}
			login(n)
			counts["logout+login"]++
			note("op %d: nexus %d logout and login", op, n)
			continue
		}
		want := m.expect(n, c)
		resp, err := ini[n].Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: c.cdb, DataOut: c.param, InLen: c.inLen})
		if err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
		if c.kind == kPROut || c.kind == kPRIn {
			note("op %d: nexus %d CDB % x param % x: status %#x sense % x", op, n, c.cdb, c.param, resp.Status, resp.Sense)
		}
		if resp.Status != want.status || !bytes.Equal(resp.Sense, want.sense) || !bytes.Equal(resp.Data, want.data) {
			t.Fatalf("history:\n%s\nop %d: nexus %d CDB % x param % x\n got status %#x sense % x\n     data % x\nwant status %#x sense % x\n     data % x",
				strings.Join(history, "\n"), op, n, c.cdb, c.param, resp.Status, resp.Sense, resp.Data, want.status, want.sense, want.data)
		}
		counts[fmt.Sprintf("%02x/%d status %#x", c.cdb[0], c.cdb[1]&0x1F, uint8(want.status))]++
	}
	// The saved state, when APTPL is on, is the model's state.
	if m.aptpl {
		s, err := scsi.ParsePRState(saved)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Registrations) != len(m.regs) {
			t.Fatalf("saved %d registrations, model has %d", len(s.Registrations), len(m.regs))
		}
	}
	t.Logf("%d commands; by opcode/service action and status: %v", prmOps, counts)
	for _, k := range []string{"5f/0 status 0x0", "5f/4 status 0x0", "5f/5 status 0x0", "5f/7 status 0x0", "5f/2 status 0x0", "5f/1 status 0x18", "2a/0 status 0x18"} {
		if counts[k] == 0 {
			t.Errorf("the generator never produced %s", k)
		}
	}
}
