package backstore

// Operation names used in OpError.Op.
const (
	opOpen        = "open"
	opRead        = "read"
	opWrite       = "write"
	opFlush       = "flush"
	opUnmap       = "unmap"
	opWriteZeroes = "write-zeroes"
	opClose       = "close"
	opAllocation  = "allocation"
)

// geometry is what every store checks an operation against before doing
// any I/O.
type geometry struct {
	size     int64
	bs       uint32
	readOnly bool
}

func (g *geometry) Size() int64       { return g.size }
func (g *geometry) BlockSize() uint32 { return g.bs }

// checkRead returns an *OpError unless [off, off+n) is in range.
func (g *geometry) checkRead(off int64, n int) error {
	if err := CheckRange(off, int64(n), g.size); err != nil {
		return &OpError{Op: opRead, Off: off, Len: int64(n), Err: err}
	}
	return nil
}

// checkWrite returns an *OpError if the store is read-only or
// [off, off+n) is out of range, in that order.
func (g *geometry) checkWrite(op string, off, n int64) error {
	if g.readOnly {
		return &OpError{Op: op, Off: off, Len: n, Err: ErrReadOnly}
	}
	if err := CheckRange(off, n, g.size); err != nil {
		return &OpError{Op: op, Off: off, Len: n, Err: err}
	}
	return nil
}

func errClosed(op string, off, n int64) error {
	return &OpError{Op: op, Off: off, Len: n, Err: ErrClosed}
}
