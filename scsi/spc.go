package scsi

import (
	"encoding/binary"
)

// SPC-4 operation codes.
const (
	opTestUnitReady   = 0x00
	opRequestSense    = 0x03
	opInquiry         = 0x12
	opModeSelect6     = 0x15
	opModeSense6      = 0x1A
	opSendDiagnostic  = 0x1D
	opPreventAllow    = 0x1E
	opModeSelect10    = 0x55
	opModeSense10     = 0x5A
	opReportLUNs      = 0xA0
	opMaintenanceIn   = 0xA3
	saReportOpcodes   = 0x0C
	saReportTMFs      = 0x0D
	versionSAM5       = 0x00A0
	versionSPC4       = 0x0460
	versionSRP        = 0x0940
	inquiryStdLen     = 96
	peripheralNoLU    = 0x7F // qualifier 011b, type 1Fh
	peripheralWellKnw = 0x1E
)

// registerSPC adds the SPC-4 commands every logical unit supports. Their
// pr field is their row of SPC-4 table 63 (commands allowed in the
// presence of reservations); MODE SELECT and SEND DIAGNOSTIC conflict like
// writes (the zero value).
func registerSPC(t *opTable, lu *LU) {
	t.add(&opInfo{name: "TEST UNIT READY", code: opTestUnitReady, usage: cdb(0, 0, 0, 0, 0), flags: opMedium, pr: prcAllowed,
		fn: func(*Command) error { return nil }})
	t.add(&opInfo{name: "REQUEST SENSE", code: opRequestSense, usage: cdb(0x01, 0, 0, 0xFF, 0), flags: opUAExempt | opSPC2OK, pr: prcAllowed, fn: lu.requestSense})
	t.add(&opInfo{name: "INQUIRY", code: opInquiry, usage: cdb(0x01, 0xFF, 0xFF, 0xFF, 0), flags: opUAExempt | opSPC2OK, pr: prcAllowed, fn: lu.inquiry})
	t.add(&opInfo{name: "MODE SELECT(6)", code: opModeSelect6, usage: cdb(0x11, 0, 0, 0xFF, 0), fn: lu.modeSelect})
	t.add(&opInfo{name: "MODE SENSE(6)", code: opModeSense6, usage: cdb(0x08, 0xFF, 0xFF, 0xFF, 0), pr: prcRead, fn: lu.modeSense})
	t.add(&opInfo{name: "SEND DIAGNOSTIC", code: opSendDiagnostic, usage: cdb(0xF7, 0, 0xFF, 0xFF, 0), fn: lu.sendDiagnostic})
	t.add(&opInfo{name: "PREVENT ALLOW MEDIUM REMOVAL", code: opPreventAllow, usage: cdb(0, 0, 0, 0x03, 0), pr: prcPrevent, fn: lu.preventAllow})
	t.add(&opInfo{name: "MODE SELECT(10)", code: opModeSelect10, usage: cdb(0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), fn: lu.modeSelect})
	t.add(&opInfo{name: "MODE SENSE(10)", code: opModeSense10, usage: cdb(0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0), pr: prcRead, fn: lu.modeSense})
	t.add(&opInfo{name: "REPORT LUNS", code: opReportLUNs, usage: cdb(0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: opUAExempt | opSPC2OK, pr: prcAllowed,
		fn: func(c *Command) error { return c.nexus.reportLUNs(c) }})
	t.add(&opInfo{name: "REPORT SUPPORTED OPERATION CODES", code: opMaintenanceIn, sa: saReportOpcodes, hasSA: true,
		usage: cdb(0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), pr: prcRead, fn: lu.reportOpcodes})
	t.add(&opInfo{name: "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", code: opMaintenanceIn, sa: saReportTMFs, hasSA: true,
		usage: cdb(0x1F, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), pr: prcRead, fn: reportTMFs})
}

// INQUIRY (SPC-4 6.6).
func (lu *LU) inquiry(c *Command) error {
	cdb := c.CDB
	alloc := int(binary.BigEndian.Uint16(cdb[3:5]))
	if cdb[1]&0x01 == 0 {
		if cdb[2] != 0 {
			return InvalidCDB(2, -1)
		}
		w := newResp(c, alloc)
		lu.standardInquiry(&w, lu.dev.peripheralType(), c.nexus)
		w.finish(c, alloc)
		return nil
	}
	page := cdb[2]
	w := newResp(c, alloc)
	w.byte1(lu.dev.peripheralType())
	w.byte1(page)
	w.u16(0) // page length, patched below
	switch page {
	case 0x00:
		for _, p := range lu.vpdList() {
			w.byte1(p)
		}
	case 0x80:
		w.bytes([]byte(lu.inq.Serial))
	case 0x83:
		lu.deviceIdentification(&w, c.nexus.port)
	case 0x86:
		lu.extendedInquiry(&w)
	default:
		found := false
		for _, p := range lu.dev.vpd() {
			if p.code == page {
				p.fn(&w)
				found = true
				break
			}
		}
		if !found {
			return InvalidCDB(2, -1)
		}
	}
	w.setU16(2, uint16(w.n-4))
	w.finish(c, alloc)
	return nil
}

// vpdPage is a device type's VPD page.
type vpdPage struct {
	code byte
	fn   func(w *respWriter)
}

func (lu *LU) vpdList() []byte {
	l := []byte{0x00, 0x80, 0x83, 0x86}
	for _, p := range lu.dev.vpd() {
		l = append(l, p.code)
	}
	return l
}

func (lu *LU) standardInquiry(w *respWriter, ptype byte, n *Nexus) {
	w.byte1(ptype)
	if lu.dev.removable() {
		w.byte1(0x80)
	} else {
		w.byte1(0)
	}
	w.byte1(0x06)              // VERSION: SPC-4
	w.byte1(0x12)              // HISUP, RESPONSE DATA FORMAT 2
	w.byte1(inquiryStdLen - 5) // ADDITIONAL LENGTH
	w.byte1(0)
	multi := byte(0)
	if t := lu.target; t != nil {
		t.mu.Lock()
		if len(t.ports) > 1 {
			multi = 0x10 // MULTIP
		}
		t.mu.Unlock()
	}
	w.byte1(multi)
	w.byte1(0x02) // CMDQUE
	w.str(lu.inq.Vendor, 8)
	w.str(lu.inq.Product, 16)
	w.str(lu.inq.Revision, 4)
	w.zeros(20 + 2) // vendor specific, byte 56, reserved 57
	w.u16(versionSAM5)
	w.u16(versionSRP)
	w.u16(versionSPC4)
	w.u16(deviceVersion(ptype))
	w.zeros(inquiryStdLen - 66)
}

func deviceVersion(ptype byte) uint16 {
	switch ptype {
	case typeDisk:
		return 0x04C0 // SBC-3
	}
	return 0
}

// inquiryNoLU answers INQUIRY for a LUN with no logical unit: peripheral
// qualifier 011b and device type 1Fh, or the REPORT LUNS well-known LU.
func inquiryNoLU(c *Command, wellKnown bool) error {
	cdb := c.CDB
	if len(cdb) < 6 {
		return ErrInvalidCommandIU
	}
	if cdb[1]&0x01 != 0 {
		if !wellKnown {
			return ErrLUNotSupported
		}
		if cdb[2] != 0x00 {
			return InvalidCDB(2, -1)
		}
	} else if cdb[2] != 0 {
		return InvalidCDB(2, -1)
	}
	alloc := int(binary.BigEndian.Uint16(cdb[3:5]))
	w := newResp(c, alloc)
	ptype := byte(peripheralNoLU)
	if wellKnown {
		ptype = peripheralWellKnw
	}
	if cdb[1]&0x01 != 0 {
		w.byte1(ptype)
		w.byte1(0)
		w.u16(1)
		w.byte1(0)
		w.finish(c, alloc)
		return nil
	}
	w.byte1(ptype)
	w.byte1(0)
	w.byte1(0x06)
	w.byte1(0x12)
	w.byte1(31)
	w.byte1(0)
	w.byte1(0)
	w.byte1(0x02)
	w.str(c.nexus.target.vendor, 8)
	if wellKnown {
		w.str("REPORT LUNS WLUN", 16)
	} else {
		w.str("NO LOGICAL UNIT", 16)
	}
	w.str("0001", 4)
	w.finish(c, alloc)
	return nil
}

// deviceIdentification writes the designation descriptors of VPD page 83h
// (SPC-4 7.8.6): the LU's NAA IEEE Registered Extended designator and T10
// vendor ID designator, then the target port's relative port designator and
// its 128-bit SRP port identifier as an EUI-64 based 16-byte designator.
func (lu *LU) deviceIdentification(w *respWriter, port *Port) {
	// NAA, binary, LU association.
	w.bytes([]byte{0x01, 0x03, 0x00, 16})
	w.bytes(lu.inq.NAA[:])
	// T10 vendor ID, ASCII, LU association: vendor + serial.
	w.bytes([]byte{0x02, 0x01, 0x00, byte(8 + len(lu.inq.Serial))})
	w.str(lu.inq.Vendor, 8)
	w.bytes([]byte(lu.inq.Serial))
	if port == nil {
		return
	}
	// Relative target port, PIV=1, protocol SRP (4), target port association.
	w.bytes([]byte{0x41, 0x94, 0x00, 4, 0, 0})
	w.u16(port.Relative)
	// Target port name: EUI-64 based 16-byte designator.
	w.bytes([]byte{0x41, 0x92, 0x00, 16})
	w.bytes(port.ID[:])
}

// extendedInquiry writes the Extended INQUIRY Data VPD page (86h, SPC-4
// 7.8.7): all three task attributes supported, volatile cache per the
// backstore, unit attentions cleared per logical unit.
func (lu *LU) extendedInquiry(w *respWriter) {
	start := w.n
	w.zeros(60)
	w.setByte(start+1, 0x07) // HEADSUP ORDSUP SIMPSUP
	if lu.store != nil && lu.store.Caps().Volatile {
		w.setByte(start+2, 0x01) // V_SUP
	}
	w.setByte(start+3, 0x01) // LUICLR
}

// REQUEST SENSE (SPC-4 6.29): a pending unit attention first (and it is
// cleared), then the not-ready state, else NO SENSE.
func (lu *LU) requestSense(c *Command) error {
	if asc, ok := c.itl.ua.take(); ok {
		return requestSenseData(c, Sense(UnitAttention, asc), c.CDB[1]&1 != 0)
	}
	return requestSenseData(c, lu.checkReady(), c.CDB[1]&1 != 0)
}

func requestSenseData(c *Command, se error, desc bool) error {
	if len(c.CDB) < 6 {
		return ErrInvalidCommandIU
	}
	if c.CDB[1]&^0x01 != 0 {
		return InvalidCDB(1, highBit(c.CDB[1]&^0x01))
	}
	alloc := int(c.CDB[4])
	e, _ := se.(*SenseError)
	if e == nil {
		e = &SenseError{}
	}
	var buf [MaxSense]byte
	var n int
	if desc {
		n = e.DescriptorSense(buf[:])
	} else {
		n = e.FixedSense(buf[:])
	}
	w := newResp(c, alloc)
	w.bytes(buf[:n])
	w.finish(c, alloc)
	return nil
}

// REPORT LUNS (SPC-4 6.33).
func (n *Nexus) reportLUNs(c *Command) error {
	cdb := c.CDB
	if len(cdb) < 12 {
		return ErrInvalidCommandIU
	}
	sel := cdb[2]
	if sel > 2 {
		return InvalidCDB(2, -1)
	}
	alloc := int(binary.BigEndian.Uint32(cdb[6:10]))
	if alloc < 16 {
		return InvalidCDB(6, -1)
	}
	m := n.maps.Load()
	w := newResp(c, alloc)
	w.u32(0)
	w.u32(0)
	count := 0
	if sel == 0 || sel == 2 {
		if m != nil {
			for _, x := range m.list {
				w.u64(EncodeLUN(x.lun))
				count++
			}
		}
	}
	if sel == 1 || sel == 2 {
		w.u64(0xC101 << 48)
		count++
	}
	w.setU32(0, uint32(8*count))
	w.finish(c, alloc)
	if c.itl != nil {
		c.itl.ua.clear(ASCReportedLUNsDataChanged)
	}
	return nil
}

// MODE SENSE(6) and MODE SENSE(10) (SPC-4 6.11, 6.12).
func (lu *LU) modeSense(c *Command) error {
	cdb := c.CDB
	ten := cdb[0] == opModeSense10
	dbd := cdb[1]&0x08 != 0
	llbaa := ten && cdb[1]&0x10 != 0
	pc := cdb[2] >> 6
	page := cdb[2] & 0x3F
	sub := cdb[3]
	var alloc int
	if ten {
		alloc = int(binary.BigEndian.Uint16(cdb[7:9]))
	} else {
		alloc = int(cdb[4])
	}
	devSpecific, blocks, blockLen := lu.dev.modeHeader()
	if lu.readOnly || c.itl.readOnly || lu.swp.Load() {
		devSpecific |= 0x80 // WP
	}
	w := newResp(c, alloc)
	hdr := 4
	if ten {
		hdr = 8
		w.zeros(8)
		w.setByte(3, devSpecific)
	} else {
		w.zeros(4)
		w.setByte(2, devSpecific)
	}
	if !dbd && blockLen != 0 {
		switch {
		case llbaa:
			w.setByte(4, 0x01) // LONGLBA
			w.setU16(6, 16)
			w.u64(blocks)
			w.u32(0)
			w.u32(blockLen)
		default:
			if ten {
				w.setU16(6, 8)
			} else {
				w.setByte(3, 8)
			}
			nb := uint32(0xFFFFFFFF)
			if blocks < 0xFFFFFFFF {
				nb = uint32(blocks)
			}
			w.u32(nb)
			w.u32(blockLen & 0xFFFFFF)
		}
	}
	if err := lu.mode.sense(&w, page, sub, pc); err != nil {
		return err
	}
	if ten {
		w.setU16(0, uint16(w.n-2))
	} else {
		w.setByte(0, byte(w.n-1))
	}
	_ = hdr
	w.finish(c, alloc)
	return nil
}

// MODE SELECT(6) and MODE SELECT(10) (SPC-4 6.9, 6.10).
func (lu *LU) modeSelect(c *Command) error {
	cdb := c.CDB
	ten := cdb[0] == opModeSelect10
	pf := cdb[1]&0x10 != 0
	sp := cdb[1]&0x01 != 0
	var plen int
	if ten {
		plen = int(binary.BigEndian.Uint16(cdb[7:9]))
	} else {
		plen = int(cdb[4])
	}
	c.OutWant = plen
	if plen == 0 {
		return nil
	}
	if !pf {
		return InvalidCDB(1, 4)
	}
	if len(c.DataOut) < plen {
		return ErrParamListLength
	}
	p := c.DataOut[:plen]
	hdr := 4
	if ten {
		hdr = 8
	}
	if len(p) < hdr {
		return ErrParamListLength
	}
	var bdl int
	long := false
	if ten {
		bdl = int(binary.BigEndian.Uint16(p[6:8]))
		long = p[4]&0x01 != 0
	} else {
		bdl = int(p[3])
	}
	if len(p) < hdr+bdl {
		return ErrParamListLength
	}
	_, blocks, blockLen := lu.dev.modeHeader()
	if bdl != 0 {
		size := 8
		if long {
			size = 16
		}
		if bdl != size || blockLen == 0 {
			if ten {
				return InvalidParam(6, -1)
			}
			return InvalidParam(3, -1)
		}
		d := p[hdr : hdr+bdl]
		var nb uint64
		var bl uint32
		if long {
			nb = binary.BigEndian.Uint64(d[0:8])
			bl = binary.BigEndian.Uint32(d[12:16])
		} else {
			nb = uint64(binary.BigEndian.Uint32(d[0:4]))
			bl = binary.BigEndian.Uint32(d[4:8]) & 0xFFFFFF
		}
		if bl != blockLen {
			if long {
				return InvalidParam(hdr+12, -1)
			}
			return InvalidParam(hdr+5, -1)
		}
		if nb != 0 && nb != blocks && !(blocks >= 0xFFFFFFFF && nb == 0xFFFFFFFF && !long) {
			return InvalidParam(hdr, -1)
		}
	}
	// A saver that fails leaves the new current values in force: apply
	// them (and tell the other nexuses) before reporting the failure, so
	// that the LU behaves as MODE SENSE says.
	changed, err := lu.mode.selectPages(p[hdr+bdl:], hdr+bdl, sp)
	if changed {
		lu.applyMode()
		lu.ua(ASCModeParametersChanged, c.nexus)
	}
	return err
}

// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35).
func (lu *LU) reportOpcodes(c *Command) error {
	cdb := c.CDB
	rctd := cdb[2]&0x80 != 0
	opt := cdb[2] & 0x07
	reqOp := cdb[3]
	reqSA := binary.BigEndian.Uint16(cdb[4:6])
	alloc := int(binary.BigEndian.Uint32(cdb[6:10]))
	w := newResp(c, alloc)
	switch opt {
	case 0:
		w.u32(0)
		lu.ops.each(func(o *opInfo) {
			w.byte1(o.code)
			w.byte1(0)
			w.u16(o.sa)
			w.byte1(0)
			flags := byte(0)
			if o.hasSA {
				flags |= 0x01 // SERVACTV
			}
			if rctd {
				flags |= 0x02 // CTDP
			}
			w.byte1(flags)
			w.u16(uint16(len(o.usage)))
			if rctd {
				timeoutsDescriptor(&w)
			}
		})
		w.setU32(0, uint32(w.n-4))
	case 1, 2, 3:
		sas := lu.ops.sas[reqOp]
		var o *opInfo
		switch {
		case opt == 1 && sas != nil:
			return InvalidCDB(2, 2)
		case opt == 2 && sas == nil:
			return InvalidCDB(2, 2)
		case sas != nil && opt != 1:
			for _, s := range sas {
				if s.sa == reqSA {
					o = s
				}
			}
		default:
			if opt == 3 && reqSA != 0 {
				break
			}
			o = lu.ops.ops[reqOp]
		}
		w.byte1(0)
		if o == nil {
			w.byte1(0x01) // SUPPORT: not supported
			w.u16(0)
			break
		}
		support := byte(0x03)
		if rctd {
			support |= 0x80 // CTDP
		}
		w.byte1(support)
		w.u16(uint16(len(o.usage)))
		usage := o.usage
		w.byte1(usage[0])
		if o.hasSA {
			// The service action field reads as the service action itself.
			w.byte1(usage[1]&^0x1F | byte(o.sa))
			w.bytes(usage[2:])
		} else {
			w.bytes(usage[1:])
		}
		if rctd {
			timeoutsDescriptor(&w)
		}
	default:
		return InvalidCDB(2, 2)
	}
	w.finish(c, alloc)
	return nil
}

// timeoutsDescriptor writes a command timeouts descriptor (SPC-4 6.35.4)
// with no nominal or recommended timeout specified.
func timeoutsDescriptor(w *respWriter) {
	w.u16(0x0A)
	w.zeros(10)
}

// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.37): ABORT TASK,
// ABORT TASK SET, CLEAR ACA, CLEAR TASK SET, LOGICAL UNIT RESET, QUERY TASK.
func reportTMFs(c *Command) error {
	cdb := c.CDB
	repd := cdb[2]&0x80 != 0
	alloc := int(binary.BigEndian.Uint32(cdb[6:10]))
	w := newResp(c, alloc)
	w.byte1(0xFC)
	w.byte1(0)
	w.byte1(0)
	if repd {
		w.byte1(0x0C)
		w.zeros(12)
	} else {
		w.byte1(0)
	}
	w.finish(c, alloc)
	return nil
}

// PREVENT ALLOW MEDIUM REMOVAL (SPC-4 6.13 and SBC-3 5.11): the prevent
// state is kept; PREVENT values 2 and 3 (obsolete persistent prevent) are
// refused.
func (lu *LU) preventAllow(c *Command) error {
	switch c.CDB[4] & 0x03 {
	case 0:
		lu.prevent.Store(false)
	case 1:
		lu.prevent.Store(true)
	default:
		return InvalidCDB(4, 1)
	}
	return nil
}

// SEND DIAGNOSTIC (SPC-4 6.42): the default self-test reads the first and
// last logical blocks of the medium; failure is HARDWARE ERROR, LOGICAL UNIT
// FAILED SELF-TEST (3Eh/03h). No diagnostic pages are supported.
func (lu *LU) sendDiagnostic(c *Command) error {
	cdb := c.CDB
	code := cdb[1] >> 5
	selftest := cdb[1]&0x04 != 0
	plen := int(binary.BigEndian.Uint16(cdb[3:5]))
	c.OutWant = plen
	if selftest {
		if code != 0 {
			return InvalidCDB(1, 7)
		}
		if plen != 0 {
			return InvalidCDB(3, -1)
		}
		if t, ok := lu.dev.(interface{ selfTest() error }); ok {
			if err := t.selfTest(); err != nil {
				return Sense(HardwareError, 0x3E03)
			}
		}
		return nil
	}
	if code != 0 {
		return InvalidCDB(1, 7)
	}
	if plen != 0 {
		// A diagnostic page was sent; none is supported.
		return InvalidParam(0, -1)
	}
	return nil
}
