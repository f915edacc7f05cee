package xensim

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/transport/xen"
)

// EventChannel is one end of a simulated interdomain event channel: two
// eventfds, one this end waits on and one it writes to notify the other
// end. An eventfd counts notifications until read, so one that arrives
// while nobody waits is not lost, and many coalesce into one wakeup, as
// with a pending bit. Wait reading the eventfd is the unmask.
type EventChannel struct {
	r      *rpc
	port   uint32
	wait   *os.File
	waitFD int // the raw descriptor of wait (os.File.Fd would make it blocking)
	notify int
	closed atomic.Bool
	rbuf   [8]byte
	one    [8]byte
}

var _ xen.EventChannel = (*EventChannel)(nil)

func newEventChannel(r *rpc, m msg) (*EventChannel, error) {
	if len(m.fds) != 2 {
		closeFDs(m.fds)
		return nil, fmt.Errorf("xensim: event channel reply with %d descriptors", len(m.fds))
	}
	// The eventfds are non-blocking, so os.File waits in the runtime's
	// poller and Close wakes a blocked Wait.
	e := &EventChannel{r: r, port: uint32(m.args[0]), wait: os.NewFile(uintptr(m.fds[0]), "evtchn"), waitFD: m.fds[0], notify: m.fds[1]}
	e.one[0] = 1
	return e, nil
}

// LocalPort is this end's port number.
func (e *EventChannel) LocalPort() uint32 { return e.port }

// Wait blocks until the other end notified since the last Wait.
func (e *EventChannel) Wait() error {
	for {
		_, err := e.wait.Read(e.rbuf[:])
		if err == nil {
			return nil
		}
		if e.closed.Load() || errors.Is(err, os.ErrClosed) {
			return xen.ErrClosed
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}

// Pending reports, without blocking, whether a notification is pending,
// and consumes it (for polling frontends).
func (e *EventChannel) Pending() bool {
	var b [8]byte
	n, err := unix.Read(e.waitFD, b[:])
	return err == nil && n == 8
}

// Notify signals the other end.
func (e *EventChannel) Notify() error {
	if e.closed.Load() {
		return xen.ErrClosed
	}
	_, err := unix.Write(e.notify, e.one[:])
	if err == unix.EAGAIN {
		return nil // the counter is saturated: a notification is pending anyway
	}
	return err
}

// Close unbinds the port and wakes a blocked Wait.
func (e *EventChannel) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.wait.Close()
	unix.Close(e.notify)
	_, err := e.r.call(OpClosePort, "", uint64(e.port))
	if errors.Is(err, errEOF) {
		err = nil
	}
	return err
}
