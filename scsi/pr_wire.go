package scsi

import "encoding/binary"

// The PERSISTENT RESERVE OUT parameter lists (SPC-4 6.16.3, 6.16.4), read
// from the data-out buffer by decodePROut. Every error is a *SenseError
// pointing at the field at fault, in the order the checks are made:
//
//  1. a list shorter than its fixed part: PARAMETER LIST LENGTH ERROR;
//  2. SPEC_I_PT with a service action other than REGISTER: INVALID FIELD
//     IN PARAMETER LIST (byte 20 bit 3);
//  3. a list length other than 24 without SPEC_I_PT, or one that does not
//     end where the TransportIDs end: PARAMETER LIST LENGTH ERROR;
//  4. a TransportID that is not an SRP one, or is cut short: INVALID FIELD
//     IN PARAMETER LIST at its first byte.
//
// ALL_TG_PT is taken for REGISTER and REGISTER AND IGNORE EXISTING KEY
// only and APTPL for those and REGISTER AND MOVE; both are ignored
// otherwise, as SPC-4 6.16.3 says.

// Parameter list lengths.
const (
	proBasicLen   = 24
	proSpecIPTMin = 28 // with the TRANSPORTID PARAMETER DATA LENGTH field
	proMoveMin    = 24
)

// Bits of byte 20 of the basic parameter list.
const (
	proSpecIPT = 0x08
	proAllTgPt = 0x04
	proAPTPL   = 0x01
)

// decodePROut decodes the parameter list p (exactly the PARAMETER LIST
// LENGTH bytes) of a PERSISTENT RESERVE OUT command with service action sa
// into r, which carries the CDB's scope and type already.
func decodePROut(sa byte, p []byte, r *prOutReq) error {
	r.sa = sa
	if sa == proRegisterMove {
		return decodeRegisterMove(p, r)
	}
	if len(p) < proBasicLen {
		return ErrParamListLength
	}
	r.key = binary.BigEndian.Uint64(p[0:8])
	r.saKey = binary.BigEndian.Uint64(p[8:16])
	flags := p[20]
	r.specIPT = flags&proSpecIPT != 0
	register := sa == proRegister || sa == proRegisterIgnore
	if register {
		r.allTgPt = flags&proAllTgPt != 0
		r.aptpl = flags&proAPTPL != 0
	}
	if r.specIPT && sa != proRegister {
		return InvalidParam(20, 3)
	}
	if !r.specIPT {
		if len(p) != proBasicLen {
			return ErrParamListLength
		}
		return nil
	}
	if len(p) < proSpecIPTMin {
		return ErrParamListLength
	}
	tlen := uint64(binary.BigEndian.Uint32(p[24:28]))
	if tlen != uint64(len(p)-proSpecIPTMin) {
		return ErrParamListLength
	}
	for off := proSpecIPTMin; off < len(p); {
		id, n, err := ParseTransportID(p[off:])
		if err != nil {
			return InvalidParam(off, -1)
		}
		r.tids = append(r.tids, id)
		r.tidOff = append(r.tidOff, off)
		off += n
	}
	return nil
}

// decodeRegisterMove decodes the REGISTER AND MOVE parameter list (SPC-4
// 6.16.4):
//
//	bytes 0-7   RESERVATION KEY
//	bytes 8-15  SERVICE ACTION RESERVATION KEY
//	byte  17    UNREG (bit 1), APTPL (bit 0)
//	bytes 18-19 RELATIVE TARGET PORT IDENTIFIER
//	bytes 20-23 TRANSPORTID PARAMETER DATA LENGTH
//	bytes 24-   TRANSPORTID
func decodeRegisterMove(p []byte, r *prOutReq) error {
	if len(p) < proMoveMin {
		return ErrParamListLength
	}
	r.key = binary.BigEndian.Uint64(p[0:8])
	r.saKey = binary.BigEndian.Uint64(p[8:16])
	r.unreg = p[17]&0x02 != 0
	r.aptpl = p[17]&0x01 != 0
	r.relPort = binary.BigEndian.Uint16(p[18:20])
	tlen := uint64(binary.BigEndian.Uint32(p[20:24]))
	if tlen != uint64(len(p)-proMoveMin) {
		return ErrParamListLength
	}
	// At least 24 bytes and a multiple of 4 (SPC-4 6.16.4).
	if tlen < TransportIDLen || tlen%4 != 0 {
		return InvalidParam(20, -1)
	}
	id, n, err := ParseTransportID(p[proMoveMin:])
	if err != nil {
		return InvalidParam(proMoveMin, -1)
	}
	if uint64(n) != tlen {
		return InvalidParam(20, -1)
	}
	r.moveTo = id
	return nil
}
