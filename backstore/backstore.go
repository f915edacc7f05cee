// Package backstore is where a logical unit's data lives: the null device,
// memory, regular files, block devices, and the wrappers composed over them
// (fault injection now; QoS limits and copy-on-write images later).
//
// A Store knows bytes and offsets, never SCSI. Every data-path method takes a
// caller-owned buffer and returns no freshly allocated memory, so the SCSI
// layer can read straight into transport memory with no copy and no
// allocation per command.
//
// Errors are reported as wrapped errnos where the operating system gave one
// (syscall.EIO, syscall.ENOSPC, ...) so callers classify them with errors.Is;
// ErrReadOnly, ErrOutOfRange and ErrNotSupported cover the rest.
package backstore

import (
	"errors"
	"fmt"
)

// Store is one logical unit's backing storage. Implementations are safe for
// concurrent use: the SCSI layer issues reads and writes from many goroutines
// at once and orders them itself where SCSI requires it.
type Store interface {
	// Size is the capacity in bytes. It is a multiple of BlockSize.
	Size() int64
	// BlockSize is the natural block size in bytes (512 or 4096): the
	// device sector size for block devices, the configured size otherwise.
	BlockSize() uint32

	// ReadAt reads len(p) bytes at off. A read wholly inside Size returns
	// len(p), nil or an error; holes and unmapped ranges read as zeros.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes len(p) bytes at off. The data is durable only after
	// Flush, or at once if the call is WriteAtSync.
	WriteAt(p []byte, off int64) (int, error)
	// WriteAtSync writes like WriteAt and returns only once the data is
	// durable (force unit access).
	WriteAtSync(p []byte, off int64) (int, error)
	// Flush makes every completed write durable.
	Flush() error

	// Unmap deallocates [off, off+n): later reads return zeros when
	// Caps().UnmapZeroes is set, otherwise unspecified data. Stores without
	// deallocation return ErrNotSupported.
	Unmap(off, n int64) error
	// WriteZeroes sets [off, off+n) to zero, as efficiently as the store can.
	WriteZeroes(off, n int64) error

	// Caps describes what this store can do.
	Caps() Caps
	// Close releases the store. Close flushes first when the store has
	// volatile state of its own.
	Close() error
}

// Viewer is a Store that can lend its bytes for reading in place. A
// transport that copies data-in anyway (a grant copy into a Xen guest, a
// memory copy) can copy from the view, and the read costs one pass over
// the data instead of two. RDMA, which sends from registered buffers, does
// not use views.
type Viewer interface {
	// View returns the n bytes at off, or ok false when it cannot lend
	// them (the caller then uses ReadAt, which reports any error). The
	// bytes stay valid and unchanged until done is called; done may be
	// nil. The caller must not write them.
	View(off int64, n int) (b []byte, done func(), ok bool)
}

// Caps describes a store's abilities, which the SCSI layer reports to
// initiators (READ CAPACITY LBPME/LBPRZ, the block limits VPD page).
type Caps struct {
	// ReadOnly stores fail every write with ErrReadOnly.
	ReadOnly bool
	// Thin stores allocate on write and can run out of space (ENOSPC).
	Thin bool
	// Unmap is set when Unmap deallocates.
	Unmap bool
	// UnmapZeroes is set when unmapped ranges read back as zeros.
	UnmapZeroes bool
	// Immediate is set when every operation completes from memory without
	// waiting on a device (memory, null): the SCSI path may run such I/O on
	// a transport's receive goroutine instead of handing it off. A wrapper
	// that can block (throttling, test gates) must clear it.
	Immediate bool
	// Volatile is set when acknowledged writes can be lost without Flush
	// (a write-back cache: file page cache). Memory and null stores are not
	// volatile in this sense: they have no more durable state to reach.
	Volatile bool
}

// Sentinel errors. Stores wrap them, or an errno, in an *OpError.
var (
	ErrReadOnly     = errors.New("backstore: read-only")
	ErrOutOfRange   = errors.New("backstore: offset or length out of range")
	ErrNotSupported = errors.New("backstore: operation not supported")
	ErrClosed       = errors.New("backstore: closed")
)

// OpError records which operation failed where.
type OpError struct {
	Op  string // "read", "write", "flush", "unmap", "write-zeroes", "open", "close"
	Off int64  // byte offset; zero for operations without a range
	Len int64  // byte length; zero for operations without a range
	Err error
}

func (e *OpError) Error() string {
	if e.Off == 0 && e.Len == 0 {
		return fmt.Sprintf("backstore %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("backstore %s at %d+%d: %v", e.Op, e.Off, e.Len, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// CheckRange returns ErrOutOfRange unless [off, off+n) lies within size.
func CheckRange(off, n, size int64) error {
	if off < 0 || n < 0 || off > size || n > size-off {
		return ErrOutOfRange
	}
	return nil
}
