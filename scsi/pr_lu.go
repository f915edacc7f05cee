package scsi

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// prState is a logical unit's persistent reservation state (prData) with
// what the command path needs to check it without a lock: view, an
// immutable snapshot published after every change, nil while there is no
// registration and no reservation of either kind. The LU owns it; no
// transport does, so a LUN shared by a Xen guest and an RDMA host has one
// reservation (the design brief's "Identity and sharing").
type prState struct {
	// mu serialises the PERSISTENT RESERVE OUT, RESERVE and RELEASE
	// commands and guards d.
	mu   sync.Mutex
	d    prData
	view atomic.Pointer[prView]
	// save makes the state durable when APTPL is in force; nil: APTPL
	// is not supported. saved is what it wrote last.
	save  func([]byte) error
	saved []byte
}

// prView is the immutable snapshot the conflict check reads.
type prView struct {
	regs       []prReg
	rtype      byte
	holder     NexusID
	spc2       bool
	spc2Holder NexusID
}

// publish installs a snapshot of p.d; p.mu is held.
func (p *prState) publish() {
	d := &p.d
	if len(d.regs) == 0 && d.rtype == 0 && !d.spc2 {
		p.view.Store(nil)
		return
	}
	p.view.Store(&prView{regs: append([]prReg(nil), d.regs...), rtype: d.rtype, holder: d.holder, spc2: d.spc2, spc2Holder: d.spc2Holder})
}

// prClass is how a command fares in the presence of reservations (SPC-4
// 5.12.1 and SBC-3 4.18, the tables of commands allowed in the presence
// of various reservations), for an I_T nexus that does
// not hold the persistent reservation.
type prClass uint8

const (
	// prcWrite: conflict, except from a registered I_T nexus under a
	// registrants-only or all-registrants reservation. The zero value, so
	// that a command not classified conflicts.
	prcWrite prClass = iota
	// prcRead: allowed under Write Exclusive types; under Exclusive
	// Access types only from a registered I_T nexus of a registrants-only
	// or all-registrants reservation.
	prcRead
	// prcAllowed: allowed whatever the reservation.
	prcAllowed
	// prcStartStop: START STOP UNIT, allowed with START=1 and POWER
	// CONDITION=0, a write otherwise.
	prcStartStop
	// prcPrevent: PREVENT ALLOW MEDIUM REMOVAL, allowed with PREVENT=0, a
	// write otherwise.
	prcPrevent
	// prcPRIn and prcPROut: PERSISTENT RESERVE IN and OUT (SPC-4 table
	// 64 for the latter).
	prcPRIn
	prcPROut
	// prcSPC2: RESERVE(6)/(10) and RELEASE(6)/(10), which settle their
	// interplay with persistent reservations themselves (SPC-4 5.12.3).
	prcSPC2
)

// effectiveClass resolves the classes that depend on the CDB.
func effectiveClass(op *opInfo, cdb []byte) prClass {
	switch op.pr {
	case prcStartStop:
		if cdb[4]&0x01 != 0 && cdb[4]>>4 == 0 {
			return prcAllowed
		}
		return prcWrite
	case prcPrevent:
		if cdb[4]&0x03 == 0 {
			return prcAllowed
		}
		return prcWrite
	}
	return op.pr
}

// check is the reservation conflict check of every command (SPC-4 5.12.1
// and its table of commands allowed in the presence of reservations, SBC-3
// 4.18, and SPC-2 5.5.1 for SPC-2 reservations). It
// allocates nothing.
func (v *prView) check(c *Command, op *opInfo) error {
	id := c.nexus.id
	cls := effectiveClass(op, c.CDB)
	if v.spc2 {
		// SPC-2 5.5.1: while an SPC-2 reservation is held, every
		// PERSISTENT RESERVE IN and OUT conflicts, whoever sends it.
		if cls == prcPRIn || cls == prcPROut {
			return errResConflict
		}
		if id == v.spc2Holder || op.flags&opSPC2OK != 0 || cls == prcAllowed && op.pr != prcAllowed {
			// The holder; INQUIRY, REPORT LUNS, REQUEST SENSE, READ
			// CAPACITY; START STOP UNIT with START=1, PREVENT ALLOW
			// MEDIUM REMOVAL with PREVENT=0 (SPC-2 table B.1).
			return nil
		}
		if op.pr == prcSPC2 && op.code != opReserve6 && op.code != opReserve10 {
			return nil // RELEASE from another I_T nexus: GOOD, no change
		}
		return errResConflict
	}
	if v.rtype == 0 {
		return nil // registrations only: nothing conflicts
	}
	registered := false
	for i := range v.regs {
		if v.regs[i].covers(id) {
			registered = true
			break
		}
	}
	all := allRegistrants(v.rtype)
	if all && registered || !all && id == v.holder {
		return nil // a holder
	}
	// A registered non-holder is as good as a holder for the media under
	// registrants-only and all-registrants types.
	rr := registrantsOnly(v.rtype) || all
	switch cls {
	case prcAllowed, prcPRIn, prcSPC2:
		return nil
	case prcRead:
		if writeExclusive(v.rtype) || rr && registered {
			return nil
		}
	case prcPROut:
		// SPC-4 5.12.1, the PERSISTENT RESERVE OUT service actions
		// allowed in the presence of reservations.
		switch c.CDB[1] & 0x1F {
		case proRegister, proRegisterIgnore:
			return nil
		case proClear, proPreempt, proPreemptAbort, proRelease:
			if registered {
				return nil
			}
		}
	default: // prcWrite
		if rr && registered {
			return nil
		}
	}
	return errResConflict
}

// registerPR adds PERSISTENT RESERVE IN and OUT and the SPC-2 RESERVE and
// RELEASE commands.
func registerPR(t *opTable, lu *LU) {
	in := []struct {
		sa   byte
		name string
	}{{priReadKeys, "READ KEYS"}, {priReadReservation, "READ RESERVATION"}, {priReportCaps, "REPORT CAPABILITIES"}, {priReadFullStatus, "READ FULL STATUS"}}
	for _, s := range in {
		t.add(&opInfo{name: "PERSISTENT RESERVE IN " + s.name, code: opPRIn, sa: uint16(s.sa), hasSA: true,
			usage: cdb(0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), pr: prcPRIn, fn: lu.prIn})
	}
	out := []struct {
		sa   byte
		name string
	}{{proRegister, "REGISTER"}, {proReserve, "RESERVE"}, {proRelease, "RELEASE"}, {proClear, "CLEAR"},
		{proPreempt, "PREEMPT"}, {proPreemptAbort, "PREEMPT AND ABORT"}, {proRegisterIgnore, "REGISTER AND IGNORE EXISTING KEY"},
		{proRegisterMove, "REGISTER AND MOVE"}}
	for _, s := range out {
		t.add(&opInfo{name: "PERSISTENT RESERVE OUT " + s.name, code: opPROut, sa: uint16(s.sa), hasSA: true,
			usage: cdb(0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0), pr: prcPROut, fn: lu.prOut})
	}
	// RESERVE(6) and RELEASE(6): every field but the operation code is
	// obsolete. RESERVE(10) and RELEASE(10): third-party reservations
	// (3RDPTY, LONGID, THIRD-PARTY DEVICE ID) are not supported; the
	// PARAMETER LIST LENGTH is ignored without them (SPC-2 7.20, 7.22).
	t.add(&opInfo{name: "RESERVE(6)", code: opReserve6, usage: cdb(0, 0, 0, 0, 0), pr: prcSPC2, fn: lu.reserveSPC2})
	t.add(&opInfo{name: "RELEASE(6)", code: opRelease6, usage: cdb(0, 0, 0, 0, 0), pr: prcSPC2, fn: lu.releaseSPC2})
	t.add(&opInfo{name: "RESERVE(10)", code: opReserve10, usage: cdb(0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), pr: prcSPC2, fn: lu.reserveSPC2})
	t.add(&opInfo{name: "RELEASE(10)", code: opRelease10, usage: cdb(0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), pr: prcSPC2, fn: lu.releaseSPC2})
}

// SPC-4 and SPC-2 operation codes of the reservation commands.
const (
	opReserve6  = 0x16
	opRelease6  = 0x17
	opReserve10 = 0x56
	opRelease10 = 0x57
	opPRIn      = 0x5E
	opPROut     = 0x5F
)

// prIn is PERSISTENT RESERVE IN (SPC-4 6.15).
func (lu *LU) prIn(c *Command) error {
	alloc := int(binary.BigEndian.Uint16(c.CDB[7:9]))
	sa := c.CDB[1] & 0x1F
	var ports []*Port
	if sa == priReadFullStatus && lu.target != nil {
		ports = lu.target.portList()
	}
	p := &lu.pr
	p.mu.Lock()
	d := &p.d
	w := newResp(c, alloc)
	switch sa {
	case priReadKeys: // 6.15.2
		w.u32(d.gen)
		w.u32(uint32(8 * len(d.regs)))
		for _, r := range d.regs {
			w.u64(r.key)
		}
	case priReadReservation: // 6.15.3
		w.u32(d.gen)
		if d.rtype == 0 {
			w.u32(0)
			break
		}
		w.u32(16)
		if allRegistrants(d.rtype) {
			w.u64(0) // SPC-4 5.12.10: the key is zero for these types
		} else {
			w.u64(d.holderKey())
		}
		w.zeros(4)                      // obsolete
		w.byte1(0)                      // reserved
		w.byte1(prScopeLU<<4 | d.rtype) // SCOPE | TYPE
		w.zeros(2)                      // obsolete
	case priReportCaps: // 6.15.4
		w.u16(8)
		caps := byte(0x10 | 0x08 | 0x04) // CRH, SIP_C, ATP_C
		if p.save != nil {
			caps |= 0x01 // PTPL_C
		}
		w.byte1(caps)
		// TMV; ALLOW COMMANDS 010b: TEST UNIT READY through Write
		// Exclusive and Exclusive Access, and the read-class SPC
		// commands (MODE SENSE, REPORT SUPPORTED OPERATION CODES, ...)
		// through Write Exclusive.
		b3 := byte(0x80 | 0x20)
		if d.aptpl {
			b3 |= 0x01 // PTPL_A
		}
		w.byte1(b3)
		w.byte1(0x80 | 0x40 | 0x20 | 0x08 | 0x02) // WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX
		w.byte1(0x01)                             // EX_AC_AR
		w.zeros(2)
	case priReadFullStatus: // 6.15.5
		w.u32(d.gen)
		w.u32(uint32(len(d.regs) * (24 + TransportIDLen)))
		for _, r := range d.regs {
			w.u64(r.key)
			w.zeros(4)
			holder := d.rtype != 0 && (allRegistrants(d.rtype) || r.covers(d.holder))
			flags := byte(0)
			if r.allTgPt {
				flags |= 0x02
			}
			if holder {
				flags |= 0x01
			}
			w.byte1(flags)
			if holder {
				w.byte1(prScopeLU<<4 | d.rtype)
			} else {
				w.byte1(0)
			}
			w.zeros(4)
			rel := uint16(0)
			if !r.allTgPt {
				for _, pt := range ports {
					if pt.ID == r.tport {
						rel = pt.Relative
					}
				}
			}
			w.u16(rel)
			w.u32(TransportIDLen)
			tid := SRPTransportID(r.init)
			w.bytes(tid[:])
		}
	}
	p.mu.Unlock()
	w.finish(c, alloc)
	return nil
}

// prOut is PERSISTENT RESERVE OUT (SPC-4 6.16). The new state is made
// durable before it takes effect: if saving fails, the command fails and
// nothing changed.
func (lu *LU) prOut(c *Command) error {
	cdb := c.CDB
	sa := cdb[1] & 0x1F
	r := prOutReq{scope: cdb[2] >> 4, rtype: cdb[2] & 0x0F}
	switch sa {
	case proReserve, proPreempt, proPreemptAbort:
		if r.scope != prScopeLU {
			return InvalidCDB(2, 7)
		}
		if !validPRType(r.rtype) {
			return InvalidCDB(2, 3)
		}
	}
	plen := int(binary.BigEndian.Uint32(cdb[5:9]))
	c.OutWant = plen
	if len(c.DataOut) < plen {
		return ErrParamListLength
	}
	if err := decodePROut(sa, c.DataOut[:plen], &r); err != nil {
		return err
	}
	p := &lu.pr
	self := c.nexus.id
	var ports []*Port
	if sa == proRegisterMove && lu.target != nil {
		ports = lu.target.portList()
	}
	portOf := func(rel uint16) (PortID, error) {
		for _, pt := range ports {
			if pt.Relative == rel {
				return pt.ID, nil
			}
		}
		return PortID{}, errNoPort
	}
	p.mu.Lock()
	next := p.d.clone()
	e, err := next.out(self, &r, p.save != nil, portOf)
	if err == nil {
		err = p.commit(next)
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	lu.prApply(c.nexus, e)
	return nil
}

// commit makes next the state: saved first if APTPL is or was in force
// and the persistent part changed; p.mu is held.
func (p *prState) commit(next prData) error {
	if p.save != nil && (next.aptpl || p.d.aptpl) {
		enc := next.encodeState()
		if string(enc) != string(p.saved) {
			if err := p.save(enc); err != nil {
				return ErrInternalFailure
			}
			p.saved = enc
		}
	}
	p.d = next
	p.publish()
	return nil
}

// prApply performs a service action's effects: unit attentions for the
// other I_T nexuses the registrations cover, then the aborts of PREEMPT
// AND ABORT (SPC-4 5.12.11.2.6), returning once no aborted command moves
// data any more. With TAS 0 (the control mode page) the aborted commands
// get no status, and an I_T nexus that lost commands gets COMMANDS CLEARED
// BY ANOTHER INITIATOR (SAM-5 5.6), as for CLEAR TASK SET.
func (lu *LU) prApply(self *Nexus, e prEffects) {
	if len(e.ua) > 0 {
		lu.mu.Lock()
		for x := range lu.itls {
			id := x.nexus.id
			if id == self.id {
				continue
			}
			for _, u := range e.ua {
				if u.reg.covers(id) {
					x.ua.add(u.asc)
				}
			}
		}
		lu.mu.Unlock()
	}
	if len(e.abort) > 0 {
		hit := map[*Nexus]bool{}
		n := lu.tasks.abort(func(c *Command) bool {
			id := c.nexus.id
			if id == self.id {
				return false
			}
			for i := range e.abort {
				if e.abort[i].covers(id) {
					hit[c.nexus] = true
					return true
				}
			}
			return false
		})
		if n > 0 {
			lu.tasks.waitAborted()
			lu.mu.Lock()
			for x := range lu.itls {
				if hit[x.nexus] {
					x.ua.add(ASCCommandsClearedByAnother)
				}
			}
			lu.mu.Unlock()
		}
	}
}

// reserveSPC2 is RESERVE(6) and RESERVE(10) (SPC-2 7.21, 7.22; SPC-4
// 5.12.3).
func (lu *LU) reserveSPC2(c *Command) error {
	p := &lu.pr
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.d.reserveSPC2(c.nexus.id)
	p.publish()
	return err
}

// releaseSPC2 is RELEASE(6) and RELEASE(10) (SPC-2 7.19, 7.20; SPC-4
// 5.12.3).
func (lu *LU) releaseSPC2(c *Command) error {
	p := &lu.pr
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.d.releaseSPC2(c.nexus.id)
	p.publish()
	return err
}

// dropSPC2 releases the SPC-2 reservation on a logical unit reset
// (lost == nil) or on the loss of its holder's I_T nexus (SPC-2 5.5.1).
func (lu *LU) dropSPC2(lost *NexusID) {
	p := &lu.pr
	p.mu.Lock()
	if p.d.dropSPC2(lost) {
		p.publish()
	}
	p.mu.Unlock()
}

// restorePR installs a saved state (APTPL) at start.
func (lu *LU) restorePR(saved []byte) error {
	d, err := parsePRData(saved)
	if err != nil {
		return err
	}
	p := &lu.pr
	p.mu.Lock()
	p.d = d
	p.saved = append([]byte(nil), saved...)
	p.publish()
	p.mu.Unlock()
	return nil
}

// PRState returns the logical unit's persistent reservation state.
func (lu *LU) PRState() *PRState {
	p := &lu.pr
	p.mu.Lock()
	d := p.d.clone()
	p.mu.Unlock()
	s := &PRState{APTPL: d.aptpl}
	for _, r := range d.regs {
		s.Registrations = append(s.Registrations, PRRegistration{Key: r.key, Initiator: r.init, Target: r.tport, AllTargetPorts: r.allTgPt})
	}
	if d.rtype != 0 {
		s.Reservation = &PRReservation{Type: d.rtype, Holder: d.holder}
	}
	return s
}
