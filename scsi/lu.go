package scsi

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/srptgt/srptgt/backstore"
)

// device is a device type's half of a logical unit: SBC for disks now, SSC
// and SMC later. The SPC half (INQUIRY, mode pages, unit attentions, task
// set, reporting) is the LU itself.
type device interface {
	// peripheralType is the INQUIRY peripheral device type.
	peripheralType() byte
	// removable is the INQUIRY RMB bit.
	removable() bool
	// register adds the device type's commands to the table.
	register(t *opTable)
	// vpd returns the device's own VPD pages, in page-code order.
	vpd() []vpdPage
	// modePages returns the device's own mode pages.
	modePages() []*modePage
	// modeHeader returns the device-specific parameter byte and the block
	// descriptor for MODE SENSE.
	modeHeader() (devSpecific byte, blocks uint64, blockLen uint32)
	// reset returns device state to its power-on values after a logical
	// unit reset.
	reset()
	// close releases the device's resources.
	close() error
}

// Logical unit readiness.
const (
	luReady uint32 = iota
	luStopped
	luFormatting
)

// LU is a logical unit: a device type over a backstore, with the SPC state
// every device type shares.
type LU struct {
	name     string
	lun      uint16
	target   *Target
	dev      device
	store    backstore.Store
	readOnly bool
	inq      Identity
	// immediate caches the backstore's Caps().Immediate (see Inline).
	immediate bool
	ops       opTable
	mode      modeState

	tasks taskSet
	// pr is the persistent reservation state (pr_lu.go).
	pr prState

	mu   sync.Mutex
	itls map[*itl]struct{}

	dsense  atomic.Bool
	swp     atomic.Bool
	ready   atomic.Uint32
	prevent atomic.Bool
	// progress is FORMAT UNIT's progress indication (0..65535).
	progress atomic.Uint32
}

// Identity is what INQUIRY and the VPD pages report about a logical unit.
type Identity struct {
	Vendor   string // 8 characters
	Product  string // 16 characters
	Revision string // 4 characters
	Serial   string // VPD page 80h
	// NAA is the NAA IEEE Registered Extended designator (16 bytes, NAA 6)
	// of VPD page 83h.
	NAA [16]byte
}

// DefaultOUI is the IEEE company ID in generated NAA designators when the
// configuration names none. It is the one the Linux LIO target uses; set
// your organisation's own in the configuration.
const DefaultOUI = 0x001405

// NewNAA builds an NAA IEEE Registered Extended identifier (NAA 6, SPC-4
// 7.8.6.6.6): the 24-bit company OUI, then 36 bits of vendor-specific
// identifier and a 64-bit extension derived from seed.
func NewNAA(oui uint32, seed []byte) [16]byte {
	// FNV-1a 128-bit style: two 64-bit FNV-1a hashes over the seed.
	h1, h2 := uint64(14695981039346656037), uint64(1099511628211)^0x9E3779B97F4A7C15
	for _, b := range seed {
		h1 ^= uint64(b)
		h1 *= 1099511628211
		h2 ^= uint64(b)
		h2 *= 0x100000001B3
		h2 ^= h2 >> 29
	}
	var n [16]byte
	// NAA(4) | OUI(24) | VSID(36) | VSID extension(64)
	hi := uint64(6)<<60 | uint64(oui&0xFFFFFF)<<36 | h1&0xFFFFFFFFF
	for i := 0; i < 8; i++ {
		n[i] = byte(hi >> (56 - 8*i))
		n[8+i] = byte(h2 >> (56 - 8*i))
	}
	return n
}

// Name returns the LU's configured name.
func (lu *LU) Name() string { return lu.name }

// LUN returns the LU's default LUN.
func (lu *LU) LUN() uint16 { return lu.lun }

// Store returns the LU's backstore.
func (lu *LU) Store() backstore.Store { return lu.store }

// Identity returns what INQUIRY reports.
func (lu *LU) Identity() Identity { return lu.inq }

func newLU(name string, lun uint16, dev device, store backstore.Store, readOnly bool, id Identity) *LU {
	lu := &LU{name: name, lun: lun, dev: dev, store: store, readOnly: readOnly, inq: id, itls: make(map[*itl]struct{})}
	lu.tasks.init()
	lu.immediate = store.Caps().Immediate
	registerSPC(&lu.ops, lu)
	registerPR(&lu.ops, lu)
	dev.register(&lu.ops)
	lu.mode.init(append(spcModePages(), dev.modePages()...))
	lu.applyMode()
	return lu
}

func (lu *LU) attach(x *itl) {
	lu.mu.Lock()
	lu.itls[x] = struct{}{}
	lu.mu.Unlock()
}

func (lu *LU) detach(x *itl) {
	lu.mu.Lock()
	delete(lu.itls, x)
	lu.mu.Unlock()
}

// ua establishes a unit attention for every I_T_L nexus of the LU except
// skip (nil: all of them).
func (lu *LU) ua(asc ASC, skip *Nexus) {
	lu.mu.Lock()
	for x := range lu.itls {
		if x.nexus != skip {
			x.ua.add(asc)
		}
	}
	lu.mu.Unlock()
}

// CapacityChanged tells every nexus that the capacity changed (after the
// backstore grew).
func (lu *LU) CapacityChanged() { lu.ua(ASCCapacityDataChanged, nil) }

// Close closes the device and its backstore.
func (lu *LU) Close() error {
	err := lu.dev.close()
	if cerr := lu.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// execute runs the SPC checks common to every command, then the command.
// The checks follow the order of SAM-5 5.13/SPC-4 5.14: unit attention
// first (except for the commands that may not report one), then the CDB,
// then reservation conflicts, then readiness and write protection.
func (lu *LU) execute(c *Command) error {
	cdb := c.CDB
	if len(cdb) == 0 {
		return ErrInvalidCommandIU
	}
	op, opErr := lu.ops.lookup(cdb)
	if op == nil || op.flags&opUAExempt == 0 {
		if asc, ok := c.itl.ua.take(); ok {
			return Sense(UnitAttention, asc)
		}
	}
	if opErr != nil {
		return opErr
	}
	c.op = op
	if err := op.checkCDB(cdb); err != nil {
		return err
	}
	// Reservations (SPC-4 5.12.1): one atomic load while the LU has no
	// registration and no reservation.
	if v := lu.pr.view.Load(); v != nil {
		if err := v.check(c, op); err != nil {
			return err
		}
	}
	if op.flags&opMedium != 0 {
		if err := lu.checkReady(); err != nil {
			return err
		}
	}
	if op.flags&opWrite != 0 {
		if c.itl.readOnly || lu.readOnly {
			return ErrWriteProtected
		}
		if lu.swp.Load() {
			return ErrSoftWriteProtected
		}
	}
	return op.fn(c)
}

func (lu *LU) checkReady() error {
	switch lu.ready.Load() {
	case luStopped:
		return ErrNotReadyInitCmd
	case luFormatting:
		e := &SenseError{Key: NotReady, ASC: ASCNotReadyFormatInProgress}
		p := lu.progress.Load()
		e.SKS = [3]byte{0x80, byte(p >> 8), byte(p)}
		return e
	}
	return nil
}

// fail turns a command's error into its status and sense data.
func (lu *LU) fail(c *Command, err error) {
	setCheckCondition(c, err, lu.dsense.Load())
}

// StatusError is a status other than GOOD or CHECK CONDITION (RESERVATION
// CONFLICT, BUSY, TASK SET FULL) returned by a command handler.
type StatusError Status

func (s StatusError) Error() string { return fmt.Sprintf("scsi: status %#02x", uint8(s)) }

func setCheckCondition(c *Command, err error, dsense bool) {
	// RESERVATION CONFLICT comes here on the command path: a plain type
	// assertion first, since errors.As makes its target escape.
	if st, ok := err.(StatusError); ok {
		c.Status = Status(st)
		c.SenseLen = 0
		return
	}
	var st StatusError
	if errors.As(err, &st) {
		c.Status = Status(st)
		c.SenseLen = 0
		return
	}
	var se *SenseError
	if !errors.As(err, &se) {
		se = ErrInternalFailure
	}
	c.Status = StatusCheckCondition
	if dsense {
		c.SenseLen = se.DescriptorSense(c.Sense[:])
	} else {
		c.SenseLen = se.FixedSense(c.Sense[:])
	}
}

// ioError classifies a backstore error for a command that read (write=false)
// or wrote at lba: EIO is a MEDIUM ERROR with the LBA in the information
// field, ENOSPC on a thin store is SPACE ALLOCATION FAILED WRITE PROTECT
// (SBC-3 4.7.3.6), read-only is WRITE PROTECTED, the rest is an internal
// target failure.
func ioError(err error, write bool, lba uint64) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ErrSpaceAllocFailed
	case errors.Is(err, backstore.ErrReadOnly), errors.Is(err, syscall.EROFS):
		return ErrWriteProtected
	case errors.Is(err, backstore.ErrOutOfRange):
		return ErrLBAOutOfRange
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EBADMSG), errors.Is(err, syscall.ENODATA):
		asc := ASCUnrecoveredReadError
		if write {
			asc = ASCWriteError
		}
		return &SenseError{Key: MediumError, ASC: asc, InfoValid: true, Info: lba}
	}
	return ErrInternalFailure
}
