package srp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/scsi"
)

// channel is the session state of one logged-in SRP channel.
//
// Credits (SRP r16a 5.6): the login grants N; every SRP_CMD and
// SRP_TSK_MGMT consumes one; every response returns, in its REQUEST LIMIT
// DELTA, the credits of the requests finished since the last response. So
// that no credit is lost, every finished request adds exactly one to owed,
// and every IU that carries a delta takes owed to zero in one atomic swap.
// A request that ends with no response (an aborted command) leaves its
// credit in owed, to ride on the next response or on an SRP_CRED_REQ.
type channel struct {
	s       *Server
	ch      Channel
	port    *scsi.Port
	nx      *nexus
	log     *zap.Logger
	credits int
	immOff  uint16
	// syncData, anyData and maxSense cache Limits().SyncData, AnyData
	// and what MaxTIIU leaves for sense data.
	syncData, anyData bool
	maxSense          int

	granted  atomic.Int64 // credits granted: login + every delta sent
	received int64        // request IUs received; receive goroutine only
	owed     atomic.Int32 // credits of finished requests not yet returned
	inflight atomic.Int32 // request IUs received and not finished
	credReqs atomic.Int32 // SRP_CRED_REQ / SRP_AER_REQ awaiting the initiator's response

	// 2N slots for N credits: a slot whose response carried its credit is
	// still sending while the initiator may already use that credit.
	slots []*slot
	free  bufpool.Stack[*slot]
	// freeWait is set while the receive goroutine waits for a free slot;
	// freed wakes it.
	freeWait atomic.Bool
	freed    chan struct{}

	draining  atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	reasonMu  sync.Mutex
	reason    error
	workers   sync.WaitGroup

	ctlMu sync.Mutex
	ctl   IU
	iu    IU
}

func newChannel(s *Server, ch Channel, port *scsi.Port, credits int, immOff uint16) *channel {
	c := &channel{
		s:       s,
		ch:      ch,
		port:    port,
		log:     s.log,
		credits: credits,
		immOff:  immOff,
		free:    bufpool.Stack[*slot]{Depth: 2 * credits},
		freed:   make(chan struct{}, 1),
		// syncData: see Limits.SyncData and slot.prepare.
		syncData: ch.Limits().SyncData,
		anyData:  ch.Limits().AnyData,
		maxSense: ch.Limits().MaxTIIU - RspMinLen,
		done:     make(chan struct{}),
	}
	c.iu.Cmd.ImmOffset = immOff
	c.iu.Cmd.DescBuf = make([]MemDesc, 0, 16)
	c.slots = make([]*slot, 2*credits)
	for i := range c.slots {
		sl := newSlot(c)
		c.slots[i] = sl
		c.free.Push(sl)
	}
	return c
}

// errILogout ends a channel whose initiator logged out.
var errILogout = errors.New("srp: initiator logged out")

// run receives IUs until the channel ends.
func (c *channel) run() error {
	c.workers.Add(len(c.slots))
	for _, sl := range c.slots {
		go sl.loop()
	}
	for {
		err := c.ch.Recv(&c.iu)
		if err != nil {
			if r := c.closeReason(); r != nil {
				return r
			}
			var de *DecodeError
			if errors.As(err, &de) {
				return c.violation(de)
			}
			return err
		}
		switch c.iu.Op {
		case OpCmd:
			c.onCmd(&c.iu.Cmd)
		case OpTskMgmt:
			c.onTMF(&c.iu.TskMgmt)
		case OpILogout:
			c.log.Info("initiator logout", zap.String("initiator", fmt.Sprintf("%x", c.nx.id.Initiator)))
			return errILogout
		case OpCredRsp, OpAerRsp:
			if c.credReqs.Add(-1) < 0 {
				c.credReqs.Add(1)
				err := fmt.Errorf("srp: %v with no request outstanding", c.iu.Op)
				c.logout(TLogoutUnexpectedResponse, err)
				return err
			}
		default:
			err := fmt.Errorf("srp: %v is not valid on an established channel", c.iu.Op)
			c.logout(TLogoutInvalidIUType, err)
			return err
		}
	}
}

// violation ends the channel after an IU that could not be decoded, with
// the SRP_T_LOGOUT reason that names the fault (SRP r16a 6.6).
func (c *channel) violation(de *DecodeError) error {
	reason := TLogoutInvalidIULen
	switch {
	case errors.Is(de, ErrBadOpcode):
		reason = TLogoutInvalidIUType
		if !de.IU.FromInitiator() {
			reason = TLogoutUnexpectedResponse
		}
	case errors.Is(de, ErrBadFormat):
		reason = TLogoutUnsupportedDataOutFormat
		if de.Field == "DATA-IN BUFFER DESCRIPTOR FORMAT" {
			reason = TLogoutUnsupportedDataInFormat
		}
	}
	err := fmt.Errorf("srp: protocol violation: %w", de)
	c.log.Warn("initiator sent a bad IU; logging the channel out",
		zap.String("initiator", fmt.Sprintf("%x", c.nx.id.Initiator)), zap.Error(de))
	c.logout(reason, err)
	return err
}

// takeCredit accounts one request IU. It reports false if the initiator
// has no credit for it (SRP r16a 5.6: it sent more requests than the
// request limit allowed).
func (c *channel) takeCredit() bool {
	c.received++
	return c.received <= c.granted.Load()
}

// returnCredits takes every owed credit plus extra for a response being
// sent, and records them as granted.
func (c *channel) returnCredits(extra int32) int32 {
	d := c.owed.Swap(0) + extra
	c.granted.Add(int64(d))
	return d
}

// finish ends a request that was answered with a delta from returnCredits
// (its credit already counted in extra), or with no response at all.
func (c *channel) finish(sl *slot, answered bool) {
	if !answered {
		c.owed.Add(1)
	}
	c.free.Push(sl)
	if c.freeWait.Load() {
		select {
		case c.freed <- struct{}{}:
		default:
		}
	}
	if c.inflight.Add(-1) == 0 && c.owed.Load() > 0 && !c.closing() {
		c.sendCredits()
	}
}

// sendCredits returns owed credits with SRP_CRED_REQ when nothing else
// will carry them soon (SRP r16a 6.10).
func (c *channel) sendCredits() {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	if c.owed.Load() == 0 {
		return
	}
	c.ctl.Op = OpCredReq
	c.ctl.CredReq = CredReq{Tag: 0, ReqLimDelta: c.returnCredits(0)}
	c.credReqs.Add(1)
	if err := c.ch.Send(&c.ctl); err != nil {
		c.log.Debug("sending SRP_CRED_REQ failed", zap.Error(err))
	}
}

// takeSlot returns a free slot, waiting for one if all 2N are busy (an
// initiator past its credits). Only the receive goroutine takes slots.
func (c *channel) takeSlot() *slot {
	for {
		if sl, ok := c.free.Pop(); ok {
			return sl
		}
		// finish pushes, then looks at freeWait: either it sees the
		// flag and wakes us, or our second Pop sees its slot
		c.freeWait.Store(true)
		if sl, ok := c.free.Pop(); ok {
			c.freeWait.Store(false)
			return sl
		}
		<-c.freed
		c.freeWait.Store(false)
	}
}

func (c *channel) onCmd(cmd *Cmd) {
	c.inflight.Add(1)
	sl := c.takeSlot()
	if !c.takeCredit() {
		sl.reply(cmd.Tag, scsi.StatusTaskSetFull, nil)
		c.log.Warn("initiator exceeded its request limit; answered TASK SET FULL",
			zap.String("initiator", fmt.Sprintf("%x", c.nx.id.Initiator)), zap.Uint64("tag", cmd.Tag))
		return
	}
	if c.draining.Load() {
		sl.reply(cmd.Tag, scsi.StatusBusy, nil)
		return
	}
	sl.prepare(cmd)
}

func (c *channel) onTMF(t *TskMgmt) {
	c.inflight.Add(1)
	sl := c.takeSlot()
	if !c.takeCredit() {
		sl.tmfReply(t.Tag, RspCodeFailed)
		return
	}
	sl.kind = slotTMF
	sl.tmf = *t
	// Every command received before the function has been started: the
	// mark puts exactly those in its scope.
	sl.mark = c.nx.sn.Mark()
	sl.start <- struct{}{}
}

// logout sends SRP_T_LOGOUT with reason and closes the channel.
func (c *channel) logout(reason uint32, why error) {
	c.ctlMu.Lock()
	if !c.closing() {
		c.ctl.Op = OpTLogout
		c.ctl.TLogout = TLogout{Reason: reason}
		if err := c.ch.Send(&c.ctl); err != nil {
			c.log.Debug("sending SRP_T_LOGOUT failed", zap.Error(err))
		}
	}
	c.ctlMu.Unlock()
	c.shutdown(why)
}

// drain stops taking commands, lets the running ones finish, then logs the
// channel out. If ctx ends first, it closes the channel at once.
func (c *channel) drain(ctx context.Context) {
	c.draining.Store(true)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			c.shutdown(ctx.Err())
			return
		case <-c.done:
			return
		case <-tick.C:
		}
	}
	c.logout(TLogoutNoReason, errors.New("target shutting down"))
}

func (c *channel) closing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *channel) closeReason() error {
	c.reasonMu.Lock()
	defer c.reasonMu.Unlock()
	return c.reason
}

// shutdown closes the channel once: the transport is closed, so Recv,
// ReadData and WriteData return, and the receive loop ends. Safe from any
// goroutine.
func (c *channel) shutdown(reason error) {
	c.closeOnce.Do(func() {
		if reason == nil {
			reason = ErrClosed
		}
		c.reasonMu.Lock()
		c.reason = reason
		c.reasonMu.Unlock()
		close(c.done)
		c.ch.Close(reason)
	})
}

// cleanup runs once the receive loop has ended: the channel's tasks end
// with it (they get no response), and its slot goroutines stop.
func (c *channel) cleanup() {
	for _, sl := range c.slots {
		if t, ok := sl.activeTag(); ok {
			c.nx.sn.AbortTask(sl.cmd.LUN, t, c.nx.sn.Mark())
		}
	}
	for _, sl := range c.slots {
		close(sl.start)
	}
	c.workers.Wait()
}
