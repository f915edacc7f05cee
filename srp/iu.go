package srp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// be is the byte order of every multi-byte SRP field (SRP r16a clause 4:
// all fields are big-endian). Tags are opaque 8-byte values: Linux's
// initiator writes them in host order, so Tag fields are merely a
// representation of the eight bytes and round-trip exactly.
var be = binary.BigEndian

// Opcode is the information unit type code in byte 0 of every IU.
//
// Values from SRP r16a (one table per IU clause, 6.2 to 6.13) and
// Linux include/scsi/srp.h enum { SRP_LOGIN_REQ = 0x00, ... }. The two
// high bits encode the direction: 00b initiator request, 01b initiator
// response, 10b target request, 11b target response.
type Opcode uint8

const (
	OpLoginReq Opcode = 0x00 // SRP_LOGIN_REQ, initiator -> target
	OpTskMgmt  Opcode = 0x01 // SRP_TSK_MGMT, initiator -> target
	OpCmd      Opcode = 0x02 // SRP_CMD, initiator -> target
	OpILogout  Opcode = 0x03 // SRP_I_LOGOUT, initiator -> target
	OpCredRsp  Opcode = 0x41 // SRP_CRED_RSP, initiator -> target
	OpAerRsp   Opcode = 0x42 // SRP_AER_RSP, initiator -> target
	OpTLogout  Opcode = 0x80 // SRP_T_LOGOUT, target -> initiator
	OpCredReq  Opcode = 0x81 // SRP_CRED_REQ, target -> initiator
	OpAerReq   Opcode = 0x82 // SRP_AER_REQ, target -> initiator
	OpLoginRsp Opcode = 0xC0 // SRP_LOGIN_RSP, target -> initiator
	OpRsp      Opcode = 0xC1 // SRP_RSP, target -> initiator
	OpLoginRej Opcode = 0xC2 // SRP_LOGIN_REJ, target -> initiator
)

// Valid reports whether o is one of the twelve SRP opcodes.
func (o Opcode) Valid() bool {
	switch o {
	case OpLoginReq, OpTskMgmt, OpCmd, OpILogout, OpCredRsp, OpAerRsp,
		OpTLogout, OpCredReq, OpAerReq, OpLoginRsp, OpRsp, OpLoginRej:
		return true
	}
	return false
}

// FromInitiator reports whether IUs with this opcode are sent by an SRP
// initiator port (type codes 00h-7Fh) rather than a target port (80h-FFh).
func (o Opcode) FromInitiator() bool { return o < 0x80 }

func (o Opcode) String() string {
	switch o {
	case OpLoginReq:
		return "SRP_LOGIN_REQ"
	case OpTskMgmt:
		return "SRP_TSK_MGMT"
	case OpCmd:
		return "SRP_CMD"
	case OpILogout:
		return "SRP_I_LOGOUT"
	case OpCredRsp:
		return "SRP_CRED_RSP"
	case OpAerRsp:
		return "SRP_AER_RSP"
	case OpTLogout:
		return "SRP_T_LOGOUT"
	case OpCredReq:
		return "SRP_CRED_REQ"
	case OpAerReq:
		return "SRP_AER_REQ"
	case OpLoginRsp:
		return "SRP_LOGIN_RSP"
	case OpRsp:
		return "SRP_RSP"
	case OpLoginRej:
		return "SRP_LOGIN_REJ"
	}
	return fmt.Sprintf("SRP opcode %#02x", uint8(o))
}

// Error kinds. Every decode failure is a *DecodeError whose Kind is one of
// the first four; every encode failure is an *EncodeError whose Kind is one
// of the last two. Match them with errors.Is.
var (
	// ErrShort: the IU (or a length field inside it) needs more bytes
	// than were received.
	ErrShort = errors.New("srp: information unit too short")
	// ErrBadOpcode: byte 0 is not the expected (or any) IU type, or the
	// IU travels in the wrong direction.
	ErrBadOpcode = errors.New("srp: unexpected information unit type")
	// ErrBadFormat: a data buffer descriptor format code this codec does
	// not know (SRP_T_LOGOUT reasons 6 and 7 cover this case).
	ErrBadFormat = errors.New("srp: unsupported data buffer descriptor format")
	// ErrInconsistent: fields contradict each other (descriptor counts vs
	// table length, total length vs descriptors, immediate data offset
	// before the descriptors, both overflow and underflow set, ...).
	ErrInconsistent = errors.New("srp: inconsistent information unit")

	// ErrBufferTooSmall: the caller's buffer cannot hold the encoding.
	ErrBufferTooSmall = errors.New("srp: buffer too small for encoding")
	// ErrInvalid: a field value cannot be represented on the wire.
	ErrInvalid = errors.New("srp: field value cannot be encoded")
)

// DecodeError describes why an IU was rejected. Off is the byte offset
// (within the decoded buffer) of the offending field.
type DecodeError struct {
	IU     Opcode
	Field  string
	Off    int
	Kind   error // ErrShort, ErrBadOpcode, ErrBadFormat or ErrInconsistent
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v: %v: %s at byte %d: %s", e.Kind, e.IU, e.Field, e.Off, e.Reason)
}

func (e *DecodeError) Unwrap() error { return e.Kind }

// EncodeError describes why an IU could not be encoded.
type EncodeError struct {
	IU     Opcode
	Field  string
	Kind   error // ErrBufferTooSmall or ErrInvalid
	Reason string
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("%v: %v: %s: %s", e.Kind, e.IU, e.Field, e.Reason)
}

func (e *EncodeError) Unwrap() error { return e.Kind }

func errShort(op Opcode, field string, off, need, have int) error {
	return &DecodeError{IU: op, Field: field, Off: off, Kind: ErrShort,
		Reason: fmt.Sprintf("needs %d bytes, have %d", need, have)}
}

func errOpcode(want Opcode, b []byte) error {
	return &DecodeError{IU: want, Field: "IU TYPE", Off: 0, Kind: ErrBadOpcode,
		Reason: fmt.Sprintf("got %v", Opcode(b[0]))}
}

func errIncons(op Opcode, field string, off int, reason string) error {
	return &DecodeError{IU: op, Field: field, Off: off, Kind: ErrInconsistent, Reason: reason}
}

func errTooSmall(op Opcode, need, have int) error {
	return &EncodeError{IU: op, Field: "buffer", Kind: ErrBufferTooSmall,
		Reason: fmt.Sprintf("needs %d bytes, have %d", need, have)}
}

func errInvalid(op Opcode, field, reason string) error {
	return &EncodeError{IU: op, Field: field, Kind: ErrInvalid, Reason: reason}
}

// checkHead verifies the fixed part of an IU is present and byte 0 is op.
func checkHead(b []byte, op Opcode, fixed int) error {
	if len(b) < fixed {
		return errShort(op, "IU", 0, fixed, len(b))
	}
	if Opcode(b[0]) != op {
		return errOpcode(op, b)
	}
	return nil
}

// begin checks the caller's buffer and zeroes the bytes about to be
// written, so reserved fields go out as zero.
func begin(b []byte, op Opcode, n int) error {
	if len(b) < n {
		return errTooSmall(op, n, len(b))
	}
	clear(b[:n])
	b[0] = byte(op)
	return nil
}

// MemDescLen is the size of an SRP direct data buffer descriptor
// (SRP r16a 5.x "memory descriptor"; Linux struct srp_direct_buf).
const MemDescLen = 16

// MemDesc is an SRP memory descriptor: one region of initiator memory.
//
//	bytes 0-7   VIRTUAL ADDRESS
//	bytes 8-11  MEMORY HANDLE (the R_Key on InfiniBand/RoCE/iWARP)
//	bytes 12-15 DATA LENGTH
type MemDesc struct {
	Addr uint64
	Key  uint32
	Len  uint32
}

func (d MemDesc) put(b []byte) {
	_ = b[15]
	be.PutUint64(b[0:8], d.Addr)
	be.PutUint32(b[8:12], d.Key)
	be.PutUint32(b[12:16], d.Len)
}

func getMemDesc(b []byte) MemDesc {
	_ = b[15]
	return MemDesc{Addr: be.Uint64(b[0:8]), Key: be.Uint32(b[8:12]), Len: be.Uint32(b[12:16])}
}

// DecodeDescTable decodes an indirect descriptor table that was fetched
// from initiator memory (the region BufDesc.Table points at). len(b) must
// be a multiple of 16. The descriptors are appended to dst[:0], which is
// grown only if its capacity is too small.
func DecodeDescTable(b []byte, dst []MemDesc) ([]MemDesc, error) {
	if len(b)%MemDescLen != 0 {
		return dst[:0], &DecodeError{IU: OpCmd, Field: "indirect table", Off: len(b) &^ (MemDescLen - 1),
			Kind: ErrShort, Reason: fmt.Sprintf("%d bytes is not a whole number of 16-byte descriptors", len(b))}
	}
	n := len(b) / MemDescLen
	if cap(dst) < n {
		dst = make([]MemDesc, n)
	}
	dst = dst[:n]
	for i := range dst {
		dst[i] = getMemDesc(b[i*MemDescLen:])
	}
	return dst, nil
}

// EncodeDescTable writes descs as an indirect descriptor table (for an
// initiator to place in its memory) and returns the bytes written.
func EncodeDescTable(b []byte, descs []MemDesc) (int, error) {
	n := len(descs) * MemDescLen
	if len(b) < n {
		return 0, errTooSmall(OpCmd, n, len(b))
	}
	for i, d := range descs {
		d.put(b[i*MemDescLen:])
	}
	return n, nil
}

// capInt converts a byte count computed in 64 bits for an error message.
func capInt(u uint64) int {
	if u > 1<<31-1 {
		return 1<<31 - 1
	}
	return int(u)
}
