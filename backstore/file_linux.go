package backstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// fileAlign is the O_DIRECT alignment of offsets, lengths and buffer
	// addresses for regular files: the page size, which every filesystem
	// accepts. Block devices use their logical sector size instead.
	fileAlign = 4096
	// bounceSize is the size of one aligned bounce buffer; larger unaligned
	// direct I/O goes through it in pieces.
	bounceSize = 256 << 10
	// rmwStripes is the number of locks that serialise read-modify-write of
	// partial direct blocks, keyed by block.
	rmwStripes = 64
)

// Ways of zeroing a file range, tried in order; WriteZeroes moves on to
// the next for good when the filesystem says EOPNOTSUPP.
const (
	zeroByZeroRange = iota
	zeroByPunch
	zeroByWrite
)

// fileStore serves regular files and block devices: both are a file
// descriptor read with pread and written with pwrite. Only Unmap and
// WriteZeroes differ (fallocate for files, ioctls for devices).
type fileStore struct {
	geometry
	// mu is read-held by every operation and write-held by Close, so that
	// the descriptor is never closed, and its number reused, under an I/O.
	mu     sync.RWMutex
	closed bool
	f      *os.File
	fd     int
	caps   Caps
	block  bool  // a block device: ioctls for Unmap and WriteZeroes
	sector int64 // block device logical sector size

	direct bool
	align  int64 // direct I/O alignment, a power of two
	bounce sync.Pool
	rmw    [rmwStripes]sync.Mutex

	noDsync      atomic.Bool  // RWF_DSYNC unsupported: pwrite, then fdatasync
	zeroMode     atomic.Int32 // zeroBy*
	forceNoDsync bool         // tests: act as if RWF_DSYNC were unsupported
}

func newFileStore(f *os.File, g geometry, direct bool, align int64) *fileStore {
	s := &fileStore{geometry: g, f: f, fd: int(f.Fd()), direct: direct, align: align}
	s.bounce.New = func() any {
		b := alignedBuf(bounceSize, fileAlign)
		return &b
	}
	return s
}

// openFile opens a regular file store; see Spec for what it accepts.
func openFile(spec Spec) (Store, error) {
	flags := os.O_RDWR
	if spec.ReadOnly {
		flags = os.O_RDONLY
	}
	if spec.Create {
		flags |= os.O_CREATE
	}
	if spec.Direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(spec.Path, flags, 0o644)
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: err}
	}
	s, err := setupFile(f, spec)
	if err != nil {
		f.Close()
		return nil, err
	}
	return regularFile{s}, nil
}

func setupFile(f *os.File, spec Spec) (*fileStore, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, &OpError{Op: opOpen, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("backstore: %s is not a regular file (kind block serves devices)", spec.Path)
	}
	bs := int64(spec.blockSize())
	size, cur := spec.Size, st.Size()
	switch {
	case size == 0:
		size = cur - cur%bs
		if size == 0 {
			return nil, fmt.Errorf("backstore: file %s is %d bytes, less than one block of %d", spec.Path, cur, bs)
		}
	case cur < size && !spec.Create:
		return nil, fmt.Errorf("backstore: file %s is %d bytes, smaller than size %d (set create to extend it)", spec.Path, cur, size)
	case cur < size:
		if err := f.Truncate(size); err != nil {
			return nil, &OpError{Op: opOpen, Len: size, Err: err}
		}
	}
	s := newFileStore(f, geometry{size: size, bs: uint32(bs), readOnly: spec.ReadOnly}, spec.Direct, fileAlign)
	s.caps = Caps{ReadOnly: spec.ReadOnly, Thin: true, Volatile: true}
	if !spec.ReadOnly {
		// Punching a hole at the end of the file changes nothing and tells
		// whether the filesystem can punch at all.
		err := unix.Fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, max(cur, size), bs)
		s.caps.Unmap = err == nil
		s.caps.UnmapZeroes = err == nil
	}
	return s, nil
}

func (s *fileStore) Caps() Caps { return s.caps }

func (s *fileStore) ReadAt(p []byte, off int64) (int, error) {
	if err := s.checkRead(off, len(p)); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed(opRead, off, int64(len(p)))
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if s.direct && !s.aligned(p, off) {
		n, err = s.readBounce(p, off)
	} else {
		n, err = s.preadFull(p, off)
	}
	if err != nil {
		return n, &OpError{Op: opRead, Off: off, Len: int64(len(p)), Err: err}
	}
	return n, nil
}

func (s *fileStore) WriteAt(p []byte, off int64) (int, error) { return s.writeAt(p, off, false) }

func (s *fileStore) WriteAtSync(p []byte, off int64) (int, error) { return s.writeAt(p, off, true) }

func (s *fileStore) writeAt(p []byte, off int64, sync bool) (int, error) {
	if err := s.checkWrite(opWrite, off, int64(len(p))); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed(opWrite, off, int64(len(p)))
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.write(p, off, sync)
	if err != nil {
		return n, &OpError{Op: opWrite, Off: off, Len: int64(len(p)), Err: err}
	}
	return n, nil
}

// write writes p at off, durably when sync is set: with RWF_DSYNC where
// the kernel has it, else with pwrite and then fdatasync. Callers hold mu.
func (s *fileStore) write(p []byte, off int64, sync bool) (int, error) {
	dsync := sync && !s.noDsync.Load()
	var n int
	var err error
	if s.direct && !s.aligned(p, off) {
		n, err = s.writeBounce(p, off, dsync)
	} else {
		n, err = s.pwriteFull(p, off, dsync)
	}
	if dsync && n == 0 && (err == unix.EOPNOTSUPP || err == unix.ENOSYS) {
		s.noDsync.Store(true)
		return s.write(p, off, sync)
	}
	if err == nil && sync && !dsync {
		err = fdatasync(s.fd)
	}
	return n, err
}

func (s *fileStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed(opFlush, 0, 0)
	}
	if err := fdatasync(s.fd); err != nil {
		return &OpError{Op: opFlush, Err: err}
	}
	return nil
}

func (s *fileStore) Unmap(off, n int64) error {
	if err := s.checkWrite(opUnmap, off, n); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed(opUnmap, off, n)
	}
	if n == 0 {
		return nil
	}
	var err error
	if s.block {
		err = s.discard(off, n)
	} else {
		err = s.byBlocks(off, n, func(off, n int64) error {
			return fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		})
	}
	if err != nil {
		return &OpError{Op: opUnmap, Off: off, Len: n, Err: classify(err)}
	}
	return nil
}

// byBlocks applies whole to [off, off+n). A direct store read-modify-writes
// the partial blocks of its alignment under the block locks, so it zeroes
// the partial blocks at either end with writes instead, and applies whole
// only to the aligned middle, lest it race with a neighbour's RMW.
func (s *fileStore) byBlocks(off, n int64, whole func(off, n int64) error) error {
	if !s.direct {
		return whole(off, n)
	}
	end := off + n
	start, stop := alignUp(off, s.align), end&^(s.align-1)
	if start >= stop {
		return s.writeZeros(off, n)
	}
	if off < start {
		if err := s.writeZeros(off, start-off); err != nil {
			return err
		}
	}
	if err := whole(start, stop-start); err != nil {
		return err
	}
	if stop < end {
		return s.writeZeros(stop, end-stop)
	}
	return nil
}

func (s *fileStore) WriteZeroes(off, n int64) error {
	if err := s.checkWrite(opWriteZeroes, off, n); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed(opWriteZeroes, off, n)
	}
	if n == 0 {
		return nil
	}
	var err error
	if s.block {
		err = s.byBlocks(off, n, s.zeroOut)
	} else {
		err = s.byBlocks(off, n, s.zeroFile)
	}
	if err != nil {
		return &OpError{Op: opWriteZeroes, Off: off, Len: n, Err: classify(err)}
	}
	return nil
}

// zeroFile zeroes a file range with the best method the filesystem has:
// FALLOC_FL_ZERO_RANGE, else a punched hole, else written zeros.
func (s *fileStore) zeroFile(off, n int64) error {
	for {
		mode := s.zeroMode.Load()
		var err error
		switch mode {
		case zeroByZeroRange:
			err = fallocate(s.fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		case zeroByPunch:
			err = fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		default:
			return s.writeZeros(off, n)
		}
		if err != unix.EOPNOTSUPP {
			return err
		}
		s.zeroMode.CompareAndSwap(mode, mode+1)
	}
}

// writeZeros writes zeros over [off, off+n). Callers hold mu.
func (s *fileStore) writeZeros(off, n int64) error {
	bp := s.bounce.Get().(*[]byte)
	defer s.bounce.Put(bp)
	// The bounce buffer is aligned, so aligned pieces of the range go
	// straight to the file even with O_DIRECT.
	z := *bp
	clear(z)
	for end := off + n; off < end; {
		m := min(end-off, int64(len(z)))
		if _, err := s.write(z[:m], off, false); err != nil {
			return err
		}
		off += m
	}
	return nil
}

// regularFile is a fileStore over a regular file, which can also tell
// data from holes. (Block devices cannot: they have no SEEK_DATA.)
type regularFile struct{ *fileStore }

// Allocation reports whether the block holding off holds data and how far
// from off the same state runs, from SEEK_DATA and SEEK_HOLE. A block that
// is partly data counts as allocated.
func (s regularFile) Allocation(off int64) (bool, int64, error) {
	if err := CheckRange(off, 1, s.size); err != nil {
		return false, 0, &OpError{Op: opAllocation, Off: off, Len: 1, Err: err}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, 0, errClosed(opAllocation, off, 1)
	}
	bs := int64(s.bs)
	blk := off &^ (bs - 1)
	data, err := unix.Seek(s.fd, blk, unix.SEEK_DATA)
	switch {
	case err == unix.ENXIO: // no data from blk to the end of the file
		data = s.size
	case err != nil:
		return false, 0, &OpError{Op: opAllocation, Off: off, Len: 1, Err: err}
	}
	if data = min(data, s.size); data-blk >= bs {
		return false, blk + (data-blk)&^(bs-1) - off, nil
	}
	hole, err := unix.Seek(s.fd, data, unix.SEEK_HOLE)
	if err != nil {
		return false, 0, &OpError{Op: opAllocation, Off: off, Len: 1, Err: err}
	}
	return true, alignUp(min(hole, s.size), bs) - off, nil
}

// Close flushes a writable store, then closes it. Later calls return nil;
// other operations after Close fail with ErrClosed.
func (s *fileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if !s.readOnly {
		if e := fdatasync(s.fd); e != nil {
			err = &OpError{Op: opFlush, Err: e}
		}
	}
	if e := s.f.Close(); e != nil && err == nil {
		err = &OpError{Op: opClose, Err: e}
	}
	return err
}

// aligned reports whether p and off can go to an O_DIRECT descriptor as
// they are.
func (s *fileStore) aligned(p []byte, off int64) bool {
	a := s.align - 1
	return off&a == 0 && int64(len(p))&a == 0 && int64(addrOf(p))&a == 0
}

// preadFull reads len(p) bytes at off, retrying short reads and EINTR.
// Past the end of the file it reads zeros, as from a hole.
func (s *fileStore) preadFull(p []byte, off int64) (int, error) {
	for n := 0; n < len(p); {
		m, err := unix.Pread(s.fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
		// A direct read ends short only at the end of the file, where
		// the next offset may not even be aligned.
		if m == 0 || (s.direct && n < len(p) && (off+int64(n))&(s.align-1) != 0) {
			clear(p[n:])
			break
		}
	}
	return len(p), nil
}

// pwriteFull writes len(p) bytes at off, retrying short writes and EINTR,
// with RWF_DSYNC when dsync is set.
func (s *fileStore) pwriteFull(p []byte, off int64, dsync bool) (int, error) {
	n := 0
	for n < len(p) {
		var m int
		var err error
		if dsync {
			if s.forceNoDsync {
				return n, unix.EOPNOTSUPP
			}
			m, err = unix.Pwritev2(s.fd, [][]byte{p[n:]}, off+int64(n), unix.RWF_DSYNC)
		} else {
			m, err = unix.Pwrite(s.fd, p[n:], off+int64(n))
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

// readBounce reads through aligned bounce buffers for a direct store
// whose caller's buffer, offset or length is not aligned.
func (s *fileStore) readBounce(p []byte, off int64) (int, error) {
	bp := s.bounce.Get().(*[]byte)
	defer s.bounce.Put(bp)
	buf := *bp
	a := s.align
	end := alignUp(off+int64(len(p)), a)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (a - 1)
		w := min(end-start, int64(len(buf)))
		if _, err := s.preadFull(buf[:w], start); err != nil {
			return n, err
		}
		n += copy(p[n:], buf[pos-start:w])
	}
	return n, nil
}

// writeBounce writes through aligned bounce buffers for a direct store.
// A partial block at either end is read, modified and written back under
// a lock for that block, so that unaligned writes to distinct bytes of one
// block do not undo each other.
func (s *fileStore) writeBounce(p []byte, off int64, dsync bool) (int, error) {
	a := s.align
	end := off + int64(len(p))
	headBlk, tailBlk := off&^(a-1), (end-1)&^(a-1)
	headRMW, tailRMW := off != headBlk, end&(a-1) != 0
	// Take the one or two stripe locks in stripe order.
	lo, hi := -1, -1
	if headRMW {
		lo = s.stripe(headBlk)
	}
	if tailRMW {
		hi = s.stripe(tailBlk)
	}
	lo, hi = min(lo, hi), max(lo, hi)
	if lo == hi || lo < 0 {
		lo = -1
	}
	if lo >= 0 {
		s.rmw[lo].Lock()
		defer s.rmw[lo].Unlock()
	}
	if hi >= 0 {
		s.rmw[hi].Lock()
		defer s.rmw[hi].Unlock()
	}

	bp := s.bounce.Get().(*[]byte)
	defer s.bounce.Put(bp)
	buf := *bp
	alignedEnd := alignUp(end, a)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (a - 1)
		w := min(alignedEnd-start, int64(len(buf)))
		b := buf[:w]
		dataEnd := min(end, start+w)
		if pos > start { // the head block, partly ours
			if _, err := s.preadFull(b[:a], start); err != nil {
				return n, err
			}
		}
		if dataEnd < start+w && (w > a || pos == start) { // the tail block, if not just read
			if _, err := s.preadFull(b[w-a:], start+w-a); err != nil {
				return n, err
			}
		}
		copy(b[pos-start:], p[n:n+int(dataEnd-pos)])
		if _, err := s.pwriteFull(b, start, dsync); err != nil {
			return n, err
		}
		n += int(dataEnd - pos)
	}
	return n, nil
}

func (s *fileStore) stripe(blk int64) int { return int((blk / s.align) % rmwStripes) }

func alignUp(x, a int64) int64 { return (x + a - 1) &^ (a - 1) }

// alignedBuf returns n bytes whose address is a multiple of a.
func alignedBuf(n, a int) []byte {
	b := make([]byte, n+a)
	skip := (a - int(addrOf(b)%uintptr(a))) % a
	return b[skip : skip+n : skip+n]
}

func fdatasync(fd int) error {
	for {
		if err := unix.Fdatasync(fd); err != unix.EINTR {
			return err
		}
	}
}

func fallocate(fd int, mode uint32, off, n int64) error {
	for {
		if err := unix.Fallocate(fd, mode, off, n); err != unix.EINTR {
			return err
		}
	}
}

// classify marks "the filesystem or device cannot do this" errnos as
// ErrNotSupported, keeping the errno too.
func classify(err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) {
		return fmt.Errorf("%w (%w)", ErrNotSupported, err)
	}
	return err
}
