package scsitest

import (
	"encoding/binary"

	"github.com/srptgt/srptgt/scsi"
)

// Persistent reservation service actions (SPC-4 6.15.1, 6.16.2).
const (
	PRInReadKeys        = 0x00
	PRInReadReservation = 0x01
	PRInReportCaps      = 0x02
	PRInReadFullStatus  = 0x03

	PROutRegister       = 0x00
	PROutReserve        = 0x01
	PROutRelease        = 0x02
	PROutClear          = 0x03
	PROutPreempt        = 0x04
	PROutPreemptAbort   = 0x05
	PROutRegisterIgnore = 0x06
	PROutRegisterMove   = 0x07
)

// Persistent reservation types (SPC-4 6.15.3.4).
const (
	PRTypeWE   = 0x1
	PRTypeEA   = 0x3
	PRTypeWERO = 0x5
	PRTypeEARO = 0x6
	PRTypeWEAR = 0x7
	PRTypeEAAR = 0x8
)

// PRIn builds PERSISTENT RESERVE IN.
func PRIn(sa byte, alloc uint16) []byte {
	c := make([]byte, 10)
	c[0], c[1] = 0x5E, sa
	binary.BigEndian.PutUint16(c[7:], alloc)
	return c
}

// PROut builds PERSISTENT RESERVE OUT with the scope (LU_SCOPE is 0) and
// type of byte 2 and the parameter list length.
func PROut(sa, scope, typ byte, plen uint32) []byte {
	c := make([]byte, 10)
	c[0], c[1], c[2] = 0x5F, sa, scope<<4|typ&0x0F
	binary.BigEndian.PutUint32(c[5:], plen)
	return c
}

// PROutParams is the basic PERSISTENT RESERVE OUT parameter list (SPC-4
// 6.16.3).
type PROutParams struct {
	Key, SAKey              uint64
	SpecIPT, AllTgPt, APTPL bool
	// TransportIDs follow when SpecIPT is set.
	TransportIDs []scsi.PortID
}

// Bytes encodes the parameter list.
func (p PROutParams) Bytes() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], p.Key)
	binary.BigEndian.PutUint64(b[8:], p.SAKey)
	if p.SpecIPT {
		b[20] |= 0x08
	}
	if p.AllTgPt {
		b[20] |= 0x04
	}
	if p.APTPL {
		b[20] |= 0x01
	}
	if p.SpecIPT {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(scsi.TransportIDLen*len(p.TransportIDs)))
		b = append(b, l[:]...)
		for _, id := range p.TransportIDs {
			t := scsi.SRPTransportID(id)
			b = append(b, t[:]...)
		}
	}
	return b
}

// RegisterMoveParams is the REGISTER AND MOVE parameter list (SPC-4
// 6.16.4).
type RegisterMoveParams struct {
	Key, SAKey   uint64
	Unreg, APTPL bool
	RelativePort uint16
	To           scsi.PortID
}

// Bytes encodes the parameter list with an SRP TransportID.
func (p RegisterMoveParams) Bytes() []byte {
	b := make([]byte, 24+scsi.TransportIDLen)
	binary.BigEndian.PutUint64(b[0:], p.Key)
	binary.BigEndian.PutUint64(b[8:], p.SAKey)
	if p.Unreg {
		b[17] |= 0x02
	}
	if p.APTPL {
		b[17] |= 0x01
	}
	binary.BigEndian.PutUint16(b[18:], p.RelativePort)
	binary.BigEndian.PutUint32(b[20:], scsi.TransportIDLen)
	t := scsi.SRPTransportID(p.To)
	copy(b[24:], t[:])
	return b
}

// Reserve6, Release6, Reserve10 and Release10 build the SPC-2 reservation
// commands (no third-party reservation).
func Reserve6() []byte  { return []byte{0x16, 0, 0, 0, 0, 0} }
func Release6() []byte  { return []byte{0x17, 0, 0, 0, 0, 0} }
func Reserve10() []byte { return []byte{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0} }
func Release10() []byte { return []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0} }
