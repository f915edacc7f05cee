package scsi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// hx decodes hex written with any spacing: hx("00 01 0203").
func hx(s string) []byte {
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("hx(%q): %v", s, err))
	}
	return b
}

// cat joins hex strings (see hx), []byte and ascii values into one byte
// slice, so an expected response reads like the standard's table.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, hx(v)...)
		case []byte:
			out = append(out, v...)
		case ascii:
			out = append(out, v...)
		case zeros:
			out = append(out, make([]byte, v)...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return out
}

type (
	ascii string
	zeros int
)

// Fixed test identities: the NAA designator and the port identifiers are
// literals so that VPD page 83h can be checked byte for byte.
var (
	testNAA   = [16]byte{0x60, 0x01, 0x40, 0x51, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89}
	testPort  = scsi.PortID{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x11, 0x22, 0x33}
	initiator = scsi.PortID{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22}
	other     = scsi.PortID{0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44}
)

// rigConfig describes a target with one disk LU for a test.
type rigConfig struct {
	store       backstore.Store // nil: a memory store of size bytes
	size        int64           // default 1 MiB
	bs          uint32          // default 512
	lun         uint16
	readOnly    bool
	maxTransfer uint32
	save        func([][]byte) error
	saved       [][]byte
	keepUA      bool // leave the power-on unit attention pending
}

// rig is a target with one disk logical unit and one logged-in nexus.
type rig struct {
	t     *testing.T
	tgt   *scsi.Target
	port  *scsi.Port
	lu    *scsi.LU
	store backstore.Store
	n     *scsi.Nexus
	ini   *scsitest.Direct
	lun   uint64
	bs    int
	dsns  bool // D_SENSE as last set through MODE SELECT
}

func memStore(t testing.TB, size int64, bs uint32) backstore.Store {
	t.Helper()
	s, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: size, BlockSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	if cfg.size == 0 {
		cfg.size = 1 << 20
	}
	if cfg.bs == 0 {
		cfg.bs = 512
	}
	if cfg.store == nil {
		cfg.store = memStore(t, cfg.size, cfg.bs)
	}
	lu, err := scsi.NewDisk(scsi.DiskConfig{
		Name: "d0", LUN: cfg.lun, Store: cfg.store, BlockSize: cfg.bs, ReadOnly: cfg.readOnly,
		Identity:    scsi.Identity{NAA: testNAA},
		MaxTransfer: cfg.maxTransfer, SaveModePages: cfg.save, SavedModePages: cfg.saved,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lu.Close() })
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	port := tgt.AddPort(testPort, "port0")
	if err := tgt.AddLU(lu); err != nil {
		t.Fatal(err)
	}
	n, err := tgt.Attach(scsi.NexusID{Initiator: initiator, Target: testPort}, port)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, tgt: tgt, port: port, lu: lu, store: cfg.store, n: n, ini: scsitest.NewDirect(n),
		lun: scsi.EncodeLUN(cfg.lun), bs: int(cfg.bs)}
	if !cfg.keepUA {
		r.expect(r.do(scsitest.TestUnitReady(), nil, 0), sense{key: 0x6, asc: 0x2900})
		r.good(r.do(scsitest.TestUnitReady(), nil, 0))
	}
	return r
}

// attach logs in a second initiator and clears its power-on unit attention.
func (r *rig) attach(id scsi.PortID) (*scsi.Nexus, *scsitest.Direct) {
	r.t.Helper()
	n, err := r.tgt.Attach(scsi.NexusID{Initiator: id, Target: testPort}, r.port)
	if err != nil {
		r.t.Fatal(err)
	}
	d := scsitest.NewDirect(n)
	resp := doOn(r.t, d, r.lun, scsitest.TestUnitReady(), nil, 0)
	expectOn(r.t, resp, sense{key: 0x6, asc: 0x2900}, r.dsns)
	return n, d
}

func doOn(t testing.TB, d *scsitest.Direct, lun uint64, cdb, out []byte, inLen int) *scsitest.Response {
	t.Helper()
	resp, err := d.Do(context.Background(), &scsitest.Request{LUN: lun, CDB: cdb, DataOut: out, InLen: inLen})
	if err != nil {
		t.Fatalf("CDB % x: %v", cdb, err)
	}
	return resp
}

func (r *rig) do(cdb, out []byte, inLen int) *scsitest.Response {
	r.t.Helper()
	return doOn(r.t, r.ini, r.lun, cdb, out, inLen)
}

// good fails unless resp is GOOD with no sense data.
func (r *rig) good(resp *scsitest.Response) *scsitest.Response {
	r.t.Helper()
	if resp.Status != scsi.StatusGood || len(resp.Sense) != 0 {
		r.t.Fatalf("want GOOD, got status %#02x sense % x (%v)", resp.Status, resp.Sense, resp.Err())
	}
	return resp
}

// data fails unless resp is GOOD and its data-in equals want exactly.
func (r *rig) data(resp *scsitest.Response, want []byte) {
	r.t.Helper()
	r.good(resp)
	if !bytes.Equal(resp.Data, want) {
		r.t.Fatalf("data-in mismatch: %s", diff(resp.Data, want))
	}
}

func (r *rig) expect(resp *scsitest.Response, want sense) {
	r.t.Helper()
	expectOn(r.t, resp, want, r.dsns)
}

// sense is an expected CHECK CONDITION. The test builds the exact sense
// bytes from it itself (SPC-4 4.5.2 descriptor format, 4.5.3 fixed
// format), independently of the code under test.
type sense struct {
	key     byte
	asc     uint16
	info    uint64
	hasInfo bool
	sks     string // 3 bytes of sense-key-specific data in hex, "" for none
}

func withInfo(s sense, info uint64) sense { s.info, s.hasInfo = info, true; return s }

// fixed is the 18-byte fixed format: response code 70h (F0h with VALID),
// sense key in byte 2, INFORMATION in bytes 3-6, ADDITIONAL SENSE LENGTH
// 0Ah, ASC/ASCQ in bytes 12-13, SKS in bytes 15-17.
func (s sense) fixed() []byte {
	b := make([]byte, 18)
	b[0] = 0x70
	if s.hasInfo && s.info <= 0xFFFFFFFF {
		b[0] = 0xF0
		binary.BigEndian.PutUint32(b[3:], uint32(s.info))
	}
	b[2] = s.key
	b[7] = 0x0A
	b[12], b[13] = byte(s.asc>>8), byte(s.asc)
	copy(b[15:], hx(s.sks))
	return b
}

// desc is the descriptor format: response code 72h, then the information
// descriptor (00h, length 0Ah, VALID) and the sense key specific
// descriptor (02h, length 06h).
func (s sense) desc() []byte {
	b := []byte{0x72, s.key, byte(s.asc >> 8), byte(s.asc), 0, 0, 0, 0}
	if s.hasInfo {
		d := make([]byte, 12)
		d[0], d[1], d[2] = 0x00, 0x0A, 0x80
		binary.BigEndian.PutUint64(d[4:], s.info)
		b = append(b, d...)
	}
	if s.sks != "" {
		b = append(b, 0x02, 0x06, 0, 0)
		b = append(b, hx(s.sks)...)
		b = append(b, 0)
	}
	b[7] = byte(len(b) - 8)
	return b
}

func (s sense) bytes(desc bool) []byte {
	if desc {
		return s.desc()
	}
	return s.fixed()
}

func expectOn(t testing.TB, resp *scsitest.Response, want sense, desc bool) {
	t.Helper()
	if resp.Status != scsi.StatusCheckCondition {
		t.Fatalf("want CHECK CONDITION %02X %04X, got status %#02x sense % x data % x", want.key, want.asc, resp.Status, resp.Sense, resp.Data)
	}
	if w := want.bytes(desc); !bytes.Equal(resp.Sense, w) {
		t.Fatalf("sense mismatch (desc=%v)\n got % x (%v)\nwant % x", desc, resp.Sense, resp.Err(), w)
	}
}

// setDSense switches the control mode page's D_SENSE bit (SPC-4 7.5.8)
// through MODE SELECT(10), so that sense data comes in descriptor format.
func (r *rig) setDSense(on bool) {
	r.t.Helper()
	r.modeSelect(controlPage(on, false))
	r.dsns = on
}

// controlPage is a MODE SELECT(10) parameter list with the control mode
// page (0Ah) carrying D_SENSE and SWP.
func controlPage(dsense, swp bool) []byte {
	p := cat("00 00 00 00 00 00 00 00", "0A 0A 00 10 00 00 00 00 FF FF 00 00")
	if dsense {
		p[8+2] |= 0x04
	}
	if swp {
		p[8+4] |= 0x08
	}
	return p
}

func cachingPage(wce bool) []byte {
	p := cat("00 00 00 00 00 00 00 00", "08 12", zeros(18))
	if wce {
		p[8+2] = 0x04
	}
	return p
}

func (r *rig) modeSelect(param []byte) {
	r.t.Helper()
	r.good(r.do(scsitest.ModeSelect10(false, uint16(len(param))), param, 0))
}

// pattern returns n bytes that differ from block to block and from seed
// to seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i>>9) ^ byte(i*7) ^ seed
	}
	return b
}

// both runs f once with fixed and once with descriptor sense data
// (D_SENSE 0 and 1); expect compares the bytes of the format in force.
func (r *rig) both(f func()) {
	for _, desc := range []bool{false, true} {
		r.setDSense(desc)
		f()
	}
	r.setDSense(false)
}

// recStore wraps a store, reports the store as having a volatile cache if
// told to, and counts the calls the LU makes.
type recStore struct {
	backstore.Store
	volatile bool
	mu       sync.Mutex
	calls    []string
}

func (s *recStore) note(op string) {
	s.mu.Lock()
	s.calls = append(s.calls, op)
	s.mu.Unlock()
}

func (s *recStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func (s *recStore) WriteAt(p []byte, off int64) (int, error) {
	s.note(fmt.Sprintf("WriteAt %d+%d", off, len(p)))
	return s.Store.WriteAt(p, off)
}

func (s *recStore) WriteAtSync(p []byte, off int64) (int, error) {
	s.note(fmt.Sprintf("WriteAtSync %d+%d", off, len(p)))
	return s.Store.WriteAtSync(p, off)
}

func (s *recStore) Flush() error {
	s.note("Flush")
	return s.Store.Flush()
}

func (s *recStore) Unmap(off, n int64) error {
	s.note(fmt.Sprintf("Unmap %d+%d", off, n))
	return s.Store.Unmap(off, n)
}

func (s *recStore) WriteZeroes(off, n int64) error {
	s.note(fmt.Sprintf("WriteZeroes %d+%d", off, n))
	return s.Store.WriteZeroes(off, n)
}

func (s *recStore) Caps() backstore.Caps {
	c := s.Store.Caps()
	c.Volatile = c.Volatile || s.volatile
	return c
}

// on returns the rig reporting failures to t (a subtest).
func (r *rig) on(t *testing.T) *rig {
	c := *r
	c.t = t
	return &c
}

// row is one command of a table: its CDB and data-out, the data-in buffer
// offered, and either the exact data-in expected (GOOD) or the sense.
type row struct {
	name  string
	cdb   []byte
	out   []byte
	inLen int
	want  []byte // expected data-in when err is nil
	err   *sense
}

func se(key byte, asc uint16, sks string) *sense { return &sense{key: key, asc: asc, sks: sks} }

// run executes the rows in order as subtests.
func (r *rig) run(rows []row) {
	r.t.Helper()
	for _, tc := range rows {
		r.t.Run(tc.name, func(t *testing.T) {
			rr := r.on(t)
			resp := rr.do(tc.cdb, tc.out, tc.inLen)
			if tc.err != nil {
				rr.expect(resp, *tc.err)
				return
			}
			rr.data(resp, tc.want)
		})
	}
}

// runBoth runs the rows with fixed, then descriptor, sense data.
func (r *rig) runBoth(rows []row) {
	r.t.Helper()
	for _, desc := range []bool{false, true} {
		r.setDSense(desc)
		r.t.Run(fmt.Sprintf("dsense=%v", desc), func(t *testing.T) { r.on(t).run(rows) })
	}
	r.setDSense(false)
}

var errTest = errors.New("test: injected failure")

func openNull(size int64) (backstore.Store, error) {
	return backstore.Open(backstore.Spec{Kind: backstore.KindNull, Size: size})
}

// diff describes how got differs from want, briefly for long buffers.
func diff(got, want []byte) string {
	if len(got) <= 64 && len(want) <= 64 {
		return fmt.Sprintf("\n got % x\nwant % x", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-8)
	return fmt.Sprintf("got %d bytes, want %d; first difference at offset %d\n got[%d:] % x\nwant[%d:] % x",
		len(got), len(want), i, lo, got[lo:min(len(got), lo+32)], lo, want[lo:min(len(want), lo+32)])
}
