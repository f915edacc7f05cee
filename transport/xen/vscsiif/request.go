package vscsiif

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// Segment is struct scsiif_request_segment: part of one granted page.
type Segment struct {
	Gref   uint32
	Offset uint16
	Length uint16
}

func getSeg(b []byte) Segment {
	_ = b[7]
	return Segment{Gref: le.Uint32(b[SegGref:]), Offset: le.Uint16(b[SegOffset:]), Length: le.Uint16(b[SegLength:])}
}

func (s Segment) put(b []byte) {
	_ = b[7]
	le.PutUint32(b[SegGref:], s.Gref)
	le.PutUint16(b[SegOffset:], s.Offset)
	le.PutUint16(b[SegLength:], s.Length)
}

// Request is a decoded struct vscsiif_request. Decode fills it from a
// private copy of the ring slot; nothing in it aliases shared memory.
type Request struct {
	Rqid    uint16
	Act     uint8
	CmdLen  uint8
	CDB     [MaxCommandSize]byte
	Timeout uint16 // timeout_per_command, seconds (deprecated)
	Channel uint16
	ID      uint16
	LUN     uint16
	RefRqid uint16
	Dir     uint8 // sc_data_direction, Dir*
	// NrSegments is the nr_segments byte as sent (SGGrant flag included).
	NrSegments uint8
	// Seg holds the NSeg used entries of seg[]: the data segments, or with
	// Indirect the page regions that hold the data segments.
	Seg  [SGTableSize]Segment
	NSeg int
	// Indirect is set when nr_segments has VSCSIIF_SG_GRANT.
	Indirect bool
	// IndirectSegs is the number of data segments the indirect pages hold
	// (sum of their lengths / 8).
	IndirectSegs int
}

// Command returns the valid CDB bytes.
func (r *Request) Command() []byte { return r.CDB[:r.CmdLen] }

// ErrMalformed is matched (errors.Is) by every decode failure: a request
// no correct frontend sends. The backend disconnects such a frontend.
var ErrMalformed = errors.New("vscsiif: malformed request")

// MalformedError says which field of a request was bad.
type MalformedError struct {
	Field  string
	Reason string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("vscsiif: malformed request: %s: %s", e.Field, e.Reason)
}

func (e *MalformedError) Unwrap() error { return ErrMalformed }

func malformed(field, format string, a ...any) error {
	return &MalformedError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Decode parses and validates a request from b, the caller's private copy
// of a ring slot (at least RequestSize bytes). maxSegs is the largest
// number of data segments the backend accepts in one request (what it
// advertised in feature-sg-grant, at least SGTableSize).
//
// Checked: act is CDB, ABORT or RESET; cmd_len <= 16; sc_data_direction
// is one of the four Linux values; for CDB requests, nr_segments <= 26
// direct segments or 1..26 indirect pages whose regions lie within a page
// and hold a whole number of segments, at most maxSegs in all, and every
// direct segment lies within its page. ABORT and RESET carry no data;
// their segments are ignored.
func (r *Request) Decode(b []byte, maxSegs int) error {
	if len(b) < RequestSize {
		return malformed("request", "%d bytes, need %d", len(b), RequestSize)
	}
	b = b[:RequestSize]
	*r = Request{
		Rqid:       le.Uint16(b[ReqRqid:]),
		Act:        b[ReqAct],
		CmdLen:     b[ReqCmdLen],
		Timeout:    le.Uint16(b[ReqTimeout:]),
		Channel:    le.Uint16(b[ReqChannel:]),
		ID:         le.Uint16(b[ReqID:]),
		LUN:        le.Uint16(b[ReqLUN:]),
		RefRqid:    le.Uint16(b[ReqRefRqid:]),
		Dir:        b[ReqDataDirection],
		NrSegments: b[ReqNrSegments],
	}
	copy(r.CDB[:], b[ReqCmnd:ReqCmnd+MaxCommandSize])
	switch r.Act {
	case ActSCSICDB, ActSCSIAbort, ActSCSIReset:
	default:
		return malformed("act", "%d is not CDB, ABORT or RESET", r.Act)
	}
	if r.CmdLen > MaxCommandSize {
		return malformed("cmd_len", "%d exceeds %d", r.CmdLen, MaxCommandSize)
	}
	if r.Dir > DirNone {
		return malformed("sc_data_direction", "%d is not a DMA direction", r.Dir)
	}
	if r.Act != ActSCSICDB {
		return nil
	}
	if r.CmdLen == 0 {
		return malformed("cmd_len", "a CDB request with no CDB")
	}
	n := int(r.NrSegments)
	if n&SGGrant != 0 {
		r.Indirect = true
		n &^= SGGrant
		if n == 0 || n > SGTableSize {
			return malformed("nr_segments", "%d indirect pages, want 1..%d", n, SGTableSize)
		}
	} else if n > SGTableSize {
		return malformed("nr_segments", "%d direct segments exceed %d", n, SGTableSize)
	}
	r.NSeg = n
	total := 0
	for i := 0; i < n; i++ {
		s := getSeg(b[ReqSeg+i*SegmentSize:])
		if uint32(s.Offset)+uint32(s.Length) > PageSize {
			return malformed("seg", "segment %d: offset %d + length %d crosses the page", i, s.Offset, s.Length)
		}
		if r.Indirect {
			if s.Length == 0 || s.Length%SegmentSize != 0 || s.Offset%4 != 0 {
				return malformed("seg", "indirect page %d: offset %d length %d is not a list of segments", i, s.Offset, s.Length)
			}
			total += int(s.Length) / SegmentSize
		}
		r.Seg[i] = s
	}
	if r.Indirect {
		if total > maxSegs {
			return malformed("seg", "%d indirect segments exceed the %d advertised", total, maxSegs)
		}
		r.IndirectSegs = total
	}
	if n > 0 && r.Dir == DirNone {
		return malformed("sc_data_direction", "DMA_NONE with %d segments", n)
	}
	return nil
}

// DecodeIndirect decodes the data segments of an indirect request from
// raw, the caller's private copy of the indirect regions laid end to end
// (r.IndirectSegs*8 bytes), appending them to dst[:0]. Every segment must
// lie within its page.
func DecodeIndirect(raw []byte, dst []Segment) ([]Segment, error) {
	if len(raw)%SegmentSize != 0 {
		return dst[:0], malformed("indirect page", "%d bytes is not a list of segments", len(raw))
	}
	dst = dst[:0]
	for i := 0; i+SegmentSize <= len(raw); i += SegmentSize {
		s := getSeg(raw[i:])
		if uint32(s.Offset)+uint32(s.Length) > PageSize {
			return dst, malformed("indirect segment", "segment %d: offset %d + length %d crosses the page", i/SegmentSize, s.Offset, s.Length)
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// Encode writes the request into b (RequestSize bytes; reserved bytes
// zero). With Indirect, NSeg entries of Seg are the indirect regions and
// nr_segments is NSeg|SGGrant; otherwise NSeg direct segments. Used by
// frontends (the simulator and tests).
func (r *Request) Encode(b []byte) {
	b = b[:RequestSize]
	clear(b)
	le.PutUint16(b[ReqRqid:], r.Rqid)
	b[ReqAct] = r.Act
	b[ReqCmdLen] = r.CmdLen
	copy(b[ReqCmnd:ReqCmnd+MaxCommandSize], r.CDB[:])
	le.PutUint16(b[ReqTimeout:], r.Timeout)
	le.PutUint16(b[ReqChannel:], r.Channel)
	le.PutUint16(b[ReqID:], r.ID)
	le.PutUint16(b[ReqLUN:], r.LUN)
	le.PutUint16(b[ReqRefRqid:], r.RefRqid)
	b[ReqDataDirection] = r.Dir
	nr := uint8(r.NSeg)
	if r.Indirect {
		nr |= SGGrant
	}
	b[ReqNrSegments] = nr
	for i := 0; i < r.NSeg && i < SGTableSize; i++ {
		r.Seg[i].put(b[ReqSeg+i*SegmentSize:])
	}
}

// EncodeSegments writes segs as an indirect page list (8 bytes each).
func EncodeSegments(b []byte, segs []Segment) int {
	for i, s := range segs {
		s.put(b[i*SegmentSize:])
	}
	return len(segs) * SegmentSize
}

// Response is struct vscsiif_response.
type Response struct {
	Rqid     uint16
	Act      uint8
	Sense    []byte // at most SenseBufferSize bytes are sent
	Rslt     int32
	Residual uint32
}

// Encode writes the response into b (ResponseSize bytes, reserved bytes
// and unused sense bytes zero). Sense longer than 96 bytes is truncated.
func (r *Response) Encode(b []byte) {
	b = b[:ResponseSize]
	clear(b)
	le.PutUint16(b[RspRqid:], r.Rqid)
	b[RspAct] = r.Act
	n := copy(b[RspSenseBuffer:RspSenseBuffer+SenseBufferSize], r.Sense)
	b[RspSenseLen] = uint8(n)
	le.PutUint32(b[RspRslt:], uint32(r.Rslt))
	le.PutUint32(b[RspResidualLen:], r.Residual)
}

// Decode parses a response (frontend side). Sense aliases sense, the
// caller's 96-byte buffer; a sense_len above 96 is clamped as Linux does.
func (r *Response) Decode(b []byte, sense []byte) error {
	if len(b) < ResponseSize {
		return fmt.Errorf("vscsiif: response of %d bytes, need %d", len(b), ResponseSize)
	}
	r.Rqid = le.Uint16(b[RspRqid:])
	r.Act = b[RspAct]
	n := int(b[RspSenseLen])
	if n > SenseBufferSize {
		n = SenseBufferSize
	}
	r.Sense = sense[:copy(sense, b[RspSenseBuffer:RspSenseBuffer+n])]
	r.Rslt = int32(le.Uint32(b[RspRslt:]))
	r.Residual = le.Uint32(b[RspResidualLen:])
	return nil
}
