// Package scsitest is the initiator side used by tests: an Initiator
// interface that sends one SCSI command and returns its outcome, an
// implementation that calls a scsi.Nexus directly, and helpers that build
// CDBs and check status and sense. The SRP initiator and the Xen frontend
// implement the same interface, so one test body runs over any transport.
package scsitest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/srptgt/srptgt/scsi"
)

// Request is one SCSI command as an initiator issues it.
type Request struct {
	LUN  uint64 // 8-byte SAM LUN; use scsi.EncodeLUN
	CDB  []byte
	Attr scsi.TaskAttr
	// DataOut is sent to the target (nil: no data-out).
	DataOut []byte
	// InLen is the size of the data-in buffer offered (0: no data-in).
	InLen int
	// DiscardIn says the caller will not look at the data-in, as fio
	// without verify never reads the buffer the device wrote: an
	// initiator may then leave Response.Data nil instead of copying the
	// data out of its transfer buffers. The target's side is unchanged.
	DiscardIn bool
	// Tag is the command's tag; 0 lets the initiator pick one.
	Tag uint64
}

// Response is the outcome of a command.
type Response struct {
	Status scsi.Status
	Sense  []byte
	// Data is the data-in the target returned.
	Data []byte
	// Residuals as the transport reported them (positive: underflow,
	// negative: overflow).
	InResidual, OutResidual int
}

// SenseError decodes the sense data, or returns nil if there is none.
func (r *Response) SenseError() *scsi.SenseError {
	if len(r.Sense) == 0 {
		return nil
	}
	e, err := scsi.ParseSense(r.Sense)
	if err != nil {
		return nil
	}
	return e
}

// Err returns nil for GOOD and a descriptive error otherwise.
func (r *Response) Err() error {
	if r.Status == scsi.StatusGood {
		return nil
	}
	if e := r.SenseError(); e != nil {
		return fmt.Errorf("status %#02x: %v", uint8(r.Status), e)
	}
	return fmt.Errorf("status %#02x", uint8(r.Status))
}

// Initiator sends SCSI commands to a target. Do does not keep r, its CDB
// or its data-out buffer after it returns: callers reuse them.
type Initiator interface {
	Do(ctx context.Context, r *Request) (*Response, error)
}

// Direct is an Initiator that executes commands on a scsi.Nexus in the
// calling goroutine: the SCSI layer with no transport at all.
type Direct struct {
	Nexus *scsi.Nexus
	tag   atomic.Uint64
	pool  sync.Pool
}

// NewDirect returns an initiator for nexus n.
func NewDirect(n *scsi.Nexus) *Direct { return &Direct{Nexus: n} }

// Do executes r.
func (d *Direct) Do(ctx context.Context, r *Request) (*Response, error) {
	c, _ := d.pool.Get().(*scsi.Command)
	if c == nil {
		c = new(scsi.Command)
	}
	c.Reset()
	c.CDB = r.CDB
	c.LUN = r.LUN
	c.Attr = r.Attr
	c.Tag = r.Tag
	if c.Tag == 0 {
		c.Tag = d.tag.Add(1)
	}
	c.DataOut = r.DataOut
	if r.InLen > 0 {
		c.DataIn = make([]byte, r.InLen)
	}
	d.Nexus.Execute(c)
	if c.Aborted() {
		d.pool.Put(c)
		return nil, ErrAborted
	}
	resp := &Response{Status: c.Status, Data: c.DataIn[:c.InLen]}
	if c.SenseLen > 0 {
		resp.Sense = append([]byte(nil), c.SenseData()...)
	}
	inOver, inUnder, outOver, outUnder := c.Residuals()
	resp.InResidual = inUnder - inOver
	resp.OutResidual = outUnder - outOver
	d.pool.Put(c)
	return resp, nil
}

// ErrAborted reports that a task management function aborted the command:
// no response came for it.
var ErrAborted = fmt.Errorf("scsitest: command aborted")

// CDB builders.

// Inquiry builds INQUIRY.
func Inquiry(evpd bool, page byte, alloc uint16) []byte {
	c := make([]byte, 6)
	c[0] = 0x12
	if evpd {
		c[1] = 1
	}
	c[2] = page
	binary.BigEndian.PutUint16(c[3:], alloc)
	return c
}

// TestUnitReady builds TEST UNIT READY.
func TestUnitReady() []byte { return make([]byte, 6) }

// RequestSense builds REQUEST SENSE.
func RequestSense(desc bool, alloc byte) []byte {
	c := []byte{0x03, 0, 0, 0, alloc, 0}
	if desc {
		c[1] = 1
	}
	return c
}

// ReportLUNs builds REPORT LUNS.
func ReportLUNs(sel byte, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0] = 0xA0
	c[2] = sel
	binary.BigEndian.PutUint32(c[6:], alloc)
	return c
}

// ReadCapacity16 builds READ CAPACITY(16).
func ReadCapacity16(alloc uint32) []byte {
	c := make([]byte, 16)
	c[0], c[1] = 0x9E, 0x10
	binary.BigEndian.PutUint32(c[10:], alloc)
	return c
}

// ReadCapacity10 builds READ CAPACITY(10).
func ReadCapacity10() []byte {
	c := make([]byte, 10)
	c[0] = 0x25
	return c
}

// RW16 builds READ(16) (op 0x88), WRITE(16) (0x8A), VERIFY(16) (0x8F),
// WRITE AND VERIFY(16) (0x8E) or SYNCHRONIZE CACHE(16) (0x91) with byte 1
// flags.
func RW16(op, flags byte, lba uint64, n uint32) []byte {
	return PutRW16(make([]byte, 16), op, flags, lba, n)
}

// PutRW16 builds the same CDB as RW16 into c (16 bytes), for a caller
// that reuses one buffer per command slot.
func PutRW16(c []byte, op, flags byte, lba uint64, n uint32) []byte {
	c = c[:16]
	clear(c)
	c[0], c[1] = op, flags
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], n)
	return c
}

// RW10 builds the 10-byte forms (READ 0x28, WRITE 0x2A, VERIFY 0x2F, WRITE
// AND VERIFY 0x2E, SYNCHRONIZE CACHE 0x35).
func RW10(op, flags byte, lba uint32, n uint16) []byte {
	c := make([]byte, 10)
	c[0], c[1] = op, flags
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], n)
	return c
}

// RW12 builds READ(12) (0xA8) or WRITE(12) (0xAA).
func RW12(op, flags byte, lba uint32, n uint32) []byte {
	c := make([]byte, 12)
	c[0], c[1] = op, flags
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint32(c[6:], n)
	return c
}

// RW6 builds READ(6) (0x08) or WRITE(6) (0x0A).
func RW6(op byte, lba uint32, n byte) []byte {
	return []byte{op, byte(lba>>16) & 0x1F, byte(lba >> 8), byte(lba), n, 0}
}

// WriteSame16 builds WRITE SAME(16).
func WriteSame16(flags byte, lba uint64, n uint32) []byte { return RW16(0x93, flags, lba, n) }

// CompareAndWrite builds COMPARE AND WRITE for n blocks.
func CompareAndWrite(flags byte, lba uint64, n byte) []byte {
	c := make([]byte, 16)
	c[0], c[1] = 0x89, flags
	binary.BigEndian.PutUint64(c[2:], lba)
	c[13] = n
	return c
}

// Unmap builds UNMAP with a parameter list length and the parameter list
// for the given (lba, blocks) descriptors.
func Unmap(descs ...[2]uint64) (cdb, param []byte) {
	param = make([]byte, 8+16*len(descs))
	binary.BigEndian.PutUint16(param[0:], uint16(len(param)-2))
	binary.BigEndian.PutUint16(param[2:], uint16(16*len(descs)))
	for i, d := range descs {
		binary.BigEndian.PutUint64(param[8+16*i:], d[0])
		binary.BigEndian.PutUint32(param[16+16*i:], uint32(d[1]))
	}
	cdb = make([]byte, 10)
	cdb[0] = 0x42
	binary.BigEndian.PutUint16(cdb[7:], uint16(len(param)))
	return cdb, param
}

// GetLBAStatus builds GET LBA STATUS.
func GetLBAStatus(lba uint64, alloc uint32) []byte {
	c := make([]byte, 16)
	c[0], c[1] = 0x9E, 0x12
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], alloc)
	return c
}

// ModeSense6 builds MODE SENSE(6).
func ModeSense6(dbd bool, pc, page, sub byte, alloc byte) []byte {
	c := []byte{0x1A, 0, pc<<6 | page&0x3F, sub, alloc, 0}
	if dbd {
		c[1] = 0x08
	}
	return c
}

// ModeSense10 builds MODE SENSE(10).
func ModeSense10(llbaa, dbd bool, pc, page, sub byte, alloc uint16) []byte {
	c := make([]byte, 10)
	c[0] = 0x5A
	if llbaa {
		c[1] |= 0x10
	}
	if dbd {
		c[1] |= 0x08
	}
	c[2] = pc<<6 | page&0x3F
	c[3] = sub
	binary.BigEndian.PutUint16(c[7:], alloc)
	return c
}

// ModeSelect6 builds MODE SELECT(6) with PF set.
func ModeSelect6(sp bool, plen byte) []byte {
	c := []byte{0x15, 0x10, 0, 0, plen, 0}
	if sp {
		c[1] |= 1
	}
	return c
}

// ModeSelect10 builds MODE SELECT(10) with PF set.
func ModeSelect10(sp bool, plen uint16) []byte {
	c := make([]byte, 10)
	c[0], c[1] = 0x55, 0x10
	if sp {
		c[1] |= 1
	}
	binary.BigEndian.PutUint16(c[7:], plen)
	return c
}

// ReportOpcodes builds REPORT SUPPORTED OPERATION CODES.
func ReportOpcodes(rctd bool, options, op byte, sa uint16, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0], c[1] = 0xA3, 0x0C
	c[2] = options & 7
	if rctd {
		c[2] |= 0x80
	}
	c[3] = op
	binary.BigEndian.PutUint16(c[4:], sa)
	binary.BigEndian.PutUint32(c[6:], alloc)
	return c
}

// ReportTMFs builds REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
func ReportTMFs(repd bool, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0], c[1] = 0xA3, 0x0D
	if repd {
		c[2] = 0x80
	}
	binary.BigEndian.PutUint32(c[6:], alloc)
	return c
}

// StartStop builds START STOP UNIT.
func StartStop(immed bool, b4 byte) []byte {
	c := []byte{0x1B, 0, 0, 0, b4, 0}
	if immed {
		c[1] = 1
	}
	return c
}

// Client wraps an Initiator with convenience calls that fail on transport
// errors.
type Client struct {
	I   Initiator
	LUN uint64
	Ctx context.Context
}

func (c *Client) ctx() context.Context {
	if c.Ctx != nil {
		return c.Ctx
	}
	return context.Background()
}

// Do sends a command to the client's LUN.
func (c *Client) Do(cdb []byte, out []byte, inLen int) (*Response, error) {
	return c.I.Do(c.ctx(), &Request{LUN: c.LUN, CDB: cdb, DataOut: out, InLen: inLen})
}

// Read reads n blocks of size bs at lba with READ(16).
func (c *Client) Read(lba uint64, n uint32, bs int) ([]byte, error) {
	r, err := c.Do(RW16(0x88, 0, lba, n), nil, int(n)*bs)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return r.Data, nil
}

// Write writes data at lba with WRITE(16).
func (c *Client) Write(lba uint64, data []byte, bs int) error {
	r, err := c.Do(RW16(0x8A, 0, lba, uint32(len(data)/bs)), data, 0)
	if err != nil {
		return err
	}
	return r.Err()
}

// ClearUA issues TEST UNIT READY until no unit attention is reported.
func (c *Client) ClearUA() error {
	for i := 0; i < 16; i++ {
		r, err := c.Do(TestUnitReady(), nil, 0)
		if err != nil {
			return err
		}
		if r.Status == scsi.StatusGood {
			return nil
		}
		if e := r.SenseError(); e == nil || e.Key != scsi.UnitAttention {
			return r.Err()
		}
	}
	return fmt.Errorf("scsitest: unit attentions do not clear")
}
