package scsi

import (
	"sync/atomic"
)

// PortID is a 128-bit SCSI port identifier, as SRP uses for initiator and
// target ports.
type PortID [16]byte

// NexusID names an I_T nexus: the initiator port and the target port.
type NexusID struct {
	Initiator PortID
	Target    PortID
}

// TaskAttr is a command's task attribute (SAM-5 8.6).
type TaskAttr uint8

const (
	Simple      TaskAttr = 0
	HeadOfQueue TaskAttr = 1
	Ordered     TaskAttr = 2
	ACA         TaskAttr = 4
)

func (a TaskAttr) String() string {
	switch a {
	case Simple:
		return "SIMPLE"
	case HeadOfQueue:
		return "HEAD OF QUEUE"
	case Ordered:
		return "ORDERED"
	case ACA:
		return "ACA"
	}
	return "UNKNOWN"
}

// Status is a SCSI status code (SAM-5 5.3).
type Status uint8

const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

// MaxSense is the largest sense data the target builds. Fixed format sense
// is 18 bytes; descriptor format with an information and a
// sense-key-specific descriptor is 8+12+8 bytes.
const MaxSense = 96

// Command is one SCSI command from an I_T nexus to a logical unit, and its
// outcome. A transport (through the session layer) fills the request half,
// hands the command to Nexus.Execute, and reads the outcome half. A Command
// is reused from command to command: Reset clears it without freeing its
// buffers, so the steady-state data path allocates nothing.
type Command struct {
	// Request, set by the caller.

	// CDB holds the command descriptor block; the caller owns the bytes.
	CDB []byte
	// LUN is the 8-byte SAM LUN field as a big-endian integer.
	LUN uint64
	// Tag is unique among the nexus's outstanding commands.
	Tag  uint64
	Attr TaskAttr
	// DataOut is the data-out buffer as the initiator sent it (may be
	// shorter or longer than the CDB asks for).
	DataOut []byte
	// DataIn is the initiator's data-in buffer: its length is how much the
	// initiator can take. The command writes DataIn[:InLen].
	DataIn []byte
	// InViewOK says the transport can send data-in from any memory (it
	// copies it): a read may then lend the store's own bytes (InView)
	// instead of filling DataIn.
	InViewOK bool

	// Outcome, set by Execute.

	Status Status
	// InLen is how many bytes of DataIn hold data.
	InLen int
	// InView, when not nil, holds the InLen bytes of data-in in place of
	// DataIn: bytes a backstore.Viewer lent. InData returns whichever
	// holds them; the transport calls DoneView once it has sent them.
	InView   []byte
	viewDone func()
	// InWant is how many bytes the command had to return; InWant > len(DataIn)
	// is a data-in overflow.
	InWant int
	// OutWant is how many data-out bytes the command needed; it differs from
	// len(DataOut) on an overflow or underflow.
	OutWant  int
	Sense    [MaxSense]byte
	SenseLen int

	// Execution state, owned by the scsi package.
	nexus *Nexus
	itl   *itl
	lu    *LU
	op    *opInfo
	state atomic.Uint32
	task  task
	// arrival orders the command against task management functions
	// (see Mark).
	arrival uint64
}

// Command states. A command runs once and ends exactly once: either it
// completes (the transport answers it) or a task management function aborts
// it (the transport must not answer it).
const (
	cmdIdle uint32 = iota
	cmdRunning
	cmdDone
	cmdAborted
)

// Reset readies c for reuse. Buffers slices are kept as they are; the caller
// sets the request fields again.
func (c *Command) Reset() {
	c.CDB = nil
	c.LUN = 0
	c.Tag = 0
	c.Attr = Simple
	c.DataOut = nil
	c.DataIn = nil
	c.InViewOK = false
	c.DoneView()
	c.Status = StatusGood
	c.InLen = 0
	c.InWant = 0
	c.OutWant = 0
	c.SenseLen = 0
	c.nexus = nil
	c.itl = nil
	c.lu = nil
	c.op = nil
	c.arrival = 0
	c.state.Store(cmdIdle)
	c.task.reset()
}

// InData returns the data-in: InView when a store lent it, else
// DataIn[:InLen].
func (c *Command) InData() []byte {
	if c.InView != nil {
		return c.InView
	}
	return c.DataIn[:c.InLen]
}

// DoneView gives a lent InView back to its store. It is idempotent.
func (c *Command) DoneView() {
	if c.viewDone != nil {
		c.viewDone()
	}
	c.InView, c.viewDone = nil, nil
}

// Aborted reports whether a task management function aborted the command.
// The transport must not send a response for an aborted command.
func (c *Command) Aborted() bool { return c.state.Load() == cmdAborted }

// SenseData returns the sense bytes built for a CHECK CONDITION.
func (c *Command) SenseData() []byte { return c.Sense[:c.SenseLen] }

// Residuals returns the SAM residual counts for the transport's response:
// data-in and data-out overflow (the command wanted more than the buffer
// held) or underflow (it moved less than the buffer held).
func (c *Command) Residuals() (inOver, inUnder, outOver, outUnder int) {
	switch {
	case c.InWant > len(c.DataIn):
		inOver = c.InWant - len(c.DataIn)
	case c.InLen < len(c.DataIn):
		inUnder = len(c.DataIn) - c.InLen
	}
	switch {
	case c.OutWant > len(c.DataOut):
		outOver = c.OutWant - len(c.DataOut)
	case c.OutWant < len(c.DataOut):
		outUnder = len(c.DataOut) - c.OutWant
	}
	return
}

// dataIn copies b into the data-in buffer, truncating at its length, and
// records how much the command wanted to return.
func (c *Command) dataIn(b []byte) {
	c.InWant = len(b)
	c.InLen = copy(c.DataIn, b)
}
