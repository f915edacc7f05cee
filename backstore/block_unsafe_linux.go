package backstore

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlRange issues a block device ioctl that takes a {start, length}
// pair of u64 byte counts (BLKDISCARD, BLKZEROOUT).
func ioctlRange(fd int, req uint, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&r)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
