//go:build linux && cgo

package verbs

import (
	"errors"
	"os"
	"syscall"

	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// opErr turns a negative errno from the shim into a *provider.OpError
// whose Unwrap is the matching sentinel (or the syscall.Errno itself).
func opErr(op string, negErrno int) error {
	e := syscall.Errno(-negErrno)
	if negErrno > 0 {
		e = syscall.Errno(negErrno)
	}
	var s error = e
	switch e {
	case syscall.ENODEV, syscall.ENXIO:
		s = provider.ErrNoDevice
	case syscall.EADDRINUSE:
		s = provider.ErrAddrInUse
	case syscall.EADDRNOTAVAIL:
		s = provider.ErrAddrNotAvail
	case syscall.ENOMEM, syscall.ENOSPC, syscall.ENOBUFS:
		s = provider.ErrNoMemory
	case syscall.EINVAL, syscall.EAFNOSUPPORT:
		s = provider.ErrInvalid
	case syscall.EPERM, syscall.EACCES:
		s = provider.ErrPermission
	case syscall.ETIMEDOUT:
		s = provider.ErrTimeout
	case syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ECONNREFUSED:
		s = provider.ErrUnreachable
	}
	return &provider.OpError{Op: op, Errno: int(e), Err: s}
}

// waitErr maps what the Go poller returns while waiting on an event fd.
func waitErr(op string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return provider.ErrTimeout
	case errors.Is(err, os.ErrClosed):
		return provider.ErrClosed
	}
	return &provider.OpError{Op: op, Err: err}
}
