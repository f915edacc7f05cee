package scsi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/srptgt/srptgt/backstore"
)

// SBC-3 operation codes.
const (
	opFormatUnit       = 0x04
	opRead6            = 0x08
	opWrite6           = 0x0A
	opStartStop        = 0x1B
	opReadCapacity10   = 0x25
	opRead10           = 0x28
	opWrite10          = 0x2A
	opWriteVerify10    = 0x2E
	opVerify10         = 0x2F
	opSyncCache10      = 0x35
	opWriteSame10      = 0x41
	opUnmap            = 0x42
	opRead16           = 0x88
	opCompareAndWrite  = 0x89
	opWrite16          = 0x8A
	opWriteVerify16    = 0x8E
	opVerify16         = 0x8F
	opSyncCache16      = 0x91
	opWriteSame16      = 0x93
	opServiceActionIn  = 0x9E
	saReadCapacity16   = 0x10
	saGetLBAStatus     = 0x12
	opRead12           = 0xA8
	opWrite12          = 0xAA
	typeDisk           = 0x00
	defaultMaxTransfer = 8 << 20
)

// DiskConfig describes a direct-access block device (SBC-3) logical unit.
type DiskConfig struct {
	Name string
	LUN  uint16
	// Store holds the data. The LU owns it from now on and closes it.
	Store backstore.Store
	// BlockSize is the logical block size: 512 or 4096. Zero takes the
	// store's block size.
	BlockSize uint32
	ReadOnly  bool
	Identity  Identity
	// MaxTransfer is the largest data transfer of one command in bytes
	// (VPD page B0h MAXIMUM TRANSFER LENGTH). Zero means 8 MiB.
	MaxTransfer uint32
	// SaveModePages persists saved mode pages; nil makes them
	// unsaveable (MODE SENSE PC=3 and MODE SELECT SP=1 are refused).
	SaveModePages func(pages [][]byte) error
	// SavedModePages are the pages SaveModePages wrote last time.
	SavedModePages [][]byte
	// SavePR makes the persistent reservation state durable while APTPL
	// is in force (SPC-4 5.12.5): it must replace what it saved before
	// atomically and durably, and return nil only once the new state
	// survives a crash. It is called with the LU's reservation lock held,
	// before the new state takes effect; if it fails the PERSISTENT
	// RESERVE OUT command fails and the state stays as it was. Nil: APTPL
	// is not supported (REPORT CAPABILITIES PTPL_C=0, APTPL=1 refused).
	SavePR func(state []byte) error
	// SavedPR is the state SavePR wrote last (nil: none). NewDisk fails
	// if it is not a valid state (ParsePRState): a damaged file must not
	// silently drop a reservation that fences another initiator.
	SavedPR []byte
}

// disk is the SBC-3 device type.
type disk struct {
	lu     *LU
	store  backstore.Store
	viewer backstore.Viewer // the store, if it lends its bytes
	caps   backstore.Caps
	bs     uint32
	shift  uint
	blocks uint64
	// store block size exponent relative to the logical block
	physExp uint8

	maxXfer      uint32 // blocks
	maxUnmapLBAs uint32
	maxUnmapDesc uint32
	maxWSame     uint64
	maxCAW       uint8

	wce atomic.Bool
	// caw makes COMPARE AND WRITE atomic: every command that reads or
	// writes the medium holds it shared, COMPARE AND WRITE holds it
	// exclusively.
	caw     sync.RWMutex
	scratch sync.Pool
}

// NewDisk creates a disk logical unit over a backstore.
func NewDisk(cfg DiskConfig) (*LU, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("scsi: disk %q has no backstore", cfg.Name)
	}
	bs := cfg.BlockSize
	if bs == 0 {
		bs = cfg.Store.BlockSize()
	}
	if bs != 512 && bs != 4096 {
		return nil, fmt.Errorf("scsi: disk %q: block size %d is not 512 or 4096", cfg.Name, bs)
	}
	sbs := cfg.Store.BlockSize()
	if sbs == 0 || bs < sbs && bs%sbs != 0 {
		return nil, fmt.Errorf("scsi: disk %q: block size %d does not fit the backstore's %d", cfg.Name, bs, sbs)
	}
	size := cfg.Store.Size()
	if size < int64(bs) {
		return nil, fmt.Errorf("scsi: disk %q: backstore of %d bytes holds no %d-byte block", cfg.Name, size, bs)
	}
	maxX := cfg.MaxTransfer
	if maxX == 0 {
		maxX = defaultMaxTransfer
	}
	if maxX < bs {
		return nil, fmt.Errorf("scsi: disk %q: max transfer %d is below the block size", cfg.Name, maxX)
	}
	d := &disk{
		store:        cfg.Store,
		caps:         cfg.Store.Caps(),
		bs:           bs,
		shift:        uint(bits.TrailingZeros32(bs)),
		blocks:       uint64(size) / uint64(bs),
		maxXfer:      maxX / bs,
		maxUnmapLBAs: 1 << 22,
		maxUnmapDesc: 256,
		maxWSame:     1 << 22,
		maxCAW:       64,
	}
	d.viewer, _ = cfg.Store.(backstore.Viewer)
	if sbs > bs {
		d.physExp = uint8(bits.TrailingZeros32(sbs / bs))
	}
	scratchLen := int(d.maxCAW) * int(bs)
	if scratchLen < 1<<20 {
		scratchLen = 1 << 20
	}
	d.scratch.New = func() any { b := make([]byte, scratchLen); return &b }
	if cfg.Identity.Vendor == "" {
		cfg.Identity.Vendor = "SRPTGT"
	}
	if cfg.Identity.Product == "" {
		cfg.Identity.Product = "VIRTUAL-DISK"
	}
	if cfg.Identity.Revision == "" {
		cfg.Identity.Revision = "0001"
	}
	if cfg.Identity.Serial == "" {
		cfg.Identity.Serial = cfg.Name
	}
	if cfg.Identity.NAA == ([16]byte{}) {
		cfg.Identity.NAA = NewNAA(DefaultOUI, []byte(cfg.Identity.Vendor+"/"+cfg.Name+"/"+cfg.Identity.Serial))
	}
	lu := newLU(cfg.Name, cfg.LUN, d, cfg.Store, cfg.ReadOnly || d.caps.ReadOnly, cfg.Identity)
	d.lu = lu
	if cfg.SaveModePages != nil {
		lu.mode.saver = cfg.SaveModePages
		lu.mode.restore(cfg.SavedModePages)
		lu.applyMode()
	}
	lu.pr.save = cfg.SavePR
	if cfg.SavedPR != nil {
		if err := lu.restorePR(cfg.SavedPR); err != nil {
			return nil, fmt.Errorf("scsi: disk %q: saved persistent reservations: %w", cfg.Name, err)
		}
	}
	return lu, nil
}

func (d *disk) peripheralType() byte { return typeDisk }
func (d *disk) removable() bool      { return false }
func (d *disk) reset()               {}
func (d *disk) close() error         { return nil }

func (d *disk) modeHeader() (byte, uint64, uint32) {
	return 0x10, d.blocks, d.bs // DPOFUA
}

// cachingPage is the Caching mode page (08h, SBC-3 6.4.5). WCE is
// changeable; it starts on when the backstore has a volatile cache.
func (d *disk) modePages() []*modePage {
	def := make([]byte, 20)
	def[0], def[1] = 0x08, 0x12
	if d.caps.Volatile {
		def[2] = 0x04
	}
	mask := make([]byte, 20)
	mask[2] = 0x04
	return []*modePage{{code: 0x08, def: def, mask: mask}}
}

func (d *disk) applyMode(m *modeState) {
	var buf [32]byte
	if p := m.get(0x08, buf[:0]); len(p) > 2 {
		d.wce.Store(p[2]&0x04 != 0)
	}
}

// register adds the SBC-3 commands. Their pr field is their row of SBC-3
// table 13 (commands allowed in the presence of reservations): the reads,
// VERIFY and GET LBA STATUS are read-class, READ CAPACITY is always
// allowed, START STOP UNIT depends on START and POWER CONDITION, and
// everything that writes, and SYNCHRONIZE CACHE, conflicts like a write
// (the zero value).
func (d *disk) register(t *opTable) {
	rw := opMedium
	wr := opMedium | opWrite
	t.add(&opInfo{name: "FORMAT UNIT", code: opFormatUnit, usage: cdb(0x3F, 0, 0, 0, 0), flags: wr, fn: d.formatUnit})
	t.add(&opInfo{name: "READ(6)", code: opRead6, usage: cdb(0x1F, 0xFF, 0xFF, 0xFF, 0), flags: rw, pr: prcRead, fn: d.read})
	t.add(&opInfo{name: "WRITE(6)", code: opWrite6, usage: cdb(0x1F, 0xFF, 0xFF, 0xFF, 0), flags: wr, fn: d.write})
	t.add(&opInfo{name: "START STOP UNIT", code: opStartStop, usage: cdb(0x01, 0, 0x0F, 0xF7, 0), pr: prcStartStop, fn: d.startStop})
	t.add(&opInfo{name: "READ CAPACITY(10)", code: opReadCapacity10, usage: cdb(0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, 0), flags: opMedium | opSPC2OK, pr: prcAllowed, fn: d.readCapacity10})
	t.add(&opInfo{name: "READ(10)", code: opRead10, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: rw, pr: prcRead, fn: d.read})
	t.add(&opInfo{name: "WRITE(10)", code: opWrite10, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: wr, fn: d.write})
	t.add(&opInfo{name: "WRITE AND VERIFY(10)", code: opWriteVerify10, usage: cdb(0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: wr, fn: d.writeVerify})
	t.add(&opInfo{name: "VERIFY(10)", code: opVerify10, usage: cdb(0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: rw, pr: prcRead, fn: d.verify})
	t.add(&opInfo{name: "SYNCHRONIZE CACHE(10)", code: opSyncCache10, usage: cdb(0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: opMedium, fn: d.syncCache})
	t.add(&opInfo{name: "WRITE SAME(10)", code: opWriteSame10, usage: cdb(0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0), flags: wr, fn: d.writeSame})
	t.add(&opInfo{name: "READ(16)", code: opRead16, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: rw, pr: prcRead, fn: d.read})
	t.add(&opInfo{name: "COMPARE AND WRITE", code: opCompareAndWrite, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0, 0), flags: wr, fn: d.compareAndWrite})
	t.add(&opInfo{name: "WRITE(16)", code: opWrite16, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: wr, fn: d.write})
	t.add(&opInfo{name: "WRITE AND VERIFY(16)", code: opWriteVerify16, usage: cdb(0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: wr, fn: d.writeVerify})
	t.add(&opInfo{name: "VERIFY(16)", code: opVerify16, usage: cdb(0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: rw, pr: prcRead, fn: d.verify})
	t.add(&opInfo{name: "SYNCHRONIZE CACHE(16)", code: opSyncCache16, usage: cdb(0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: opMedium, fn: d.syncCache})
	t.add(&opInfo{name: "WRITE SAME(16)", code: opWriteSame16, usage: cdb(0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: wr, fn: d.writeSame})
	t.add(&opInfo{name: "READ CAPACITY(16)", code: opServiceActionIn, sa: saReadCapacity16, hasSA: true,
		usage: cdb(0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0), flags: opMedium | opSPC2OK, pr: prcAllowed, fn: d.readCapacity16})
	t.add(&opInfo{name: "READ(12)", code: opRead12, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: rw, pr: prcRead, fn: d.read})
	t.add(&opInfo{name: "WRITE(12)", code: opWrite12, usage: cdb(0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: wr, fn: d.write})
	if d.caps.Unmap {
		t.add(&opInfo{name: "UNMAP", code: opUnmap, usage: cdb(0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0), flags: wr, fn: d.unmap})
		t.add(&opInfo{name: "GET LBA STATUS", code: opServiceActionIn, sa: saGetLBAStatus, hasSA: true,
			usage: cdb(0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0), flags: opMedium, pr: prcRead, fn: d.getLBAStatus})
	}
}

// rwFields decodes LBA, transfer length and the FUA bit of the READ, WRITE,
// VERIFY and WRITE AND VERIFY forms, and the byte offset of the transfer
// length field for error pointers.
func rwFields(cdb []byte) (lba uint64, n uint32, fua bool, lenOff int) {
	switch cdb[0] {
	case opRead6, opWrite6:
		lba = uint64(cdb[1]&0x1F)<<16 | uint64(cdb[2])<<8 | uint64(cdb[3])
		n = uint32(cdb[4])
		if n == 0 {
			n = 256 // SBC-3 5.15: zero means 256 blocks
		}
		return lba, n, false, 4
	case opRead10, opWrite10, opVerify10, opWriteVerify10, opSyncCache10:
		return uint64(binary.BigEndian.Uint32(cdb[2:6])), uint32(binary.BigEndian.Uint16(cdb[7:9])), cdb[1]&0x08 != 0, 7
	case opRead12, opWrite12:
		return uint64(binary.BigEndian.Uint32(cdb[2:6])), binary.BigEndian.Uint32(cdb[6:10]), cdb[1]&0x08 != 0, 6
	default: // 16-byte forms
		return binary.BigEndian.Uint64(cdb[2:10]), binary.BigEndian.Uint32(cdb[10:14]), cdb[1]&0x08 != 0, 10
	}
}

// checkRange reports LOGICAL BLOCK ADDRESS OUT OF RANGE unless
// [lba, lba+n) lies on the medium.
func (d *disk) checkRange(lba uint64, n uint64) error {
	if lba > d.blocks || n > d.blocks-lba {
		return ErrLBAOutOfRange
	}
	return nil
}

// ioErr classifies a backstore error for an operation that started at
// lba and moved done bytes before it failed: a medium error points at the
// first logical block not transferred, as the LBA "associated with the
// sense key" (SPC-4 4.5.2.2) that an initiator takes as the end of the
// good data (Linux sd counts the blocks before it as completed).
func (d *disk) ioErr(err error, write bool, lba uint64, done int64) error {
	return ioError(err, write, lba+uint64(done)>>d.shift)
}

// READ(6/10/12/16) (SBC-3 5.11-5.14).
func (d *disk) read(c *Command) error {
	lba, n, _, lenOff := rwFields(c.CDB)
	if err := d.checkRange(lba, uint64(n)); err != nil {
		return err
	}
	if n > d.maxXfer {
		return InvalidCDB(lenOff, -1)
	}
	want := int(n) << d.shift
	c.InWant = want
	dst := c.DataIn
	if len(dst) > want {
		dst = dst[:want]
	}
	if len(dst) == 0 {
		return nil
	}
	if c.InViewOK && d.viewer != nil {
		if v, done, ok := d.viewer.View(int64(lba)<<d.shift, len(dst)); ok {
			c.InView, c.viewDone, c.InLen = v, done, len(v)
			return nil
		}
	}
	d.caw.RLock()
	got, err := d.store.ReadAt(dst, int64(lba)<<d.shift)
	d.caw.RUnlock()
	if err != nil {
		return d.ioErr(err, false, lba, int64(got))
	}
	c.InLen = len(dst)
	return nil
}

// WRITE(6/10/12/16) (SBC-3 5.32-5.35). FUA, or a write cache turned off
// over a volatile store, makes the data durable before GOOD.
func (d *disk) write(c *Command) error {
	lba, n, fua, lenOff := rwFields(c.CDB)
	if err := d.checkDataOut(c, lba, n, lenOff); err != nil || n == 0 {
		return err
	}
	d.caw.RLock()
	defer d.caw.RUnlock()
	return d.writeLocked(c.DataOut, lba, fua)
}

// checkDataOut checks the range and length of a command that writes n
// blocks from its data-out buffer at lba: LBA OUT OF RANGE, INVALID FIELD
// IN CDB past the maximum transfer length (the length field at lenOff), and
// INVALID FIELD IN COMMAND IU when the data-out buffer disagrees with the
// CDB (a SAM-5 overflow or underflow on a write: refused rather than
// guessed at, as LIO does).
func (d *disk) checkDataOut(c *Command, lba uint64, n uint32, lenOff int) error {
	if err := d.checkRange(lba, uint64(n)); err != nil {
		return err
	}
	if n > d.maxXfer {
		return InvalidCDB(lenOff, -1)
	}
	want := int(n) << d.shift
	c.OutWant = want
	if len(c.DataOut) != want {
		return ErrInvalidCommandIU
	}
	return nil
}

// writeLocked writes p at lba, durably first when FUA is set or the write
// cache is off over a volatile store. The caller holds d.caw.
func (d *disk) writeLocked(p []byte, lba uint64, fua bool) error {
	off := int64(lba) << d.shift
	var err error
	var done int
	if (fua || !d.wce.Load()) && d.caps.Volatile {
		done, err = d.store.WriteAtSync(p, off)
	} else {
		done, err = d.store.WriteAt(p, off)
	}
	if err != nil {
		return d.ioErr(err, true, lba, int64(done))
	}
	return nil
}

func (d *disk) getScratch() *[]byte  { return d.scratch.Get().(*[]byte) }
func (d *disk) putScratch(b *[]byte) { d.scratch.Put(b) }

// compareMedium reads [lba, lba+len(want)/bs) and compares it with want;
// pattern set means want is one block repeated for every block. It returns
// MISCOMPARE with the offset of the first differing byte.
func (d *disk) compareMedium(lba uint64, nblocks uint64, want []byte, pattern bool) error {
	sp := d.getScratch()
	defer d.putScratch(sp)
	buf := *sp
	chunk := uint64(len(buf)) >> d.shift
	var done uint64
	for done < nblocks {
		k := min(chunk, nblocks-done)
		b := buf[:k<<d.shift]
		if got, err := d.store.ReadAt(b, int64(lba+done)<<d.shift); err != nil {
			return d.ioErr(err, false, lba+done, int64(got))
		}
		if want != nil {
			for i := uint64(0); i < k; i++ {
				blk := b[i<<d.shift : (i+1)<<d.shift]
				var exp []byte
				if pattern {
					exp = want
				} else {
					exp = want[(done+i)<<d.shift : (done+i+1)<<d.shift]
				}
				if !bytes.Equal(blk, exp) {
					for j := range blk {
						if blk[j] != exp[j] {
							return MiscompareAt((done+i)<<d.shift + uint64(j))
						}
					}
				}
			}
		}
		done += k
	}
	return nil
}

// VERIFY(10/16) (SBC-3 5.27, 5.28): BYTCHK 00b reads the blocks back,
// 01b compares them with the data-out buffer, 11b with one block repeated.
func (d *disk) verify(c *Command) error {
	lba, n, _, lenOff := rwFields(c.CDB)
	bytchk := (c.CDB[1] >> 1) & 0x03
	if bytchk == 2 {
		return InvalidCDB(1, 2)
	}
	if err := d.checkRange(lba, uint64(n)); err != nil {
		return err
	}
	var want []byte
	switch bytchk {
	case 1:
		if n > d.maxXfer {
			return InvalidCDB(lenOff, -1)
		}
		c.OutWant = int(n) << d.shift
		want = c.DataOut
	case 3:
		c.OutWant = int(d.bs)
		want = c.DataOut
	}
	if len(c.DataOut) != c.OutWant {
		return ErrInvalidCommandIU
	}
	if n == 0 {
		return nil
	}
	d.caw.RLock()
	defer d.caw.RUnlock()
	return d.compareMedium(lba, uint64(n), want, bytchk == 3)
}

// WRITE AND VERIFY(10/16) (SBC-3 5.36, 5.37): the data goes to stable
// storage, then is read back and compared.
func (d *disk) writeVerify(c *Command) error {
	lba, n, _, lenOff := rwFields(c.CDB)
	// BYTCHK 10b and 11b are reserved for WRITE AND VERIFY (SBC-4
	// 5.52); 00b (medium verification) is served by the same compare.
	if (c.CDB[1]>>1)&0x03 >= 2 {
		return InvalidCDB(1, 2)
	}
	if err := d.checkDataOut(c, lba, n, lenOff); err != nil || n == 0 {
		return err
	}
	d.caw.RLock()
	defer d.caw.RUnlock()
	if err := d.writeLocked(c.DataOut, lba, true); err != nil {
		return err
	}
	return d.compareMedium(lba, uint64(n), c.DataOut, false)
}

// SYNCHRONIZE CACHE(10/16) (SBC-3 5.22, 5.23). The whole store is flushed;
// the range is checked. IMMED is honoured by flushing before GOOD anyway,
// which the standard allows.
func (d *disk) syncCache(c *Command) error {
	lba, n, _, _ := rwFields(c.CDB)
	if c.CDB[0] == opSyncCache10 {
		n = uint32(binary.BigEndian.Uint16(c.CDB[7:9]))
	}
	count := uint64(n)
	if n == 0 && lba <= d.blocks {
		count = d.blocks - lba
	}
	if err := d.checkRange(lba, count); err != nil {
		return err
	}
	if err := d.store.Flush(); err != nil {
		return d.ioErr(err, true, lba, 0)
	}
	return nil
}

// READ CAPACITY(10) (SBC-3 5.15).
func (d *disk) readCapacity10(c *Command) error {
	cdb := c.CDB
	if cdb[8]&0x01 == 0 && binary.BigEndian.Uint32(cdb[2:6]) != 0 {
		return InvalidCDB(2, -1)
	}
	last := d.blocks - 1
	if last > 0xFFFFFFFF {
		last = 0xFFFFFFFF
	}
	w := newResp(c, 8)
	w.u32(uint32(last))
	w.u32(d.bs)
	w.finish(c, 8)
	return nil
}

// READ CAPACITY(16) (SBC-3 5.16): LBPME and LBPRZ from the backstore.
func (d *disk) readCapacity16(c *Command) error {
	alloc := int(binary.BigEndian.Uint32(c.CDB[10:14]))
	w := newResp(c, alloc)
	w.u64(d.blocks - 1)
	w.u32(d.bs)
	w.byte1(0)
	w.byte1(d.physExp & 0x0F)
	b14 := byte(0)
	if d.caps.Unmap {
		b14 |= 0x80 // LBPME
		if d.caps.UnmapZeroes {
			b14 |= 0x40 // LBPRZ
		}
	}
	w.byte1(b14)
	w.byte1(0)
	w.zeros(16)
	w.finish(c, alloc)
	return nil
}

// UNMAP (SBC-3 5.25). Every descriptor is checked before any is applied.
func (d *disk) unmap(c *Command) error {
	plen := int(binary.BigEndian.Uint16(c.CDB[7:9]))
	c.OutWant = plen
	if plen == 0 {
		return nil
	}
	if plen < 8 {
		return ErrParamListLength
	}
	if len(c.DataOut) < plen {
		return ErrParamListLength
	}
	p := c.DataOut[:plen]
	if dl := int(binary.BigEndian.Uint16(p[0:2])); dl > plen-2 {
		return InvalidParam(0, -1)
	}
	bdl := int(binary.BigEndian.Uint16(p[2:4]))
	if bdl > plen-8 {
		return InvalidParam(2, -1)
	}
	ndesc := bdl / 16 // an incomplete last descriptor is ignored
	if uint32(ndesc) > d.maxUnmapDesc {
		return InvalidParam(2, -1)
	}
	var total uint64
	for i := 0; i < ndesc; i++ {
		off := 8 + 16*i
		lba := binary.BigEndian.Uint64(p[off:])
		n := uint64(binary.BigEndian.Uint32(p[off+8:]))
		if err := d.checkRange(lba, n); err != nil {
			return err
		}
		if n > uint64(d.maxUnmapLBAs) {
			return InvalidParam(off+8, -1)
		}
		total += n
	}
	if total > uint64(d.maxUnmapLBAs) {
		return InvalidParam(2, -1)
	}
	d.caw.RLock()
	defer d.caw.RUnlock()
	for i := 0; i < ndesc; i++ {
		off := 8 + 16*i
		lba := binary.BigEndian.Uint64(p[off:])
		n := uint64(binary.BigEndian.Uint32(p[off+8:]))
		if n == 0 {
			continue
		}
		if err := d.store.Unmap(int64(lba)<<d.shift, int64(n)<<d.shift); err != nil {
			return d.ioErr(err, true, lba, 0)
		}
	}
	return nil
}

// WRITE SAME(10/16) (SBC-3 5.41, 5.42; NDOB from SBC-4). A zero block with
// UNMAP set on a store that reads unmapped blocks as zeros is unmapped;
// otherwise the block is written to every LBA of the range.
func (d *disk) writeSame(c *Command) error {
	cdb := c.CDB
	var lba, n uint64
	var lenOff int
	ndob := false
	if cdb[0] == opWriteSame10 {
		lba = uint64(binary.BigEndian.Uint32(cdb[2:6]))
		n = uint64(binary.BigEndian.Uint16(cdb[7:9]))
		lenOff = 7
	} else {
		lba = binary.BigEndian.Uint64(cdb[2:10])
		n = uint64(binary.BigEndian.Uint32(cdb[10:14]))
		lenOff = 10
		ndob = cdb[1]&0x01 != 0
	}
	unmap := cdb[1]&0x08 != 0
	if n == 0 {
		return InvalidCDB(lenOff, -1) // WSNZ is set in the block limits page
	}
	if n > d.maxWSame {
		return InvalidCDB(lenOff, -1)
	}
	if err := d.checkRange(lba, n); err != nil {
		return err
	}
	var block []byte
	if !ndob {
		c.OutWant = int(d.bs)
		if len(c.DataOut) != int(d.bs) {
			return ErrInvalidCommandIU
		}
		block = c.DataOut
	}
	zero := block == nil || isZero(block)
	off, length := int64(lba)<<d.shift, int64(n)<<d.shift
	d.caw.RLock()
	defer d.caw.RUnlock()
	var err error
	var done int64
	switch {
	case zero && unmap && d.caps.Unmap && d.caps.UnmapZeroes:
		err = d.store.Unmap(off, length)
	case zero:
		err = d.store.WriteZeroes(off, length)
	default:
		done, err = d.fill(block, off, length)
	}
	if err == nil && !d.wce.Load() && d.caps.Volatile {
		err = d.store.Flush()
	}
	if err != nil {
		return d.ioErr(err, true, lba, done)
	}
	return nil
}

// fill writes block repeatedly over [off, off+length) and returns how many
// bytes it wrote.
func (d *disk) fill(block []byte, off, length int64) (int64, error) {
	sp := d.getScratch()
	defer d.putScratch(sp)
	buf := *sp
	for i := 0; i+len(block) <= len(buf); i += len(block) {
		copy(buf[i:], block)
	}
	buf = buf[:len(buf)/len(block)*len(block)]
	var done int64
	for length > 0 {
		k := int64(len(buf))
		if k > length {
			k = length
		}
		n, err := d.store.WriteAt(buf[:k], off)
		if err != nil {
			return done + int64(n), err
		}
		done += k
		off += k
		length -= k
	}
	return done, nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// COMPARE AND WRITE (SBC-3 5.2): under the exclusive lock, the blocks are
// read and compared with the first half of the data-out buffer; if equal,
// the second half is written. A miscompare reports the offset of the first
// differing byte in the INFORMATION field.
func (d *disk) compareAndWrite(c *Command) error {
	cdb := c.CDB
	lba := binary.BigEndian.Uint64(cdb[2:10])
	n := uint64(cdb[13])
	fua := cdb[1]&0x08 != 0
	if n > uint64(d.maxCAW) {
		return InvalidCDB(13, -1)
	}
	if err := d.checkRange(lba, n); err != nil {
		return err
	}
	size := int(n) << d.shift
	c.OutWant = 2 * size
	if len(c.DataOut) != 2*size {
		return ErrInvalidCommandIU
	}
	if n == 0 {
		return nil
	}
	sp := d.getScratch()
	defer d.putScratch(sp)
	cur := (*sp)[:size]
	off := int64(lba) << d.shift
	d.caw.Lock()
	defer d.caw.Unlock()
	if got, err := d.store.ReadAt(cur, off); err != nil {
		return d.ioErr(err, false, lba, int64(got))
	}
	verify := c.DataOut[:size]
	if !bytes.Equal(cur, verify) {
		for i := range cur {
			if cur[i] != verify[i] {
				return MiscompareAt(uint64(i))
			}
		}
	}
	return d.writeLocked(c.DataOut[size:], lba, fua)
}

// GET LBA STATUS (SBC-3 5.7): one descriptor per run of mapped or
// deallocated blocks from the starting LBA, as many as the allocation length
// holds.
func (d *disk) getLBAStatus(c *Command) error {
	lba := binary.BigEndian.Uint64(c.CDB[2:10])
	alloc := int(binary.BigEndian.Uint32(c.CDB[10:14]))
	if lba >= d.blocks {
		return ErrLBAOutOfRange
	}
	w := newResp(c, alloc)
	w.u32(0)
	w.u32(0)
	maxDesc := 1
	if alloc > 8 {
		maxDesc = max(1, (alloc-8)/16)
	}
	am, _ := d.store.(backstore.Allocator)
	d.caw.RLock()
	defer d.caw.RUnlock()
	for k := 0; k < maxDesc && lba < d.blocks; k++ {
		status := byte(0)
		count := d.blocks - lba
		if am != nil {
			alloc, run, err := am.Allocation(int64(lba) << d.shift)
			if err != nil {
				return d.ioErr(err, false, lba, 0)
			}
			if !alloc {
				status = 1
			}
			if r := (uint64(run) + uint64(d.bs) - 1) >> d.shift; r > 0 && r < count {
				count = r
			}
		}
		if count > 0xFFFFFFFF {
			count = 0xFFFFFFFF
		}
		w.u64(lba)
		w.u32(uint32(count))
		w.byte1(status)
		w.zeros(3)
		lba += count
	}
	w.setU32(0, uint32(w.n-4))
	w.finish(c, alloc)
	return nil
}

// START STOP UNIT (SBC-3 5.20): START 0 stops the unit (after flushing
// unless NO_FLUSH), START 1 makes it ready. Power conditions and LOEJ on a
// fixed disk are refused.
func (d *disk) startStop(c *Command) error {
	b4 := c.CDB[4]
	if b4>>4 != 0 {
		return InvalidCDB(4, 7)
	}
	if b4&0x02 != 0 {
		return InvalidCDB(4, 1)
	}
	if b4&0x01 != 0 {
		d.lu.ready.CompareAndSwap(luStopped, luReady)
		return nil
	}
	if b4&0x04 == 0 {
		if err := d.store.Flush(); err != nil {
			return d.ioErr(err, true, 0, 0)
		}
	}
	d.lu.ready.CompareAndSwap(luReady, luStopped)
	return nil
}

// FORMAT UNIT (SBC-3 5.3) with no format data, or with a short or long
// parameter list header carrying no defect list and no initialization
// pattern. The
// medium is zeroed (unmapped where the store reads holes as zeros); while it
// runs, medium access reports FORMAT IN PROGRESS with a progress indication.
// IMMED in the header returns GOOD at once.
func (d *disk) formatUnit(c *Command) error {
	fmtdata := c.CDB[1]&0x10 != 0
	immed := false
	if fmtdata {
		// LONGLIST selects the 8-byte long parameter list header, whose
		// DEFECT LIST LENGTH is bytes 4-7 (SBC-3 5.3.2.2, table 33).
		long := c.CDB[1]&0x20 != 0
		hlen := 4
		if long {
			hlen = 8
		}
		c.OutWant = hlen
		if len(c.DataOut) < hlen {
			return ErrParamListLength
		}
		h := c.DataOut
		if h[0]&0x07 != 0 {
			return InvalidParam(0, 2) // protection field usage: no protection information
		}
		if h[1]&0x80 == 0 && h[1]&0x78 != 0 {
			return InvalidParam(1, highBit(h[1]&0x78)) // options without FOV
		}
		if h[1]&0x08 != 0 {
			return InvalidParam(1, 3) // IP: no initialization pattern support
		}
		if long {
			if h[3] != 0 {
				return InvalidParam(3, highBit(h[3])) // P_I_INFORMATION, PROTECTION INTERVAL EXPONENT
			}
			if binary.BigEndian.Uint32(h[4:8]) != 0 {
				return InvalidParam(4, -1) // no defect list
			}
		} else if binary.BigEndian.Uint16(h[2:4]) != 0 {
			return InvalidParam(2, -1) // no defect list
		}
		immed = h[1]&0x02 != 0
	}
	if !d.lu.ready.CompareAndSwap(luReady, luFormatting) {
		return d.lu.checkReady()
	}
	d.lu.progress.Store(0)
	run := func() error {
		defer d.lu.ready.Store(luReady)
		const step = 64 << 20
		size := int64(d.blocks) << d.shift
		for off := int64(0); off < size; off += step {
			n := min(int64(step), size-off)
			var err error
			if d.caps.Unmap && d.caps.UnmapZeroes {
				err = d.store.Unmap(off, n)
			} else {
				err = d.store.WriteZeroes(off, n)
			}
			if err != nil {
				return d.ioErr(err, true, uint64(off)>>d.shift, 0)
			}
			d.lu.progress.Store(uint32((off + n) * 65535 / size))
		}
		if err := d.store.Flush(); err != nil {
			return d.ioErr(err, true, 0, 0)
		}
		return nil
	}
	if immed {
		go run() //nolint:errcheck // IMMED: the outcome is not reported
		return nil
	}
	return run()
}

// selfTest reads the first and the last block.
func (d *disk) selfTest() error {
	sp := d.getScratch()
	defer d.putScratch(sp)
	b := (*sp)[:d.bs]
	if _, err := d.store.ReadAt(b, 0); err != nil {
		return err
	}
	_, err := d.store.ReadAt(b, int64(d.blocks-1)<<d.shift)
	return err
}

// VPD pages of a disk: Block Limits (B0h), Block Device Characteristics
// (B1h), Logical Block Provisioning (B2h).
func (d *disk) vpd() []vpdPage {
	return []vpdPage{{0xB0, d.blockLimits}, {0xB1, d.characteristics}, {0xB2, d.provisioning}}
}

// blockLimits writes VPD page B0h (SBC-3 6.5.3).
func (d *disk) blockLimits(w *respWriter) {
	s := w.n
	w.zeros(60)
	w.setByte(s+0, 0x01) // WSNZ
	w.setByte(s+1, d.maxCAW)
	gran := uint16(1)
	if d.bs < 4096 {
		gran = uint16(4096 / d.bs)
	}
	w.setU16(s+2, gran)
	w.setU32(s+4, d.maxXfer)
	if d.caps.Unmap {
		w.setU32(s+16, d.maxUnmapLBAs)
		w.setU32(s+20, d.maxUnmapDesc)
		w.setU32(s+24, uint32(gran))
	}
	w.setU32(s+32, uint32(d.maxWSame>>32))
	w.setU32(s+36, uint32(d.maxWSame))
}

// characteristics writes VPD page B1h (SBC-3 6.5.2): a store with no
// volatile cache of its own (memory, null) reports a non-rotating medium;
// files and block devices report no rate.
func (d *disk) characteristics(w *respWriter) {
	s := w.n
	w.zeros(60)
	if !d.caps.Volatile {
		w.setU16(s, 1)
	}
}

// provisioning writes VPD page B2h (SBC-3 6.5.4).
func (d *disk) provisioning(w *respWriter) {
	s := w.n
	w.zeros(4)
	if d.caps.Unmap {
		b := byte(0xE0) // LBPU LBPWS LBPWS10
		if d.caps.UnmapZeroes {
			b |= 0x04 // LBPRZ
		}
		w.setByte(s+1, b)
		if d.caps.Thin {
			w.setByte(s+2, 0x02) // thin provisioned
		}
	}
}
