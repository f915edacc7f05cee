package backstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// openBlock opens a block device store; see Spec for what it accepts.
//
// A writable device is opened O_EXCL, which the kernel refuses while the
// device is mounted or claimed by another exclusive opener (another LUN, a
// device-mapper target, an md array).
func openBlock(spec Spec) (Store, error) {
	flags := os.O_RDWR | unix.O_EXCL
	if spec.ReadOnly {
		flags = os.O_RDONLY
	}
	if spec.Direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(spec.Path, flags, 0)
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: err}
	}
	s, err := setupBlock(f, spec)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func setupBlock(f *os.File, spec Spec) (*fileStore, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: err}
	}
	if st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return nil, fmt.Errorf("backstore: %s is not a block device (kind file serves regular files)", spec.Path)
	}
	fd := int(f.Fd())
	devSize, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: fmt.Errorf("BLKGETSIZE64: %w", err)}
	}
	sector, err := unix.IoctlGetUint32(fd, unix.BLKSSZGET)
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: fmt.Errorf("BLKSSZGET: %w", err)}
	}
	bs := spec.BlockSize
	switch {
	case bs == 0 && sector != 512 && sector != 4096:
		return nil, fmt.Errorf("backstore: %s has logical sector size %d; set block size 512 or 4096", spec.Path, sector)
	case bs == 0:
		bs = sector
	case bs < sector:
		return nil, fmt.Errorf("backstore: block size %d is smaller than the logical sector size %d of %s", bs, sector, spec.Path)
	}
	size := spec.Size
	switch {
	case size == 0:
		size = int64(devSize) - int64(devSize)%int64(bs)
		if size == 0 {
			return nil, fmt.Errorf("backstore: %s is %d bytes, less than one block of %d", spec.Path, devSize, bs)
		}
	case size%int64(bs) != 0:
		return nil, fmt.Errorf("backstore: size %d is not a multiple of block size %d", size, bs)
	case uint64(size) > devSize:
		return nil, fmt.Errorf("backstore: size %d is larger than %s (%d bytes)", size, spec.Path, devSize)
	}

	s := newFileStore(f, geometry{size: size, bs: bs, readOnly: spec.ReadOnly}, spec.Direct, int64(sector))
	s.block = true
	s.sector = int64(sector)
	s.caps = Caps{ReadOnly: spec.ReadOnly, Volatile: true}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		dev := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(sys.Rdev), unix.Minor(sys.Rdev))
		// Discarded blocks read back as whatever the device likes, so
		// UnmapZeroes stays false.
		s.caps.Unmap = !spec.ReadOnly && queueAttr(dev, "discard_max_bytes") != "0" && queueAttr(dev, "discard_max_bytes") != ""
		s.caps.Volatile = queueAttr(dev, "write_cache") != "write through"
	}
	return s, nil
}

// queueAttr reads a block queue attribute from sysfs, looking in the
// parent disk for a partition; "" when there is none.
func queueAttr(dev, name string) string {
	for _, dir := range []string{dev, filepath.Join(dev, "..")} {
		if b, err := os.ReadFile(filepath.Join(dir, "queue", name)); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// discard issues BLKDISCARD for the whole logical sectors of [off, off+n);
// the partial sectors at either end are left alone, which Unmap allows.
func (s *fileStore) discard(off, n int64) error {
	start, end := alignUp(off, s.sector), (off+n)&^(s.sector-1)
	if start >= end {
		return nil
	}
	return ioctlRange(s.fd, unix.BLKDISCARD, start, end-start)
}

// zeroOut zeroes [off, off+n) with BLKZEROOUT for whole logical sectors and
// written zeros for partial ones.
func (s *fileStore) zeroOut(off, n int64) error {
	end := off + n
	start, stop := alignUp(off, s.sector), end&^(s.sector-1)
	if start >= stop {
		return s.writeZeros(off, n)
	}
	if off < start {
		if err := s.writeZeros(off, start-off); err != nil {
			return err
		}
	}
	if err := ioctlRange(s.fd, unix.BLKZEROOUT, start, stop-start); err != nil {
		return err
	}
	if stop < end {
		return s.writeZeros(stop, end-stop)
	}
	return nil
}
