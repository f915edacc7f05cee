package scsi

import "encoding/binary"

// respWriter builds a data-in response in place in the initiator's data-in
// buffer. It counts every byte the response has, writes those that fit, and
// lets a header be patched afterwards; nothing is allocated.
type respWriter struct {
	buf []byte
	n   int
}

// newResp starts a response to c whose CDB allocation length is alloc.
func newResp(c *Command, alloc int) respWriter {
	b := c.DataIn
	if alloc < len(b) {
		b = b[:alloc]
	}
	return respWriter{buf: b}
}

func (w *respWriter) byte1(v byte) {
	if w.n < len(w.buf) {
		w.buf[w.n] = v
	}
	w.n++
}

func (w *respWriter) bytes(b []byte) {
	if w.n < len(w.buf) {
		copy(w.buf[w.n:], b)
	}
	w.n += len(b)
}

// str writes s padded with spaces (or cut) to n bytes, as INQUIRY's ASCII
// fields are.
func (w *respWriter) str(s string, n int) {
	for i := 0; i < n; i++ {
		if i < len(s) {
			w.byte1(s[i])
		} else {
			w.byte1(' ')
		}
	}
}

func (w *respWriter) zeros(n int) {
	if w.n < len(w.buf) {
		clear(w.buf[w.n:min(w.n+n, len(w.buf))])
	}
	w.n += n
}

func (w *respWriter) u16(v uint16) {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	w.bytes(b[:])
}

func (w *respWriter) u32(v uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	w.bytes(b[:])
}

func (w *respWriter) u64(v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	w.bytes(b[:])
}

func (w *respWriter) setByte(i int, v byte) {
	if i < len(w.buf) {
		w.buf[i] = v
	}
}

func (w *respWriter) setU16(i int, v uint16) {
	w.setByte(i, byte(v>>8))
	w.setByte(i+1, byte(v))
}

func (w *respWriter) setU32(i int, v uint32) {
	w.setU16(i, uint16(v>>16))
	w.setU16(i+2, uint16(v))
}

// finish records the response on c: InLen is what was written, InWant what
// the allocation length let the command return.
func (w *respWriter) finish(c *Command, alloc int) {
	want := w.n
	if want > alloc {
		want = alloc
	}
	c.InWant = want
	c.InLen = want
	if c.InLen > len(c.DataIn) {
		c.InLen = len(c.DataIn)
	}
}
