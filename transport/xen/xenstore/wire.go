// Package xenstore speaks the XenStore protocol (xen/include/public/io/
// xs_wire.h): the message codec, a client over /dev/xen/xenbus or
// xenstored's Unix socket, and an in-memory store for tests and
// simulators.
package xenstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// MsgType is enum xsd_sockmsg_type.
type MsgType uint32

// Message types (xs_wire.h).
const (
	Control            MsgType = 0
	Directory          MsgType = 1
	Read               MsgType = 2
	GetPerms           MsgType = 3
	Watch              MsgType = 4
	Unwatch            MsgType = 5
	TransactionStart   MsgType = 6
	TransactionEnd     MsgType = 7
	Introduce          MsgType = 8
	Release            MsgType = 9
	GetDomainPath      MsgType = 10
	Write              MsgType = 11
	Mkdir              MsgType = 12
	Rm                 MsgType = 13
	SetPerms           MsgType = 14
	WatchEventMsg      MsgType = 15
	Error              MsgType = 16
	IsDomainIntroduced MsgType = 17
	Resume             MsgType = 18
	SetTarget          MsgType = 19
	ResetWatches       MsgType = 21
	DirectoryPart      MsgType = 22
	TypeCount          MsgType = 23
	Invalid            MsgType = 0xffff
)

var typeNames = map[MsgType]string{
	Control: "CONTROL", Directory: "DIRECTORY", Read: "READ", GetPerms: "GET_PERMS", Watch: "WATCH",
	Unwatch: "UNWATCH", TransactionStart: "TRANSACTION_START", TransactionEnd: "TRANSACTION_END",
	Introduce: "INTRODUCE", Release: "RELEASE", GetDomainPath: "GET_DOMAIN_PATH", Write: "WRITE",
	Mkdir: "MKDIR", Rm: "RM", SetPerms: "SET_PERMS", WatchEventMsg: "WATCH_EVENT", Error: "ERROR",
	IsDomainIntroduced: "IS_DOMAIN_INTRODUCED", Resume: "RESUME", SetTarget: "SET_TARGET",
	ResetWatches: "RESET_WATCHES", DirectoryPart: "DIRECTORY_PART",
}

func (t MsgType) String() string {
	if s, ok := typeNames[t]; ok {
		return "XS_" + s
	}
	return fmt.Sprintf("XS_%d", uint32(t))
}

// Wire limits.
const (
	HeaderSize = 16   // sizeof(struct xsd_sockmsg)
	PayloadMax = 4096 // XENSTORE_PAYLOAD_MAX
	AbsPathMax = 3072 // XENSTORE_ABS_PATH_MAX
)

// Header is struct xsd_sockmsg: type @0, req_id @4, tx_id @8, len @12,
// little-endian (native x86).
type Header struct {
	Type  MsgType
	ReqID uint32
	TxID  uint32
	Len   uint32
}

// Header field offsets (checked by the ABI test against xs_wire.h).
const (
	offType  = 0
	offReqID = 4
	offTxID  = 8
	offLen   = 12
)

var le = binary.LittleEndian

// Encode writes the header into b[:16].
func (h Header) Encode(b []byte) {
	_ = b[HeaderSize-1]
	le.PutUint32(b[offType:], uint32(h.Type))
	le.PutUint32(b[offReqID:], h.ReqID)
	le.PutUint32(b[offTxID:], h.TxID)
	le.PutUint32(b[offLen:], h.Len)
}

// ErrBadMessage is matched by every decode failure.
var ErrBadMessage = errors.New("xenstore: bad message")

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadMessage}, a...)...)
}

// DecodeHeader parses a header; a payload longer than PayloadMax is
// refused (xenstored never sends one).
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, bad("header of %d bytes", len(b))
	}
	h := Header{Type: MsgType(le.Uint32(b[offType:])), ReqID: le.Uint32(b[offReqID:]),
		TxID: le.Uint32(b[offTxID:]), Len: le.Uint32(b[offLen:])}
	if h.Len > PayloadMax {
		return h, bad("payload of %d bytes exceeds %d", h.Len, PayloadMax)
	}
	return h, nil
}

// DecodeMsg splits one whole message into its header and payload (which
// aliases b). Bytes after the payload are ignored.
func DecodeMsg(b []byte) (Header, []byte, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return h, nil, err
	}
	end := HeaderSize + int(h.Len)
	if len(b) < end {
		return h, nil, bad("%v payload of %d bytes, have %d", h.Type, h.Len, len(b)-HeaderSize)
	}
	return h, b[HeaderSize:end:end], nil
}

// AppendMsg appends a message with the payload made of parts, each
// followed by a NUL unless it is the last and raw is set (XS_WRITE's
// value is not NUL-terminated).
func AppendMsg(dst []byte, h Header, raw bool, parts ...string) ([]byte, error) {
	n := 0
	for i, p := range parts {
		n += len(p)
		if !(raw && i == len(parts)-1) {
			n++
		}
	}
	if n > PayloadMax {
		return dst, fmt.Errorf("xenstore: %v payload of %d bytes exceeds %d", h.Type, n, PayloadMax)
	}
	h.Len = uint32(n)
	var hb [HeaderSize]byte
	h.Encode(hb[:])
	dst = append(dst, hb[:]...)
	for i, p := range parts {
		dst = append(dst, p...)
		if !(raw && i == len(parts)-1) {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}

// Strings splits a payload of NUL-terminated strings (XS_DIRECTORY,
// XS_GET_PERMS answers; a trailing string without NUL is kept too).
func Strings(p []byte) []string {
	if len(p) == 0 {
		return nil
	}
	p = bytes.TrimSuffix(p, []byte{0})
	parts := bytes.Split(p, []byte{0})
	out := make([]string, len(parts))
	for i, s := range parts {
		out[i] = string(s)
	}
	return out
}

// ParseWatchEvent parses an XS_WATCH_EVENT payload "path\0token\0".
func ParseWatchEvent(p []byte) (WatchEvent, error) {
	s := Strings(p)
	if len(s) < 2 {
		return WatchEvent{}, bad("watch event with %d fields", len(s))
	}
	return WatchEvent{Path: s[0], Token: s[1]}, nil
}

// ParsePerms parses an XS_GET_PERMS answer.
func ParsePerms(p []byte) ([]Perm, error) {
	s := Strings(p)
	if len(s) == 0 {
		return nil, bad("empty permission list")
	}
	out := make([]Perm, 0, len(s))
	for _, x := range s {
		pm, err := ParsePerm(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		out = append(out, pm)
	}
	return out, nil
}

// errnos is xsd_errors[] (xs_wire.h), the names an XS_ERROR carries.
var errnos = []struct {
	name string
	err  syscall.Errno
}{
	{"EINVAL", syscall.EINVAL}, {"EACCES", syscall.EACCES}, {"EEXIST", syscall.EEXIST},
	{"EISDIR", syscall.EISDIR}, {"ENOENT", syscall.ENOENT}, {"ENOMEM", syscall.ENOMEM},
	{"ENOSPC", syscall.ENOSPC}, {"EIO", syscall.EIO}, {"ENOTEMPTY", syscall.ENOTEMPTY},
	{"ENOSYS", syscall.ENOSYS}, {"EROFS", syscall.EROFS}, {"EBUSY", syscall.EBUSY},
	{"EAGAIN", syscall.EAGAIN}, {"EISCONN", syscall.EISCONN}, {"E2BIG", syscall.E2BIG},
	{"EPERM", syscall.EPERM},
}

// ParseError maps an XS_ERROR payload to its errno (EINVAL if unknown).
func ParseError(p []byte) syscall.Errno {
	name := string(bytes.TrimRight(p, "\x00"))
	for _, e := range errnos {
		if e.name == name {
			return e.err
		}
	}
	return syscall.EINVAL
}

// ErrorName is the wire name of an errno (for servers).
func ErrorName(err syscall.Errno) string {
	for _, e := range errnos {
		if e.err == err {
			return e.name
		}
	}
	return "EINVAL"
}

// OpError is a failed XenStore operation.
type OpError struct {
	Op   MsgType
	Path string
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("xenstore %v: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("xenstore %v %s: %v", e.Op, e.Path, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }
