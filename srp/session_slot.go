package srp

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/scsi"
)

type slotKind uint8

const (
	slotCmd slotKind = iota
	slotTMF
)

// slot carries one request IU from receipt to response. A channel has a
// fixed set of them, each with its goroutine, so the steady-state command
// path allocates nothing: the scsi.Command, CDB, descriptors and response IU
// are reused.
type slot struct {
	c     *channel
	start chan struct{}
	kind  slotKind

	mu     sync.Mutex // guards active and tag against shutdown's scan
	active bool
	tag    uint64
	// sending is set while the command's response is being sent: its tag
	// may be reused from then on (the initiator can see the response
	// before Send returns), and an ABORT TASK for it waits until then.
	sending atomic.Bool

	cmd     scsi.Command
	cdb     [16 + 252]byte
	out, in BufDesc
	descs   []MemDesc // backing of out.Partial and in.Partial
	tblOut  []MemDesc // fetched indirect tables
	tblIn   []MemDesc
	one     [1]MemDesc
	outBuf  []byte
	inBuf   []byte
	outLen  int
	inLen   int
	immDone bool
	solNt   uint8

	tmf      TskMgmt
	mark     scsi.Mark // the task management function's scope
	rsp      IU
	respData [RespDataLen]byte
}

func newSlot(c *channel) *slot {
	return &slot{c: c, start: make(chan struct{}, 1), descs: make([]MemDesc, 0, 8)}
}

func (sl *slot) loop() {
	defer sl.c.workers.Done()
	for range sl.start {
		if sl.kind == slotTMF {
			sl.runTMF()
		} else {
			sl.runCmd()
		}
	}
}

func (sl *slot) activeTag() (uint64, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.tag, sl.active && sl.kind == slotCmd
}

func (sl *slot) setActive(tag uint64) {
	sl.mu.Lock()
	sl.tag, sl.active = tag, true
	sl.mu.Unlock()
}

// prepare copies what the command needs out of the received IU (which the
// next Recv overwrites), checks it, enters the task in its task set and
// hands it to the slot's goroutine. It runs on the receive goroutine.
func (sl *slot) prepare(cmd *Cmd) {
	c := sl.c
	sl.kind = slotCmd
	sl.solNt = cmd.SolNt
	sc := &sl.cmd
	sc.Reset()
	n := copy(sl.cdb[:], cmd.CDB)
	sc.CDB = sl.cdb[:n]
	sc.LUN = cmd.LUN
	sc.Tag = cmd.Tag
	sc.Attr = scsi.TaskAttr(cmd.TaskAttr)

	sl.out, sl.in = cmd.Out, cmd.In
	sl.descs = append(sl.descs[:0], cmd.Out.Partial...)
	sl.descs = append(sl.descs, cmd.In.Partial...)
	no := len(cmd.Out.Partial)
	sl.out.Partial = sl.descs[:no:no]
	sl.in.Partial = sl.descs[no:]
	sl.outLen, sl.inLen = int(cmd.Out.Len()), int(cmd.In.Len())
	sl.immDone = false

	switch {
	case sl.outLen > c.s.cfg.MaxTransfer || sl.inLen > c.s.cfg.MaxTransfer:
		sl.reply(cmd.Tag, scsi.StatusCheckCondition, scsi.ErrInvalidCommandIU)
		return
	case cmd.Out.Format == BufImm && c.immOff == 0:
		// Immediate data was not negotiated at login.
		sl.reply(cmd.Tag, scsi.StatusCheckCondition, scsi.ErrInvalidCommandIU)
		return
	case cmd.TaskAttr != TaskSimple && cmd.TaskAttr != TaskHeadOfQueue && cmd.TaskAttr != TaskOrdered:
		// ACA and reserved attributes: this target never establishes ACA.
		sl.reply(cmd.Tag, scsi.StatusCheckCondition, scsi.ErrInvalidCommandIU)
		return
	}
	if !c.nx.addTag(cmd.Tag, sl) {
		// SAM-5 5.9: a tag already in use is an overlapped command.
		sl.reply(cmd.Tag, scsi.StatusCheckCondition, errOverlapped)
		return
	}
	var err error
	if sl.outLen > 0 {
		if sl.outBuf, err = c.ch.Alloc(sl.outLen); err != nil {
			c.nx.dropTag(cmd.Tag, sl)
			sl.reply(cmd.Tag, scsi.StatusBusy, nil)
			return
		}
		if cmd.Out.Format == BufImm {
			copy(sl.outBuf, cmd.Imm)
			sl.immDone = true
		}
	}
	if sl.inLen > 0 {
		if sl.inBuf, err = c.ch.Alloc(sl.inLen); err != nil {
			sl.freeBufs()
			c.nx.dropTag(cmd.Tag, sl)
			sl.reply(cmd.Tag, scsi.StatusBusy, nil)
			return
		}
	}
	sl.setActive(cmd.Tag)
	c.nx.sn.Start(sc)
	// Fast path: a command that cannot wait on anything (no data-out to
	// fetch over the network, a backstore that answers from memory, no
	// ordering to wait for) runs here, saving two goroutine switches.
	if (sl.outLen == 0 || sl.immDone || c.syncData) && c.nx.sn.Inline(sc) {
		sl.runCmd()
		return
	}
	sl.start <- struct{}{}
}

var errOverlapped = scsi.Sense(scsi.AbortedCommand, 0x4E00) // OVERLAPPED COMMANDS ATTEMPTED

// errDataPhase is a failed data transfer: ABORTED COMMAND, DATA PHASE ERROR.
var errDataPhase = scsi.Sense(scsi.AbortedCommand, 0x4B00)

// badDescriptors marks descriptor faults that are the initiator's.
type badDescriptors struct{ err error }

func (e *badDescriptors) Error() string { return e.err.Error() }
func (e *badDescriptors) Unwrap() error { return e.err }

// resolve returns the memory descriptors of one direction: the direct
// descriptor, the whole indirect table if the IU held it, or the table
// fetched from initiator memory when the IU held only part of it (SRP r16a
// 5.5.3.2).
func (sl *slot) resolve(bd *BufDesc, tbl *[]MemDesc) ([]MemDesc, error) {
	switch bd.Format {
	case BufDirect:
		sl.one[0] = bd.Direct
		return sl.one[:], nil
	case BufIndirect:
		if bd.Complete() {
			return bd.Partial, nil
		}
		n := int(bd.Table.Len / MemDescLen)
		if n > sl.c.s.cfg.MaxIndirect {
			return nil, &badDescriptors{fmt.Errorf("srp: indirect table of %d descriptors exceeds %d", n, sl.c.s.cfg.MaxIndirect)}
		}
		raw, err := sl.c.ch.Alloc(int(bd.Table.Len))
		if err != nil {
			return nil, err
		}
		defer sl.c.ch.Free(raw)
		sl.one[0] = bd.Table
		if err := sl.c.ch.ReadData(raw, sl.one[:]); err != nil {
			return nil, err
		}
		t, err := DecodeDescTable(raw, (*tbl)[:0])
		if err != nil {
			return nil, &badDescriptors{err}
		}
		*tbl = t
		if err := bd.ValidateTable(t); err != nil {
			return nil, &badDescriptors{err}
		}
		return t, nil
	}
	return nil, &badDescriptors{fmt.Errorf("srp: no descriptor for a %d-byte transfer", bd.Len())}
}

func (sl *slot) runCmd() {
	c := sl.c
	sn := c.nx.sn
	sc := &sl.cmd
	if sl.outLen > 0 && !sl.immDone {
		descs, err := sl.resolve(&sl.out, &sl.tblOut)
		if err == nil {
			err = c.ch.ReadData(sl.outBuf[:sl.outLen], descs)
		}
		if err != nil {
			sn.Abandon(sc)
			sl.dataFault(err)
			return
		}
	}
	sc.DataOut = sl.outBuf[:sl.outLen]
	sc.DataIn = sl.inBuf[:sl.inLen]
	sc.InViewOK = c.anyData
	sn.Execute(sc)
	if sc.Aborted() {
		sc.DoneView()
		sl.end()
		return
	}
	if sc.InLen > 0 {
		descs, err := sl.resolve(&sl.in, &sl.tblIn)
		if err == nil {
			err = c.ch.WriteData(sc.InData(), descs)
		}
		sc.DoneView()
		if err != nil {
			sl.dataFault(err)
			return
		}
	}
	var sense []byte
	if sc.Status == scsi.StatusCheckCondition {
		sense = sc.SenseData()
	}
	sl.respond(sc.Status, sense, true)
}

// dataFault answers a command whose data could not be moved: CHECK
// CONDITION with INVALID FIELD IN COMMAND IU when the initiator's
// descriptors were at fault, DATA PHASE ERROR when the transfer failed. On
// a closed channel, or for an aborted command, nothing is sent.
func (sl *slot) dataFault(err error) {
	c := sl.c
	if c.closing() || sl.cmd.Aborted() {
		sl.end()
		return
	}
	var bd *badDescriptors
	se := errDataPhase
	if errors.As(err, &bd) {
		se = scsi.ErrInvalidCommandIU
	}
	c.log.Debug("data transfer failed", zap.Uint64("tag", sl.cmd.Tag), zap.Error(err))
	var buf [scsi.MaxSense]byte
	n := se.FixedSense(buf[:])
	copy(sl.cmd.Sense[:], buf[:n])
	sl.cmd.SenseLen = n
	sl.cmd.InLen = 0
	sl.respond(scsi.StatusCheckCondition, sl.cmd.SenseData(), false)
}

// respond sends the SRP_RSP of the slot's command (SRP r16a 6.9) and frees
// the slot. withData selects whether the command's residuals are reported.
func (sl *slot) respond(status scsi.Status, sense []byte, withData bool) {
	c := sl.c
	r := &sl.rsp
	r.Op = OpRsp
	rr := &r.Rsp
	*rr = Rsp{Tag: sl.cmd.Tag, Status: uint8(status)}
	if withData {
		inOver, inUnder, outOver, outUnder := sl.cmd.Residuals()
		switch {
		case inOver > 0:
			rr.Flags |= RspFlagDiOver
			rr.DataInResidual = uint32(inOver)
		case inUnder > 0:
			rr.Flags |= RspFlagDiUnder
			rr.DataInResidual = uint32(inUnder)
		}
		switch {
		case outOver > 0:
			rr.Flags |= RspFlagDoOver
			rr.DataOutResidual = uint32(outOver)
		case outUnder > 0:
			rr.Flags |= RspFlagDoUnder
			rr.DataOutResidual = uint32(outUnder)
		}
	} else if sl.inLen > 0 {
		rr.Flags |= RspFlagDiUnder
		rr.DataInResidual = uint32(sl.inLen)
	}
	if len(sense) > c.maxSense {
		sense = sense[:c.maxSense]
	}
	rr.Sense = sense
	if status == scsi.StatusGood && sl.solNt&FlagSCSolNt != 0 || status != scsi.StatusGood && sl.solNt&FlagUCSolNt != 0 {
		rr.SolNt = FlagSolNt
	}
	sl.sending.Store(true)
	rr.ReqLimDelta = c.returnCredits(1)
	if err := c.ch.Send(r); err != nil {
		c.log.Debug("sending SRP_RSP failed", zap.Uint64("tag", sl.cmd.Tag), zap.Error(err))
	}
	c.nx.dropTag(sl.cmd.Tag, sl)
	sl.release(true)
}

// reply answers a command on the receive goroutine without executing it.
func (sl *slot) reply(tag uint64, status scsi.Status, se *scsi.SenseError) {
	sl.cmd.Reset()
	sl.cmd.Tag = tag
	sl.solNt = 0
	sl.inLen = 0
	var sense []byte
	if se != nil {
		n := se.FixedSense(sl.cmd.Sense[:])
		sense = sl.cmd.Sense[:n]
	}
	c := sl.c
	r := &sl.rsp
	r.Op = OpRsp
	r.Rsp = Rsp{Tag: tag, Status: uint8(status), Sense: sense}
	r.Rsp.ReqLimDelta = c.returnCredits(1)
	if err := c.ch.Send(r); err != nil {
		c.log.Debug("sending SRP_RSP failed", zap.Uint64("tag", tag), zap.Error(err))
	}
	c.finish(sl, true)
}

// end finishes a command that gets no response (aborted, or its channel
// closed): its credit waits in owed.
func (sl *slot) end() {
	sl.c.nx.dropTag(sl.cmd.Tag, sl)
	if d, ok := sl.c.ch.(Dropper); ok {
		d.Dropped(sl.cmd.Tag)
	}
	sl.release(false)
}

func (sl *slot) release(answered bool) {
	sl.freeBufs()
	sl.mu.Lock()
	sl.active = false
	sl.mu.Unlock()
	sl.sending.Store(false)
	sl.c.finish(sl, answered)
}

func (sl *slot) freeBufs() {
	if sl.outBuf != nil {
		sl.c.ch.Free(sl.outBuf)
		sl.outBuf = nil
	}
	if sl.inBuf != nil {
		sl.c.ch.Free(sl.inBuf)
		sl.inBuf = nil
	}
}

// runTMF performs a task management function (SRP r16a 6.7) and answers it
// with an SRP_RSP whose response data holds the response code.
func (sl *slot) runTMF() {
	t := &sl.tmf
	sn := sl.c.nx.sn
	var res scsi.TMFResult
	switch t.Function {
	case TMFAbortTask:
		res = sn.AbortTask(t.LUN, t.TaskTag, sl.mark)
		if res == scsi.TMFComplete {
			// The task may have left the task set and still be sending
			// its response: answer the abort after that response, so
			// the initiator never sees a response to an aborted task.
			sl.c.nx.waitTag(t.TaskTag)
		}
	case TMFAbortTaskSet:
		res = sn.AbortTaskSet(t.LUN, sl.mark)
	case TMFClearTaskSet:
		res = sn.ClearTaskSet(t.LUN, sl.mark)
	case TMFLogicalUnitReset:
		res = sn.LUReset(t.LUN, sl.mark)
	case TMFClearACA:
		res = sn.ClearACA(t.LUN)
	case TMFQueryTask:
		// A task exists from receipt until its response is sent; the
		// session's tag table covers all of that time.
		res = sn.QueryTask(t.LUN, t.TaskTag, sl.mark)
		if res == scsi.TMFComplete && sl.c.nx.hasTag(t.TaskTag) {
			res = scsi.TMFSucceeded
		}
	default:
		sl.tmfReply(t.Tag, RspCodeNotSupported)
		return
	}
	sl.c.log.Info("task management",
		zap.String("initiator", fmt.Sprintf("%x", sl.c.nx.id.Initiator)),
		zap.Uint8("function", t.Function), zap.Uint64("lun", t.LUN),
		zap.Uint64("task_tag", t.TaskTag), zap.Stringer("result", res))
	sl.tmfReply(t.Tag, tmfCode(res))
}

// tmfCode maps a SAM-5 service response to the SRP response code.
func tmfCode(r scsi.TMFResult) uint8 {
	switch r {
	case scsi.TMFComplete:
		return RspCodeComplete
	case scsi.TMFSucceeded:
		return RspCodeSucceeded
	case scsi.TMFIncorrectLUN:
		return RspCodeIncorrectLUN
	}
	return RspCodeFailed
}

func (sl *slot) tmfReply(tag uint64, code uint8) {
	c := sl.c
	sl.respData = [RespDataLen]byte{0, 0, 0, code}
	r := &sl.rsp
	r.Op = OpRsp
	r.Rsp = Rsp{Tag: tag, Status: uint8(scsi.StatusGood), RespData: sl.respData[:]}
	r.Rsp.ReqLimDelta = c.returnCredits(1)
	if err := c.ch.Send(r); err != nil {
		c.log.Debug("sending task management response failed", zap.Uint64("tag", tag), zap.Error(err))
	}
	c.finish(sl, true)
}

// addTag records a new task's tag. A tag still held by a task that is not
// yet sending its response is an overlapped command.
func (nx *nexus) addTag(tag uint64, sl *slot) bool {
	nx.tmu.Lock()
	defer nx.tmu.Unlock()
	if cur, dup := nx.tags[tag]; dup && !cur.sending.Load() {
		return false
	}
	nx.tags[tag] = sl
	return true
}

func (nx *nexus) dropTag(tag uint64, sl *slot) {
	nx.tmu.Lock()
	if nx.tags[tag] == sl {
		delete(nx.tags, tag)
	}
	nx.tmu.Unlock()
}

func (nx *nexus) hasTag(tag uint64) bool {
	nx.tmu.Lock()
	defer nx.tmu.Unlock()
	sl, ok := nx.tags[tag]
	return ok && !sl.sending.Load()
}

// waitTag waits until no command with the tag is left in the session.
func (nx *nexus) waitTag(tag uint64) {
	for {
		nx.tmu.Lock()
		_, ok := nx.tags[tag]
		nx.tmu.Unlock()
		if !ok {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}
