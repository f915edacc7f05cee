package xensim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// The control protocol: SOCK_SEQPACKET messages, one request or reply per
// packet, little-endian.
//
//	bytes 0-3    op
//	bytes 4-7    seq: chosen by the client, echoed in the reply; 0 in a push
//	bytes 8-11   errno: 0, or the Linux errno of a failed request
//	bytes 12-15  length of the string that follows the arguments
//	bytes 16-79  eight 64-bit arguments
//	bytes 80-    the string (a name, or a listing)
//
// File descriptors travel as SCM_RIGHTS on the reply that hands them out.
const (
	msgHeader = 16
	msgArgs   = 8
	msgFixed  = msgHeader + 8*msgArgs
	msgMax    = 4096
	maxFDs    = 4
)

// Op is a control request type.
type Op uint32

// Control requests. See doc.go for their arguments.
const (
	OpHello        Op = 1 // become dom0 or create a guest domain
	OpXenStore     Op = 2 // a new XenStore connection as the caller's domain
	OpDomain       Op = 3 // dom0: a guest's memory and grant table
	OpAllocUnbound Op = 4 // an unbound event channel port for a remote domain
	OpBind         Op = 5 // dom0: bind a guest's unbound port
	OpClosePort    Op = 6 // unbind a port
	OpDomainGone   Op = 7 // push to dom0: a domain was destroyed
	OpList         Op = 8 // the running domains, one "domid name" a line
	OpDestroy      Op = 9 // dom0: destroy a guest domain (as if it crashed)
)

func (o Op) String() string {
	names := [...]string{"", "HELLO", "XENSTORE", "DOMAIN", "ALLOC_UNBOUND", "BIND", "CLOSE_PORT", "DOMAIN_GONE", "LIST", "DESTROY"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return fmt.Sprintf("op %d", uint32(o))
}

// Roles in OpHello.
const (
	roleDom0  = 0
	roleGuest = 1
)

type msg struct {
	op    Op
	seq   uint32
	errno syscall.Errno
	args  [msgArgs]uint64
	str   string
	fds   []int
}

var le = binary.LittleEndian

// errBadMsg is a control message that does not parse.
var errBadMsg = errors.New("xensim: malformed control message")

func (m *msg) encode(b []byte) ([]byte, error) {
	if msgFixed+len(m.str) > msgMax {
		return nil, fmt.Errorf("xensim: %v message of %d bytes", m.op, msgFixed+len(m.str))
	}
	b = b[:msgFixed]
	le.PutUint32(b[0:], uint32(m.op))
	le.PutUint32(b[4:], m.seq)
	le.PutUint32(b[8:], uint32(m.errno))
	le.PutUint32(b[12:], uint32(len(m.str)))
	for i, a := range m.args {
		le.PutUint64(b[msgHeader+8*i:], a)
	}
	return append(b, m.str...), nil
}

func decodeMsg(b []byte) (msg, error) {
	var m msg
	if len(b) < msgFixed {
		return m, fmt.Errorf("%w: %d bytes", errBadMsg, len(b))
	}
	m.op = Op(le.Uint32(b[0:]))
	m.seq = le.Uint32(b[4:])
	m.errno = syscall.Errno(le.Uint32(b[8:]))
	n := le.Uint32(b[12:])
	if uint64(n) != uint64(len(b)-msgFixed) {
		return m, fmt.Errorf("%w: string of %d bytes, have %d", errBadMsg, n, len(b)-msgFixed)
	}
	for i := range m.args {
		m.args[i] = le.Uint64(b[msgHeader+8*i:])
	}
	m.str = string(b[msgFixed:])
	return m, nil
}

// send writes one message with its descriptors.
func send(c *net.UnixConn, m *msg) error {
	var buf [msgMax]byte
	b, err := m.encode(buf[:0])
	if err != nil {
		return err
	}
	var oob []byte
	if len(m.fds) > 0 {
		oob = unix.UnixRights(m.fds...)
	}
	n, oobn, err := c.WriteMsgUnix(b, oob, nil)
	if err == nil && (n != len(b) || oobn != len(oob)) {
		err = fmt.Errorf("xensim: short write of %v", m.op)
	}
	return err
}

// recv reads one message and any descriptors it carries (which the caller
// owns).
func recv(c *net.UnixConn, buf, oob []byte) (msg, error) {
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return msg{}, err
	}
	var fds []int
	if oobn > 0 {
		scms, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, s := range scms {
				if f, ferr := unix.ParseUnixRights(&s); ferr == nil {
					fds = append(fds, f...)
				}
			}
		}
	}
	if n == 0 && oobn == 0 {
		return msg{}, errEOF
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		closeFDs(fds)
		return msg{}, fmt.Errorf("%w: truncated", errBadMsg)
	}
	m, err := decodeMsg(buf[:n])
	if err != nil {
		closeFDs(fds)
		return m, err
	}
	m.fds = fds
	return m, nil
}

var errEOF = errors.New("xensim: connection closed")

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
