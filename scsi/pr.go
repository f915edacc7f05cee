package scsi

import "errors"

// Persistent reservations (SPC-4 5.12) as a pure state machine: prData
// holds a logical unit's registrations and reservation, and its methods
// apply one PERSISTENT RESERVE OUT service action (or an SPC-2 RESERVE or
// RELEASE) to it. They do no I/O, take no locks and start no goroutines;
// what has to happen outside the state — unit attentions to establish,
// tasks to abort — is returned as prEffects for the caller to perform,
// after it has made the new state durable (APTPL). pr_lu.go is that
// caller.

// Persistent reservation types (SPC-4 6.15.3.4).
const (
	prWE   byte = 0x1 // Write Exclusive
	prEA   byte = 0x3 // Exclusive Access
	prWERO byte = 0x5 // Write Exclusive – Registrants Only
	prEARO byte = 0x6 // Exclusive Access – Registrants Only
	prWEAR byte = 0x7 // Write Exclusive – All Registrants
	prEAAR byte = 0x8 // Exclusive Access – All Registrants
)

// prScopeLU is the only scope (SPC-4 6.15.3.3): LU_SCOPE.
const prScopeLU byte = 0x0

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2).
const (
	proRegister       byte = 0x00
	proReserve        byte = 0x01
	proRelease        byte = 0x02
	proClear          byte = 0x03
	proPreempt        byte = 0x04
	proPreemptAbort   byte = 0x05
	proRegisterIgnore byte = 0x06
	proRegisterMove   byte = 0x07
)

// PERSISTENT RESERVE IN service actions (SPC-4 6.15.1).
const (
	priReadKeys        byte = 0x00
	priReadReservation byte = 0x01
	priReportCaps      byte = 0x02
	priReadFullStatus  byte = 0x03
)

// maxRegistrations bounds a logical unit's registrations; beyond it a
// registration fails with INSUFFICIENT REGISTRATION RESOURCES (SPC-4
// 5.12.7).
const maxRegistrations = 256

func validPRType(t byte) bool {
	switch t {
	case prWE, prEA, prWERO, prEARO, prWEAR, prEAAR:
		return true
	}
	return false
}

// allRegistrants reports the all-registrants types, whose holders are
// every registered I_T nexus (SPC-4 5.12.10).
func allRegistrants(t byte) bool { return t == prWEAR || t == prEAAR }

// registrantsOnly reports the registrants-only types.
func registrantsOnly(t byte) bool { return t == prWERO || t == prEARO }

// writeExclusive reports the types that let every I_T nexus read.
func writeExclusive(t byte) bool { return t == prWE || t == prWERO || t == prWEAR }

// prReg is one registration: a reservation key for the I_T nexus
// (initiator port, target port), or with ALL_TG_PT for the initiator port
// through every target port (SPC-4 5.12.7).
type prReg struct {
	key     uint64
	init    PortID
	tport   PortID
	allTgPt bool
}

// covers reports whether the registration is the one of nexus id.
func (r *prReg) covers(id NexusID) bool {
	return r.init == id.Initiator && (r.allTgPt || r.tport == id.Target)
}

// prData is the persistent reservation state of one logical unit, and
// its SPC-2 reservation, which SPC-4 5.12.3 makes interact with it.
type prData struct {
	// gen is the PRgeneration counter (SPC-4 6.15.2): 32 bits, wrapping,
	// zero at power on.
	gen uint32
	// regs are the registrations in the order they were made (READ KEYS
	// and READ FULL STATUS report them in this order).
	regs []prReg
	// rtype is the persistent reservation's type; 0 when there is none.
	rtype byte
	// holder is the I_T nexus holding a reservation that is not of an
	// all-registrants type.
	holder NexusID
	// aptpl is the last valid APTPL bit received (SPC-4 5.12.5): the
	// state persists through a power loss.
	aptpl bool

	// spc2 is an SPC-2 reservation (RESERVE(6)/(10)) held by spc2Holder.
	spc2       bool
	spc2Holder NexusID
}

func (d *prData) clone() prData {
	c := *d
	c.regs = append([]prReg(nil), d.regs...)
	return c
}

// find returns the index of the registration of nexus id, or -1.
func (d *prData) find(id NexusID) int {
	for i := range d.regs {
		if d.regs[i].covers(id) {
			return i
		}
	}
	return -1
}

// initiatorRegistered reports whether any registration is of initiator
// port ini, through any target port.
func (d *prData) initiatorRegistered(ini PortID) bool {
	for i := range d.regs {
		if d.regs[i].init == ini {
			return true
		}
	}
	return false
}

// isHolder reports whether nexus id is a persistent reservation holder
// (SPC-4 5.12.10): every registered I_T nexus for an all-registrants
// type, the reserving I_T nexus for the others.
func (d *prData) isHolder(id NexusID) bool {
	if d.rtype == 0 {
		return false
	}
	if allRegistrants(d.rtype) {
		return d.find(id) >= 0
	}
	return d.holder == id
}

// holderKey is the reservation key under which a reservation that is not
// of an all-registrants type is held: the holder's registered key.
func (d *prData) holderKey() uint64 {
	if i := d.find(d.holder); i >= 0 {
		return d.regs[i].key
	}
	return 0
}

func (d *prData) release() {
	d.rtype = 0
	d.holder = NexusID{}
}

// remove deletes registration i and releases a reservation that loses
// its holder with it (SPC-4 5.12.11.2.3, implicit release): the remaining
// registrants of a registrants-only reservation are told RESERVATIONS
// RELEASED (an all-registrants one goes with its last registrant, and no
// one is left to tell).
func (d *prData) remove(i int, e *prEffects) {
	r := d.regs[i]
	d.regs = append(d.regs[:i], d.regs[i+1:]...)
	switch {
	case d.rtype == 0:
	case allRegistrants(d.rtype):
		if len(d.regs) == 0 {
			d.release()
		}
	case r.covers(d.holder):
		t := d.rtype
		d.release()
		if registrantsOnly(t) {
			e.uaAll(d.regs, ASCReservationsReleased)
		}
	}
}

// prOutReq is a decoded PERSISTENT RESERVE OUT command: the CDB's service
// action, scope and type, and the parameter list.
type prOutReq struct {
	sa, scope, rtype byte
	key, saKey       uint64
	specIPT, allTgPt bool
	aptpl            bool
	// tids are the initiator ports of the SPEC_I_PT TransportIDs, and
	// tidOff the offset of each in the parameter list (for the field
	// pointer of an error about it).
	tids   []PortID
	tidOff []int
	// REGISTER AND MOVE.
	unreg   bool
	relPort uint16
	moveTo  PortID
}

// prUA is a unit attention for every I_T nexus a registration covers.
type prUA struct {
	reg prReg
	asc ASC
}

// prEffects is what applying a service action asks of the caller: unit
// attentions for registered I_T nexuses other than the one the command
// came from, and the preempted registrations whose I_T nexuses' tasks a
// PREEMPT AND ABORT aborts.
type prEffects struct {
	ua    []prUA
	abort []prReg
}

func (e *prEffects) uaAll(regs []prReg, asc ASC) {
	for _, r := range regs {
		e.ua = append(e.ua, prUA{reg: r, asc: asc})
	}
}

// errResConflict is RESERVATION CONFLICT status; as a shared value it
// costs the command path no allocation.
var errResConflict error = StatusError(StatusReservationConflict)

// Sense data of the persistent reservation errors.
var (
	// ErrInvalidRelease is INVALID RELEASE OF PERSISTENT RESERVATION
	// (SPC-4 5.12.11.2.2).
	ErrInvalidRelease = Sense(IllegalRequest, ASCInvalidRelease)
	// ErrInsufficientRegRes is INSUFFICIENT REGISTRATION RESOURCES
	// (SPC-4 5.12.7).
	ErrInsufficientRegRes = Sense(IllegalRequest, ASCInsufficientRegRes)
)

// errNoPort is returned by a relative-port resolver that knows no such
// port.
var errNoPort = errors.New("scsi: no such relative target port")

// out applies a PERSISTENT RESERVE OUT service action from nexus self to
// d. ptplCapable tells whether APTPL=1 can be honoured; port resolves a
// relative target port identifier (REGISTER AND MOVE). On error d is left
// as it was only if the caller applied out to a clone: out may have
// changed it part way.
//
// Reference: SPC-4 5.12.7 (registering), 5.12.8 (registering and moving),
// 5.12.9 (reserving), 5.12.11 (releasing, preempting, clearing), 6.16.
func (d *prData) out(self NexusID, r *prOutReq, ptplCapable bool, port func(rel uint16) (PortID, error)) (prEffects, error) {
	var e prEffects
	switch r.sa {
	case proRegister, proRegisterIgnore:
		return e, d.register(self, r, ptplCapable, &e)
	case proRegisterMove:
		return e, d.registerMove(self, r, ptplCapable, port, &e)
	}
	// Every other service action comes through a registered I_T nexus
	// with its registered key (SPC-4 6.16.3: the reservation key is
	// verified regardless of the service action).
	i := d.find(self)
	if i < 0 || d.regs[i].key != r.key {
		return e, errResConflict
	}
	switch r.sa {
	case proReserve:
		return e, d.reserve(self, r)
	case proRelease:
		return d.releaseBy(self, r)
	case proClear:
		e.uaAll(d.regs, ASCReservationsPreempted)
		d.regs = nil
		d.release()
		d.gen++
		return e, nil
	case proPreempt, proPreemptAbort:
		return d.preempt(self, i, r)
	}
	return e, InvalidCDB(1, 4)
}

// register is REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4
// 5.12.7, tables 57 and 58).
func (d *prData) register(self NexusID, r *prOutReq, ptplCapable bool, e *prEffects) error {
	if r.aptpl && !ptplCapable {
		return InvalidParam(20, 0)
	}
	ignore := r.sa == proRegisterIgnore
	i := d.find(self)
	if i >= 0 {
		if !ignore && r.key != d.regs[i].key {
			return errResConflict
		}
		if r.specIPT {
			// SPEC_I_PT applies to an unregistered I_T nexus only.
			return InvalidParam(20, 3)
		}
		if r.saKey == 0 {
			d.remove(i, e)
		} else {
			d.regs[i].key = r.saKey
		}
		d.gen++
		d.aptpl = r.aptpl
		return nil
	}
	if !ignore && r.key != 0 {
		return errResConflict
	}
	if r.saKey == 0 {
		// Nothing to register or unregister: GOOD, no change beyond the
		// generation and the APTPL setting.
		d.gen++
		d.aptpl = r.aptpl
		return nil
	}
	if r.allTgPt && d.initiatorRegistered(self.Initiator) {
		// The initiator port is registered through another target port;
		// an ALL_TG_PT registration would register that I_T nexus twice.
		return InvalidParam(20, 2)
	}
	add := []prReg{{key: r.saKey, init: self.Initiator, tport: self.Target, allTgPt: r.allTgPt}}
	for k, tid := range r.tids {
		if tid == self.Initiator {
			continue // the sending I_T nexus is registered anyway
		}
		n := NexusID{Initiator: tid, Target: self.Target}
		dup := false
		for _, a := range add {
			if a.covers(n) {
				dup = true
			}
		}
		if dup {
			continue
		}
		if d.find(n) >= 0 || r.allTgPt && d.initiatorRegistered(tid) {
			// SPC-4 5.12.7: a TransportID of a registered I_T nexus.
			return InvalidParam(r.tidOff[k], -1)
		}
		add = append(add, prReg{key: r.saKey, init: tid, tport: self.Target, allTgPt: r.allTgPt})
	}
	if len(d.regs)+len(add) > maxRegistrations {
		return ErrInsufficientRegRes
	}
	d.regs = append(d.regs, add...)
	d.gen++
	d.aptpl = r.aptpl
	return nil
}

// reserve is RESERVE (SPC-4 5.12.9).
func (d *prData) reserve(self NexusID, r *prOutReq) error {
	if d.rtype != 0 {
		if d.isHolder(self) && d.rtype == r.rtype {
			return nil // the same reservation again: no change
		}
		return errResConflict
	}
	d.rtype = r.rtype
	d.holder = self
	return nil
}

// releaseBy is RELEASE (SPC-4 5.12.11.2.2).
func (d *prData) releaseBy(self NexusID, r *prOutReq) (prEffects, error) {
	var e prEffects
	if !d.isHolder(self) {
		return e, nil // no reservation, or not the holder: GOOD, no change
	}
	if r.scope != prScopeLU || r.rtype != d.rtype {
		return e, ErrInvalidRelease
	}
	t := d.rtype
	d.release()
	if registrantsOnly(t) || allRegistrants(t) {
		e.uaAll(d.regs, ASCReservationsReleased)
	}
	return e, nil
}

// preempt is PREEMPT and PREEMPT AND ABORT (SPC-4 5.12.11.2.4-5.12.11.2.6): i is the preempting I_T nexus's registration.
func (d *prData) preempt(self NexusID, i int, r *prOutReq) (prEffects, error) {
	var e prEffects
	abort := r.sa == proPreemptAbort
	ar := d.rtype != 0 && allRegistrants(d.rtype)
	if r.saKey == 0 && !ar {
		return e, InvalidParam(8, -1)
	}
	mine := d.regs[i]
	var lost []prReg
	if d.rtype != 0 && (ar && r.saKey == 0 || !ar && r.saKey == d.holderKey()) {
		// Preempting the persistent reservation (5.12.11.2.4.3): remove
		// the registrations the key names (all of them for an
		// all-registrants reservation), except the preempting I_T
		// nexus's, and take the reservation with the new type.
		old := d.rtype
		kept := d.regs[:0]
		for _, g := range d.regs {
			if g != mine && (ar || g.key == r.saKey) {
				lost = append(lost, g)
				continue
			}
			kept = append(kept, g)
		}
		d.regs = kept
		d.rtype = r.rtype
		d.holder = self
		e.uaAll(lost, ASCRegistrationsPreempted)
		if old != r.rtype {
			var rest []prReg
			for _, g := range d.regs {
				rest = append(rest, g)
			}
			e.uaAll(rest, ASCReservationsReleased)
		}
	} else {
		// Removing registrations (5.12.11.2.4.4): every registration with
		// the key goes, the preempting I_T nexus's too; the reservation,
		// if any, stays (an all-registrants one until its last registrant
		// goes).
		for j := 0; j < len(d.regs); {
			if d.regs[j].key != r.saKey {
				j++
				continue
			}
			lost = append(lost, d.regs[j])
			d.remove(j, &e)
		}
		if len(lost) == 0 {
			return e, errResConflict
		}
		e.uaAll(lost, ASCRegistrationsPreempted)
	}
	if abort {
		e.abort = lost
	}
	d.gen++
	return e, nil
}

// registerMove is REGISTER AND MOVE (SPC-4 5.12.8).
func (d *prData) registerMove(self NexusID, r *prOutReq, ptplCapable bool, port func(uint16) (PortID, error), e *prEffects) error {
	i := d.find(self)
	if i < 0 || d.regs[i].key != r.key {
		return errResConflict
	}
	if !d.isHolder(self) || allRegistrants(d.rtype) {
		return errResConflict
	}
	if r.saKey == 0 {
		return InvalidParam(8, -1)
	}
	if r.aptpl && !ptplCapable {
		return InvalidParam(17, 0)
	}
	tp, err := port(r.relPort)
	if err != nil {
		return InvalidParam(18, -1)
	}
	dest := NexusID{Initiator: r.moveTo, Target: tp}
	j := d.find(dest)
	if dest == self || j == i {
		// The destination is the I_T nexus the command came through, or
		// covered by its own (ALL_TG_PT) registration.
		return InvalidParam(24, -1)
	}
	if j >= 0 {
		d.regs[j].key = r.saKey
	} else {
		if len(d.regs) >= maxRegistrations {
			return ErrInsufficientRegRes
		}
		d.regs = append(d.regs, prReg{key: r.saKey, init: dest.Initiator, tport: dest.Target})
	}
	d.holder = dest
	if r.unreg {
		d.remove(d.find(self), e)
	}
	d.gen++
	d.aptpl = r.aptpl
	return nil
}

// SPC-2 RESERVE and RELEASE (SPC-2 7.21, 7.19) with the exceptions of
// SPC-4 5.12.3 (compatible reservation handling, CRH=1).

// spc2Exempt reports whether RESERVE and RELEASE from self complete with
// GOOD and change nothing: self holds the persistent reservation, or is
// registered while a registrants-only or all-registrants reservation is
// present.
func (d *prData) spc2Exempt(self NexusID) bool {
	return d.isHolder(self) || d.rtype != 0 && (registrantsOnly(d.rtype) || allRegistrants(d.rtype)) && d.find(self) >= 0
}

// reserveSPC2 is RESERVE(6) and RESERVE(10).
func (d *prData) reserveSPC2(self NexusID) error {
	if len(d.regs) > 0 {
		if d.spc2Exempt(self) {
			return nil
		}
		// SPC-2 5.5.1: with registrations present, RESERVE and RELEASE
		// conflict.
		return errResConflict
	}
	if d.spc2 && d.spc2Holder != self {
		return errResConflict
	}
	d.spc2, d.spc2Holder = true, self
	return nil
}

// releaseSPC2 is RELEASE(6) and RELEASE(10): only the holder releases; a
// release from anyone else is GOOD and changes nothing.
func (d *prData) releaseSPC2(self NexusID) error {
	if len(d.regs) > 0 {
		if d.spc2Exempt(self) {
			return nil
		}
		return errResConflict
	}
	if d.spc2 && d.spc2Holder == self {
		d.spc2, d.spc2Holder = false, NexusID{}
	}
	return nil
}

// dropSPC2 ends an SPC-2 reservation on a logical unit reset, or when
// lost is its holder's I_T nexus going away (nil: any holder).
func (d *prData) dropSPC2(lost *NexusID) bool {
	if !d.spc2 || lost != nil && *lost != d.spc2Holder {
		return false
	}
	d.spc2, d.spc2Holder = false, NexusID{}
	return true
}
