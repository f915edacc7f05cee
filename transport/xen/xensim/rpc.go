package xensim

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// rpc is the client end of a control connection: requests matched to
// replies by seq, pushes handed to onPush.
type rpc struct {
	c      *net.UnixConn
	onPush func(m msg)

	wmu sync.Mutex

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]chan msg
	err     error
	done    chan struct{}
}

func dialRPC(path string) (*rpc, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("xensim: connecting to the simulator: %w", err)
	}
	return &rpc{c: c, pending: map[uint32]chan msg{}, done: make(chan struct{})}, nil
}

func (r *rpc) start() { go r.readLoop() }

func (r *rpc) readLoop() {
	buf := make([]byte, msgMax)
	oob := make([]byte, 256)
	var err error
	for {
		var m msg
		m, err = recv(r.c, buf, oob)
		if err != nil {
			break
		}
		if m.seq == 0 {
			closeFDs(m.fds)
			if r.onPush != nil {
				r.onPush(m)
			}
			continue
		}
		r.mu.Lock()
		ch := r.pending[m.seq]
		delete(r.pending, m.seq)
		r.mu.Unlock()
		if ch == nil {
			closeFDs(m.fds)
			continue
		}
		ch <- m
	}
	r.shutdown(err)
}

func (r *rpc) shutdown(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err == nil || errors.Is(err, net.ErrClosed) {
		err = errEOF
	}
	r.err = err
	for s, ch := range r.pending {
		close(ch)
		delete(r.pending, s)
	}
	r.c.Close()
	close(r.done)
}

// call sends a request and waits for its reply. A reply with an errno is
// returned as an *OpError; the caller owns the reply's descriptors.
func (r *rpc) call(op Op, str string, args ...uint64) (msg, error) {
	m := msg{op: op, str: str}
	copy(m.args[:], args)
	ch := make(chan msg, 1)
	r.mu.Lock()
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return msg{}, &OpError{Op: op, Err: err}
	}
	r.seq++
	if r.seq == 0 {
		r.seq++
	}
	m.seq = r.seq
	r.pending[m.seq] = ch
	r.mu.Unlock()
	r.wmu.Lock()
	err := send(r.c, &m)
	r.wmu.Unlock()
	if err != nil {
		r.mu.Lock()
		delete(r.pending, m.seq)
		r.mu.Unlock()
		return msg{}, &OpError{Op: op, Err: err}
	}
	rep, ok := <-ch
	if !ok {
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		return msg{}, &OpError{Op: op, Err: err}
	}
	if rep.errno != 0 {
		closeFDs(rep.fds)
		return msg{}, &OpError{Op: op, Err: rep.errno}
	}
	return rep, nil
}

func (r *rpc) close() error {
	r.shutdown(errEOF)
	return nil
}

// OpError is a failed simulator request.
type OpError struct {
	Op  Op
	Err error
}

func (e *OpError) Error() string { return fmt.Sprintf("xensim %v: %v", e.Op, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}
