package scsi

import (
	"encoding/binary"
	"sync/atomic"
)

// Nexus is an I_T nexus: one initiator port logged in through one target
// port. Everything a nexus sees of a logical unit (its LUN, unit attentions,
// later its reservation registration) lives in the I_T_L state the nexus
// holds for that LU. Transports never see this state; they hand commands to
// Execute and task management functions to the TMF methods.
type Nexus struct {
	id     NexusID
	port   *Port
	target *Target
	maps   atomic.Pointer[lunMap]
}

// itl is the state of one I_T_L nexus.
type itl struct {
	lun      uint16
	lu       *LU
	readOnly bool
	nexus    *Nexus
	ua       uaQueue
}

type lunMap struct {
	small [256]*itl
	big   map[uint16]*itl
	list  []*itl // in LUN order
}

func (m *lunMap) get(lun uint16) *itl {
	if m == nil {
		return nil
	}
	if lun < 256 {
		return m.small[lun]
	}
	return m.big[lun]
}

// ID returns the nexus identity.
func (n *Nexus) ID() NexusID { return n.id }

// Port returns the target port the nexus logged in through.
func (n *Nexus) Port() *Port { return n.port }

// setMappings installs a new LUN map, keeping the I_T_L state of mappings
// that did not change. It reports whether the LUN inventory changed.
func (n *Nexus) setMappings(ms []Mapping) bool {
	old := n.maps.Load()
	nm := &lunMap{}
	changed := false
	for _, m := range ms {
		x := old.get(m.LUN)
		if x == nil || x.lu != m.LU || x.readOnly != m.ReadOnly {
			x = &itl{lun: m.LUN, lu: m.LU, readOnly: m.ReadOnly, nexus: n}
			m.LU.attach(x)
			changed = true
		}
		if m.LUN < 256 {
			nm.small[m.LUN] = x
		} else {
			if nm.big == nil {
				nm.big = make(map[uint16]*itl)
			}
			nm.big[m.LUN] = x
		}
		nm.list = append(nm.list, x)
	}
	if old != nil {
		for _, x := range old.list {
			if nm.get(x.lun) != x {
				x.lu.detach(x)
				changed = true
			}
		}
	}
	sortITL(nm.list)
	n.maps.Store(nm)
	return changed
}

func sortITL(l []*itl) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].lun < l[j-1].lun; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// allUA establishes a unit attention on every LU the nexus sees.
func (n *Nexus) allUA(asc ASC) {
	if m := n.maps.Load(); m != nil {
		for _, x := range m.list {
			x.ua.add(asc)
		}
	}
}

// LUNs returns the LUN numbers the nexus sees, in order.
func (n *Nexus) LUNs() []uint16 {
	m := n.maps.Load()
	if m == nil {
		return nil
	}
	out := make([]uint16, len(m.list))
	for i, x := range m.list {
		out[i] = x.lun
	}
	return out
}

// Well-known logical units (SPC-4 8.1).
const wlunReportLUNs = 0x01

// DecodeLUN decodes a single-level 8-byte SAM LUN (SAM-5 4.7): peripheral
// device addressing (LUN 0..255), flat space addressing (0..16383) and the
// extended well-known LUN form (C1h nn). ok is false for anything else.
func DecodeLUN(l uint64) (lun uint16, wellKnown bool, ok bool) {
	b0, b1 := byte(l>>56), byte(l>>48)
	if l&0x0000FFFFFFFFFFFF != 0 {
		return 0, false, false
	}
	switch b0 >> 6 {
	case 0:
		if b0 != 0 {
			return 0, false, false
		}
		return uint16(b1), false, true
	case 1:
		return uint16(b0&0x3F)<<8 | uint16(b1), false, true
	case 3:
		if b0 == 0xC1 {
			return uint16(b1), true, true
		}
	}
	return 0, false, false
}

// EncodeLUN encodes a LUN number as an 8-byte SAM LUN: peripheral device
// addressing below 256, flat space addressing above (as LIO and Linux do).
func EncodeLUN(lun uint16) uint64 {
	if lun < 256 {
		return uint64(lun) << 48
	}
	return uint64(0x4000|lun&0x3FFF) << 48
}

func putLUN(b []byte, lun uint64) { binary.BigEndian.PutUint64(b, lun) }

// Start enters c into its logical unit's task set the moment it arrives,
// before its data-out is fetched, so a task management function that comes
// later finds it. Execute calls Start itself if the caller did not.
func (n *Nexus) Start(c *Command) {
	c.nexus = n
	c.arrival = n.target.arrivals.Add(1)
	c.state.Store(cmdRunning)
	lun, wk, ok := DecodeLUN(c.LUN)
	if !ok || wk {
		return
	}
	if x := n.maps.Load().get(lun); x != nil {
		c.itl = x
		c.lu = x.lu
		x.lu.tasks.add(c)
	}
}

// Inline reports whether the started command c will run to completion
// without waiting: a command for a LUN with no logical unit, or a SIMPLE
// task with no ORDERED or HEAD OF QUEUE task in its task set on a logical
// unit whose backstore is Immediate. A transport may then execute it on its
// receive goroutine rather than hand it to another. (A task that arrives
// later never holds back an older SIMPLE one.)
func (n *Nexus) Inline(c *Command) bool {
	lu := c.lu
	if lu == nil {
		return true
	}
	return c.Attr == Simple && lu.immediate && lu.tasks.noSpecial()
}

// Abandon takes a started command out of its task set without executing it
// (its data-out could not be fetched). The transport answers it itself or
// drops the channel.
func (n *Nexus) Abandon(c *Command) {
	if c.lu != nil {
		c.lu.tasks.end(c)
	}
	c.state.CompareAndSwap(cmdRunning, cmdDone)
}

// Execute runs c to completion and fills in its outcome. It blocks while the
// task attribute holds c back and while the backstore works. If a task
// management function aborted c, c.Aborted() is true afterwards and the
// transport must not answer it.
func (n *Nexus) Execute(c *Command) {
	if c.state.Load() == cmdIdle {
		n.Start(c)
	}
	if c.lu == nil {
		n.executeNoLU(c)
		c.state.CompareAndSwap(cmdRunning, cmdDone)
		return
	}
	lu := c.lu
	if !lu.tasks.start(c) {
		lu.tasks.end(c)
		return
	}
	err := lu.execute(c)
	if err != nil {
		lu.fail(c, err)
	}
	lu.tasks.end(c)
	c.state.CompareAndSwap(cmdRunning, cmdDone)
}

// executeNoLU answers a command for a LUN with no logical unit behind it
// (SPC-4 5.9, 8.1): INQUIRY reports peripheral qualifier 011b, REPORT LUNS
// works through LUN 0 and the REPORT LUNS well-known LU, REQUEST SENSE
// returns LOGICAL UNIT NOT SUPPORTED as data, everything else fails with
// LOGICAL UNIT NOT SUPPORTED.
func (n *Nexus) executeNoLU(c *Command) {
	lun, wk, ok := DecodeLUN(c.LUN)
	var err error
	if len(c.CDB) == 0 {
		err = ErrInvalidCommandIU
	} else {
		switch c.CDB[0] {
		case opInquiry:
			err = inquiryNoLU(c, ok && wk && lun == wlunReportLUNs)
		case opReportLUNs:
			if ok && (lun == 0 && !wk || wk && lun == wlunReportLUNs) {
				err = n.reportLUNs(c)
			} else {
				err = ErrLUNotSupported
			}
		case opRequestSense:
			// The DESC bit picks the format here too (SPC-4 6.29.1).
			desc := len(c.CDB) > 1 && c.CDB[1]&0x01 != 0
			if ok && wk && lun == wlunReportLUNs {
				err = requestSenseData(c, nil, desc)
			} else {
				err = requestSenseData(c, ErrLUNotSupported, desc)
			}
		case opTestUnitReady:
			if ok && wk && lun == wlunReportLUNs {
				err = nil
			} else {
				err = ErrLUNotSupported
			}
		default:
			err = ErrLUNotSupported
		}
	}
	if err != nil {
		setCheckCondition(c, err, false)
	}
}
