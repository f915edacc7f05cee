package backstore

import "sync/atomic"

// nullTile is the least length of a null store's pattern tile.
const nullTile = 64 << 10

// nullStore discards writes and reads zeros or a repeating pattern. It is
// for benchmarks: it measures everything above the store.
type nullStore struct {
	geometry
	closed atomic.Bool
	// tile is the pattern repeated whole times, at least nullTile bytes,
	// plus one more pattern so a copy may start at any phase. Nil for zeros.
	tile []byte
	plen int64
}

func newNull(size int64, bs uint32, readOnly bool, pattern []byte) *nullStore {
	s := &nullStore{geometry: geometry{size: size, bs: bs, readOnly: readOnly}}
	if len(pattern) > 0 {
		s.plen = int64(len(pattern))
		reps := (nullTile+len(pattern)-1)/len(pattern) + 1
		s.tile = make([]byte, 0, reps*len(pattern))
		for range reps {
			s.tile = append(s.tile, pattern...)
		}
	}
	return s
}

func (s *nullStore) ReadAt(p []byte, off int64) (int, error) {
	if s.closed.Load() {
		return 0, errClosed(opRead, off, int64(len(p)))
	}
	if err := s.checkRead(off, len(p)); err != nil {
		return 0, err
	}
	if s.tile == nil {
		clear(p)
		return len(p), nil
	}
	for n := 0; n < len(p); {
		phase := (off + int64(n)) % s.plen
		n += copy(p[n:], s.tile[phase:])
	}
	return len(p), nil
}

// zeros is what a null store without a pattern lends (View): never
// written, so its pages stay the kernel's one zero page.
var zeros [maxView]byte

// maxView is the longest view a null store lends: the SCSI layer's largest
// transfer.
const maxView = 16 << 20

// View lends zeros, or the pattern tile at the offset's phase.
func (s *nullStore) View(off int64, n int) ([]byte, func(), bool) {
	if s.closed.Load() || s.checkRead(off, n) != nil {
		return nil, nil, false
	}
	if s.tile == nil {
		if n > maxView {
			return nil, nil, false
		}
		return zeros[:n:n], nil, true
	}
	phase := off % s.plen
	if int64(n) > int64(len(s.tile))-phase {
		return nil, nil, false
	}
	return s.tile[phase : phase+int64(n) : phase+int64(n)], nil, true
}

func (s *nullStore) WriteAt(p []byte, off int64) (int, error) {
	if s.closed.Load() {
		return 0, errClosed(opWrite, off, int64(len(p)))
	}
	if err := s.checkWrite(opWrite, off, int64(len(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *nullStore) WriteAtSync(p []byte, off int64) (int, error) { return s.WriteAt(p, off) }

func (s *nullStore) Flush() error {
	if s.closed.Load() {
		return errClosed(opFlush, 0, 0)
	}
	return nil
}

func (s *nullStore) Unmap(off, n int64) error { return s.discard(opUnmap, off, n) }

func (s *nullStore) WriteZeroes(off, n int64) error { return s.discard(opWriteZeroes, off, n) }

func (s *nullStore) discard(op string, off, n int64) error {
	if s.closed.Load() {
		return errClosed(op, off, n)
	}
	return s.checkWrite(op, off, n)
}

// Caps reports Unmap, and UnmapZeroes only when the store reads zeros.
func (s *nullStore) Caps() Caps {
	return Caps{ReadOnly: s.readOnly, Unmap: true, UnmapZeroes: s.tile == nil, Immediate: true}
}

func (s *nullStore) Close() error {
	s.closed.Store(true)
	return nil
}
