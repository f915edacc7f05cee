//go:build linux && cgo

package verbs

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// pollFD puts a library-owned event file descriptor (an RDMA CM event
// channel, a completion channel) on Go's poller: the descriptor is made
// non-blocking, a duplicate is handed to os.NewFile (which registers it
// with epoll, edge-triggered), and reads go through RawConn.Read, whose
// callback calls the library's blocking-turned-non-blocking get-event
// function until it reports EAGAIN. No thread sleeps in a C call and
// nothing spins.
type pollFD struct {
	f    *os.File
	rc   syscall.RawConn
	intr atomic.Bool
}

func newPollFD(fd int, name string) (*pollFD, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return nil, err
	}
	f := os.NewFile(uintptr(dup), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pollFD{f: f, rc: rc}, nil
}

// wait calls try until it reports done, waiting for readability between
// calls. try returns done=false only when the library said EAGAIN. wait
// returns os.ErrDeadlineExceeded at the deadline or after interrupt.
func (p *pollFD) wait(deadline time.Time, try func() bool) error {
	if err := p.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	// Set the deadline before looking at the flag: an interrupt that
	// comes after the look moves the deadline into the past again.
	if p.intr.Swap(false) {
		return os.ErrDeadlineExceeded
	}
	return p.rc.Read(func(uintptr) bool { return try() })
}

// interrupt wakes a wait in progress, or the next one.
func (p *pollFD) interrupt() {
	p.intr.Store(true)
	p.f.SetReadDeadline(time.Unix(1, 0))
}

func (p *pollFD) close() error { return p.f.Close() }
