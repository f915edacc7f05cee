package xenstore

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"sync"
	"syscall"
)

// Serve answers xs_wire requests read from conn with the store connection
// s, and forwards s's watch events, until conn fails. It lets a simulator
// offer a Mem on a Unix socket that Dial (and the real xenstore-* tools)
// can use. It closes conn and s when it returns.
func Serve(conn io.ReadWriteCloser, s *MemConn) error {
	var wmu sync.Mutex
	send := func(h Header, raw bool, parts ...string) error {
		b, err := AppendMsg(nil, h, raw, parts...)
		if err != nil {
			b, _ = AppendMsg(nil, Header{Type: Error, ReqID: h.ReqID, TxID: h.TxID}, false, "E2BIG")
		}
		wmu.Lock()
		defer wmu.Unlock()
		_, err = conn.Write(b)
		return err
	}
	done := make(chan struct{})
	defer func() {
		conn.Close()
		s.Close()
		<-done
	}()
	go func() {
		defer close(done)
		for ev := range s.Events() {
			if send(Header{Type: WatchEventMsg}, false, ev.Path, ev.Token) != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(conn)
	var hb [HeaderSize]byte
	for {
		if _, err := io.ReadFull(r, hb[:]); err != nil {
			return err
		}
		h, err := DecodeHeader(hb[:])
		if err != nil {
			return err
		}
		p := make([]byte, h.Len)
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
		args := Strings(p)
		arg := func(i int) string {
			if i < len(args) {
				return args[i]
			}
			return ""
		}
		tx := Tx(h.TxID)
		var out []string
		raw := false
		switch h.Type {
		case Read:
			var v string
			v, err = s.Read(tx, arg(0))
			out, raw = []string{v}, true
		case Write:
			path := arg(0)
			val := ""
			if len(p) > len(path)+1 {
				val = string(p[len(path)+1:])
			}
			err = s.Write(tx, path, val)
			out = []string{"OK"}
		case Mkdir:
			err, out = s.Mkdir(tx, arg(0)), []string{"OK"}
		case Rm:
			err, out = s.Remove(tx, arg(0)), []string{"OK"}
		case Directory:
			out, err = s.List(tx, arg(0))
			if len(out) == 0 {
				out, raw = []string{""}, true
			}
		case GetPerms:
			var ps []Perm
			ps, err = s.Perms(tx, arg(0))
			for _, x := range ps {
				out = append(out, x.String())
			}
		case SetPerms:
			var ps []Perm
			for _, a := range args[min(1, len(args)):] {
				x, perr := ParsePerm(a)
				if perr != nil {
					err = syscall.EINVAL
					break
				}
				ps = append(ps, x)
			}
			if err == nil {
				err = s.SetPerms(tx, arg(0), ps)
			}
			out = []string{"OK"}
		case TransactionStart:
			var t Tx
			t, err = s.Begin()
			out = []string{strconv.FormatUint(uint64(t), 10)}
		case TransactionEnd:
			err, out = s.End(tx, arg(0) == "T"), []string{"OK"}
		case Watch:
			err, out = s.Watch(arg(0), arg(1)), []string{"OK"}
		case Unwatch:
			err, out = s.Unwatch(arg(0), arg(1)), []string{"OK"}
		default:
			err = syscall.ENOSYS
		}
		if err != nil {
			var errno syscall.Errno
			if !errors.As(err, &errno) {
				errno = syscall.EIO
			}
			err = send(Header{Type: Error, ReqID: h.ReqID, TxID: h.TxID}, false, ErrorName(errno))
		} else {
			err = send(Header{Type: h.Type, ReqID: h.ReqID, TxID: h.TxID}, raw, out...)
		}
		if err != nil {
			return err
		}
	}
}
