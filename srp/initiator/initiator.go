// Package initiator is an SRP initiator in Go: it logs in over any
// initiator-side connection (the in-memory transport, RDMA verbs, the Xen SRP
// ring), sends SCSI commands with direct, indirect or partial indirect
// descriptors or immediate data, performs task management and logs out. It
// never exceeds the request limit the target grants.
//
// It implements scsitest.Initiator, so the SCSI test bodies run over SRP
// unchanged; srptgt bench and the demo drive it over the real transports.
package initiator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
)

// Conn is the initiator side of a transport.
type Conn interface {
	// Login opens the channel with the login request and returns the
	// target's response, or its reject with an error.
	Login(ctx context.Context, req *srp.LoginReq) (*srp.LoginRsp, *srp.LoginRej, error)
	// Send sends one encoded IU.
	Send(iu []byte) error
	// Recv returns the next IU from the target, valid until the next Recv.
	Recv() ([]byte, error)
	// Register exposes initiator memory to the target and returns a
	// descriptor covering it.
	Register(b []byte, writable bool) (srp.MemDesc, error)
	// Unregister withdraws it.
	Unregister(d srp.MemDesc)
	// MaxIU is the largest IU the connection carries to the target.
	MaxIU() int
	// Close disconnects.
	Close() error
}

// DescMode selects how the initiator describes data buffers.
type DescMode int

const (
	// Direct: one direct descriptor per direction.
	Direct DescMode = iota
	// Indirect: the buffer split into Segments pieces, the whole table in
	// the IU.
	Indirect
	// IndirectPartial: Segments pieces, only InIU of them in the IU; the
	// target fetches the table from initiator memory.
	IndirectPartial
)

// Config configures an initiator.
type Config struct {
	InitiatorPortID [16]byte
	TargetPortID    [16]byte
	// MaxITIU is the largest IU to ask for; zero takes the connection's.
	MaxITIU uint32
	// MultiChannel is the login's multi-channel action.
	MultiChannel uint8
	// ImmData asks for SRP-2 immediate data at srp.LinuxImmDataOffset.
	ImmData bool
	// Mode, Segments and InIU shape the data descriptors.
	Mode     DescMode
	Segments int
	InIU     int
	// TMFReserve is how many credits commands leave for task management
	// (Linux ib_srp keeps one). Zero means 1.
	TMFReserve int32
}

// Initiator is a logged-in SRP channel.
type Initiator struct {
	conn Conn
	cfg  Config
	rsp  srp.LoginRsp

	mu      sync.Mutex
	cond    *sync.Cond
	reqLim  int32
	pending map[uint64]*call
	nextTag uint64
	err     error
	logout  *srp.TLogout
	// Protocol faults seen: a response for no outstanding request, a
	// second response for one. Tests assert there are none.
	faults []string
	aers   int

	sendMu  sync.Mutex
	sendB   []byte
	sendSeq uint64
	done    chan struct{}
}

type call struct {
	// seq is the send order of the request IU (0 until sent): a task
	// management function affects only requests sent before it.
	seq     atomic.Uint64
	done    chan struct{}
	rsp     srp.Rsp
	sense   []byte
	resp    []byte
	aborted bool
	tmf     bool
}

// Dial logs in over conn.
func Dial(ctx context.Context, conn Conn, cfg Config) (*Initiator, error) {
	if cfg.MaxITIU == 0 {
		cfg.MaxITIU = uint32(conn.MaxIU())
	}
	if cfg.TMFReserve == 0 {
		cfg.TMFReserve = 1
	}
	if cfg.Segments == 0 {
		cfg.Segments = 4
	}
	req := &srp.LoginReq{
		MaxITIULen:      cfg.MaxITIU,
		BufFmt:          srp.BufFmtDirect | srp.BufFmtIndirect,
		MultiChannel:    cfg.MultiChannel,
		InitiatorPortID: cfg.InitiatorPortID,
		TargetPortID:    cfg.TargetPortID,
	}
	if cfg.ImmData {
		req.Flags |= srp.LoginFlagImmData
		req.ImmDataOffset = srp.LinuxImmDataOffset
	}
	rsp, rej, err := conn.Login(ctx, req)
	if err != nil {
		if rej != nil {
			return nil, &RejectError{Reason: rej.Reason, Err: err}
		}
		return nil, err
	}
	in := &Initiator{
		conn:    conn,
		cfg:     cfg,
		rsp:     *rsp,
		reqLim:  rsp.ReqLimDelta,
		pending: make(map[uint64]*call),
		nextTag: 1,
		sendB:   make([]byte, cfg.MaxITIU),
		done:    make(chan struct{}),
	}
	in.cond = sync.NewCond(&in.mu)
	go in.recvLoop()
	return in, nil
}

// RejectError is a refused login.
type RejectError struct {
	Reason uint32
	Err    error
}

func (e *RejectError) Error() string { return fmt.Sprintf("SRP_LOGIN_REJ reason %#08x", e.Reason) }
func (e *RejectError) Unwrap() error { return e.Err }

// LoginResponse returns the target's SRP_LOGIN_RSP.
func (in *Initiator) LoginResponse() srp.LoginRsp { return in.rsp }

// ImmData reports whether the target accepted immediate data.
func (in *Initiator) ImmData() bool { return in.rsp.Flags&srp.LoginRspFlagImmData != 0 }

// ReqLim returns the current request limit.
func (in *Initiator) ReqLim() int32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.reqLim
}

// Faults returns protocol faults the initiator saw.
func (in *Initiator) Faults() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.faults...)
}

// TargetLogout returns the SRP_T_LOGOUT the target sent, if any.
func (in *Initiator) TargetLogout() *srp.TLogout {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.logout
}

// Done is closed when the channel ends.
func (in *Initiator) Done() <-chan struct{} { return in.done }

// Err returns why the channel ended.
func (in *Initiator) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

func (in *Initiator) fault(format string, a ...any) {
	in.faults = append(in.faults, fmt.Sprintf(format, a...))
}

func (in *Initiator) recvLoop() {
	var iu srp.IU
	for {
		b, err := in.conn.Recv()
		if err != nil {
			in.fail(err)
			return
		}
		if err := iu.DecodeFromTarget(b); err != nil {
			in.mu.Lock()
			in.fault("undecodable IU from target: %v", err)
			in.mu.Unlock()
			continue
		}
		switch iu.Op {
		case srp.OpRsp:
			in.onRsp(&iu.Rsp)
		case srp.OpCredReq:
			in.credit(iu.CredReq.ReqLimDelta)
			in.sendSimple(&srp.IU{Op: srp.OpCredRsp, CredRsp: srp.CredRsp{Tag: iu.CredReq.Tag}})
		case srp.OpAerReq:
			in.mu.Lock()
			in.aers++
			in.mu.Unlock()
			in.credit(iu.AerReq.ReqLimDelta)
			in.sendSimple(&srp.IU{Op: srp.OpAerRsp, AerRsp: srp.AerRsp{Tag: iu.AerReq.Tag}})
		case srp.OpTLogout:
			t := iu.TLogout
			in.mu.Lock()
			in.logout = &t
			in.mu.Unlock()
			in.fail(fmt.Errorf("initiator: target logged out (reason %d)", t.Reason))
			in.conn.Close()
			return
		default:
			in.mu.Lock()
			in.fault("unexpected %v from target", iu.Op)
			in.mu.Unlock()
		}
	}
}

func (in *Initiator) credit(d int32) {
	in.mu.Lock()
	in.reqLim += d
	in.cond.Broadcast()
	in.mu.Unlock()
}

func (in *Initiator) onRsp(r *srp.Rsp) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.reqLim += r.ReqLimDelta
	in.cond.Broadcast()
	c, ok := in.pending[r.Tag]
	if !ok {
		in.fault("SRP_RSP for tag %#x, which has no outstanding request", r.Tag)
		return
	}
	delete(in.pending, r.Tag)
	c.rsp = *r
	c.sense = append([]byte(nil), r.Sense...)
	c.resp = append([]byte(nil), r.RespData...)
	c.rsp.Sense, c.rsp.RespData = c.sense, c.resp
	close(c.done)
}

func (in *Initiator) fail(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err != nil {
		return
	}
	in.err = err
	for tag, c := range in.pending {
		delete(in.pending, tag)
		close(c.done)
	}
	in.cond.Broadcast()
	close(in.done)
}

func (in *Initiator) sendSimple(iu *srp.IU) uint64 {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	n, err := iu.Encode(in.sendB)
	if err == nil {
		in.sendSeq++
		err = in.conn.Send(in.sendB[:n])
	}
	if err != nil {
		in.fail(err)
	}
	return in.sendSeq
}

// acquire takes a credit, leaving reserve credits for task management. It
// registers c under tag in the same critical section, so a response can
// never arrive before its call is known.
func (in *Initiator) acquire(ctx context.Context, reserve int32, tag uint64, c *call) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		in.mu.Lock()
		in.cond.Broadcast()
		in.mu.Unlock()
	})
	defer stop()
	for in.reqLim <= reserve && in.err == nil && ctx.Err() == nil {
		in.cond.Wait()
	}
	if in.err != nil {
		return in.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, dup := in.pending[tag]; dup {
		return fmt.Errorf("initiator: tag %#x is in use", tag)
	}
	in.reqLim--
	in.pending[tag] = c
	return nil
}

func (in *Initiator) newTag() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	for {
		t := in.nextTag
		in.nextTag++
		if _, busy := in.pending[t]; !busy && t != 0 {
			return t
		}
	}
}

// Do sends one SCSI command and waits for its response. It returns
// scsitest.ErrAborted if a task management function aborted the command.
func (in *Initiator) Do(ctx context.Context, r *scsitest.Request) (*scsitest.Response, error) {
	tag := r.Tag
	if tag == 0 {
		tag = in.newTag()
	}
	cmd := srp.Cmd{Tag: tag, LUN: r.LUN, TaskAttr: uint8(r.Attr), CDB: r.CDB, ImmOffset: 0}
	var regs []srp.MemDesc
	defer func() {
		for _, d := range regs {
			in.conn.Unregister(d)
		}
	}()
	var inBuf []byte
	if len(r.DataOut) > 0 {
		immRoom := int(in.cfg.MaxITIU) - srp.LinuxImmDataOffset
		if in.ImmData() && len(r.DataOut) <= immRoom {
			cmd.Out = srp.BufDesc{Format: srp.BufImm, TotalLen: uint32(len(r.DataOut))}
			cmd.Imm = r.DataOut
			cmd.ImmOffset = srp.LinuxImmDataOffset
		} else {
			bd, rs, err := in.describe(r.DataOut, false)
			regs = append(regs, rs...)
			if err != nil {
				return nil, err
			}
			cmd.Out = bd
		}
	}
	if r.InLen > 0 {
		inBuf = make([]byte, r.InLen)
		bd, rs, err := in.describe(inBuf, true)
		regs = append(regs, rs...)
		if err != nil {
			return nil, err
		}
		cmd.In = bd
	}
	c := &call{done: make(chan struct{})}
	if err := in.acquire(ctx, in.cfg.TMFReserve, tag, c); err != nil {
		return nil, err
	}
	in.sendMu.Lock()
	n, err := cmd.Encode(in.sendB)
	if err == nil {
		in.sendSeq++
		c.seq.Store(in.sendSeq)
		err = in.conn.Send(in.sendB[:n])
	}
	in.sendMu.Unlock()
	if err != nil {
		in.fail(err)
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// The command stays outstanding; an abort or a response ends it.
		return nil, ctx.Err()
	}
	if c.aborted {
		return nil, scsitest.ErrAborted
	}
	if c.rsp.Tag != tag {
		return nil, in.Err()
	}
	resp := &scsitest.Response{Status: scsi.Status(c.rsp.Status), Sense: c.rsp.Sense}
	if inBuf != nil {
		got := len(inBuf)
		switch {
		case c.rsp.Flags&srp.RspFlagDiUnder != 0:
			got -= int(c.rsp.DataInResidual)
			resp.InResidual = int(c.rsp.DataInResidual)
		case c.rsp.Flags&srp.RspFlagDiOver != 0:
			resp.InResidual = -int(c.rsp.DataInResidual)
		}
		if got < 0 {
			got = 0
		}
		resp.Data = inBuf[:got]
	}
	switch {
	case c.rsp.Flags&srp.RspFlagDoUnder != 0:
		resp.OutResidual = int(c.rsp.DataOutResidual)
	case c.rsp.Flags&srp.RspFlagDoOver != 0:
		resp.OutResidual = -int(c.rsp.DataOutResidual)
	}
	return resp, nil
}

// describe registers b and builds its descriptor in the configured mode.
func (in *Initiator) describe(b []byte, writable bool) (srp.BufDesc, []srp.MemDesc, error) {
	d, err := in.conn.Register(b, writable)
	if err != nil {
		return srp.BufDesc{}, nil, err
	}
	regs := []srp.MemDesc{d}
	if in.cfg.Mode == Direct {
		return srp.BufDesc{Format: srp.BufDirect, Direct: d}, regs, nil
	}
	segs := in.cfg.Segments
	if segs > len(b) {
		segs = len(b)
	}
	table := make([]srp.MemDesc, segs)
	step := len(b) / segs
	for i := range table {
		lo := i * step
		hi := lo + step
		if i == segs-1 {
			hi = len(b)
		}
		table[i] = srp.MemDesc{Addr: d.Addr + uint64(lo), Key: d.Key, Len: uint32(hi - lo)}
	}
	bd := srp.BufDesc{Format: srp.BufIndirect, TotalLen: uint32(len(b)), Partial: table}
	raw := make([]byte, len(table)*srp.MemDescLen)
	if _, err := srp.EncodeDescTable(raw, table); err != nil {
		return srp.BufDesc{}, regs, err
	}
	td, err := in.conn.Register(raw, false)
	if err != nil {
		return srp.BufDesc{}, regs, err
	}
	regs = append(regs, td)
	bd.Table = td
	if in.cfg.Mode == IndirectPartial {
		k := in.cfg.InIU
		if k >= segs {
			k = segs - 1
		}
		bd.Partial = table[:k]
	}
	return bd, regs, nil
}

// TaskMgmt sends a task management function and returns the SRP response
// code. For ABORT TASK that completed, the aborted command's Do returns
// scsitest.ErrAborted unless its response had already arrived.
func (in *Initiator) TaskMgmt(ctx context.Context, lun uint64, fn uint8, taskTag uint64) (uint8, error) {
	tag := in.newTag()
	c := &call{done: make(chan struct{}), tmf: true}
	if err := in.acquire(ctx, 0, tag, c); err != nil {
		return 0, err
	}
	iu := &srp.IU{Op: srp.OpTskMgmt, TskMgmt: srp.TskMgmt{Tag: tag, LUN: lun, Function: fn, TaskTag: taskTag}}
	seq := in.sendSimple(iu)
	select {
	case <-c.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if c.rsp.Tag != tag {
		return 0, in.Err()
	}
	code, ok := c.rsp.RespCode()
	if !ok {
		return 0, fmt.Errorf("initiator: task management response without response data")
	}
	if code == srp.RspCodeComplete {
		in.mu.Lock()
		sentBefore := func(c *call) bool { s := c.seq.Load(); return s != 0 && s < seq }
		switch fn {
		case srp.TMFAbortTask:
			in.abortLocked(func(t uint64, c *call) bool { return t == taskTag && sentBefore(c) })
		case srp.TMFAbortTaskSet, srp.TMFClearTaskSet, srp.TMFLogicalUnitReset:
			// Every command outstanding to the LU is gone. The initiator
			// tracks commands per channel, not per LU, so tests issue
			// these with commands to one LU only.
			in.abortLocked(func(_ uint64, c *call) bool { return !c.tmf && sentBefore(c) })
		}
		in.mu.Unlock()
	}
	return code, nil
}

// abortLocked ends outstanding calls the target aborted: they will get no
// response.
func (in *Initiator) abortLocked(match func(uint64, *call) bool) {
	for tag, c := range in.pending {
		if match(tag, c) {
			delete(in.pending, tag)
			c.aborted = true
			close(c.done)
		}
	}
}

// Logout sends SRP_I_LOGOUT and closes the connection.
func (in *Initiator) Logout() error {
	in.sendSimple(&srp.IU{Op: srp.OpILogout, ILogout: srp.ILogout{Tag: in.newTag()}})
	return in.Close()
}

// Close disconnects without logging out.
func (in *Initiator) Close() error {
	err := in.conn.Close()
	in.fail(errors.New("initiator: closed"))
	return err
}
