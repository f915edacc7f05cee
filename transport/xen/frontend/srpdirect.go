package frontend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/srpring"
)

// SRPDirect is a lean SRP initiator for the SRP ring, for measurements:
// a fixed set of tags, each with guest pages granted per command (page
// descriptors for up to a page, a region descriptor beyond), one
// receiving goroutine, and never more commands in flight than the login
// granted credits. Task management and multichannel are the Go
// initiator's (package srp/initiator); this one only sends commands.
// It implements scsitest.Initiator.
type SRPDirect struct {
	conn  *SRPConn
	g     Guest
	be    xen.DomID
	tags  []dtag
	free  chan int
	done  chan struct{}
	once  sync.Once
	err   error
	errMu sync.Mutex

	sendMu sync.Mutex
	sbuf   []byte

	faultMu sync.Mutex
	faults  []string
}

type dtag struct {
	frame  uint32
	mem    []byte
	refs   []xen.GrantRef
	rframe uint32
	rref   xen.GrantRef
	res    chan drsp
	iu     srp.IU // the command's, encoded by send
	// waiting: a Do waits on res; fail wakes it with a drsp that was
	// not received
	waiting atomic.Bool
}

type drsp struct {
	status   uint8
	flags    uint8
	diResid  uint32
	doResid  uint32
	sense    []byte
	received bool
}

// DialSRPDirect logs in over conn with at most depth commands in flight
// (capped by the credits granted, less one) of at most maxBytes each.
func DialSRPDirect(ctx context.Context, conn *SRPConn, depth, maxBytes int) (*SRPDirect, error) {
	rsp, _, err := conn.Login(ctx, &srp.LoginReq{Tag: 1, MaxITIULen: uint32(conn.MaxIU()),
		BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect, InitiatorPortID: conn.InitiatorPortID(), TargetPortID: conn.TargetPortID()})
	if err != nil {
		return nil, err
	}
	depth = max(1, min(depth, int(rsp.ReqLimDelta)-1))
	pages := max(1, (maxBytes+xen.PageSize-1)/xen.PageSize)
	if pages > srpring.RegionMaxPages {
		return nil, fmt.Errorf("frontend: %d bytes exceed a 4 MiB region", maxBytes)
	}
	s := &SRPDirect{conn: conn, g: conn.d.g, be: conn.d.backendID, free: make(chan int, depth), done: make(chan struct{}),
		sbuf: make([]byte, conn.MaxIU())}
	s.tags = make([]dtag, depth)
	for i := range s.tags {
		t := &s.tags[i]
		f, mem, err := s.g.AllocPages(pages + 1)
		if err != nil {
			return nil, err
		}
		t.rframe, t.frame, t.mem = f, f+1, mem[xen.PageSize:]
		for j := 0; j < pages; j++ {
			r, err := s.g.AllocRef()
			if err != nil {
				return nil, err
			}
			t.refs = append(t.refs, r)
			le32(mem[4*j:], uint32(r))
		}
		if t.rref, err = s.g.AllocRef(); err != nil {
			return nil, err
		}
		s.g.Grant(t.rref, s.be, t.rframe, true)
		t.res = make(chan drsp, 1)
		s.free <- i
	}
	go s.recv()
	return s, nil
}

func (s *SRPDirect) fail(err error) {
	s.once.Do(func() {
		s.errMu.Lock()
		s.err = err
		s.errMu.Unlock()
		close(s.done)
		for i := range s.tags {
			if t := &s.tags[i]; t.waiting.Load() {
				select {
				case t.res <- drsp{}:
				default:
				}
			}
		}
	})
}

// Err is why the initiator stopped.
func (s *SRPDirect) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Faults are responses for no outstanding command, or a second one.
func (s *SRPDirect) Faults() []string {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return append([]string(nil), s.faults...)
}

func (s *SRPDirect) fault(f string, a ...any) {
	s.faultMu.Lock()
	s.faults = append(s.faults, fmt.Sprintf(f, a...))
	s.faultMu.Unlock()
}

func (s *SRPDirect) recv() {
	var iu srp.IU
	for {
		b, err := s.conn.Recv()
		if err != nil {
			s.fail(err)
			return
		}
		if err := iu.DecodeFromTarget(b); err != nil {
			s.fault("undecodable IU: %v", err)
			continue
		}
		switch iu.Op {
		case srp.OpRsp:
			r := &iu.Rsp
			if r.Tag >= uint64(len(s.tags)) {
				s.fault("SRP_RSP for tag %#x, which has no outstanding command", r.Tag)
				continue
			}
			d := newDrsp(r)
			select {
			case s.tags[r.Tag].res <- d:
			default:
				s.fault("a second SRP_RSP for tag %#x", r.Tag)
			}
		case srp.OpCredReq:
			s.send(&srp.IU{Op: srp.OpCredRsp, CredRsp: srp.CredRsp{Tag: iu.CredReq.Tag}})
		case srp.OpAerReq:
			s.send(&srp.IU{Op: srp.OpAerRsp, AerRsp: srp.AerRsp{Tag: iu.AerReq.Tag}})
		case srp.OpTLogout:
			s.fail(fmt.Errorf("frontend: target logged out (reason %d)", iu.TLogout.Reason))
			s.conn.Close()
			return
		}
	}
}

func (s *SRPDirect) send(iu *srp.IU) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	n, err := iu.Encode(s.sbuf)
	if err != nil {
		return err
	}
	return s.conn.Send(s.sbuf[:n])
}

// ErrTooLarge is a transfer larger than the tags were prepared for.
var ErrTooLarge = errors.New("frontend: transfer larger than prepared")

// Do runs one command.
func (s *SRPDirect) Do(ctx context.Context, r *scsitest.Request) (*scsitest.Response, error) {
	var ti int
	select {
	case ti = <-s.free: // a worker per tag: the usual case, no select
	default:
		select {
		case ti = <-s.free:
		case <-s.done:
			return nil, s.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	t := &s.tags[ti]
	pages, err := s.start(t, ti, r)
	if err == ErrTooLarge {
		s.free <- ti
		return nil, err
	}
	var d drsp
	if err == nil {
		// one channel receive: fail wakes a waiting tag itself
		t.waiting.Store(true)
		select {
		case <-s.done:
			err = s.Err()
		default:
			if d = <-t.res; !d.received {
				err = s.Err()
			}
		}
		t.waiting.Store(false)
	}
	s.revoke(t, pages)
	if err != nil {
		// the tag may still get its response: it is not reused
		return nil, err
	}
	resp := d.response(r, t.mem)
	s.free <- ti
	return resp, nil
}

func newDrsp(r *srp.Rsp) drsp {
	d := drsp{status: r.Status, flags: r.Flags, diResid: r.DataInResidual, doResid: r.DataOutResidual, received: true}
	if len(r.Sense) > 0 {
		d.sense = append([]byte(nil), r.Sense...)
	}
	return d
}

// response is the outcome of r as d reported it; data-in is in mem.
func (d *drsp) response(r *scsitest.Request, mem []byte) *scsitest.Response {
	resp := &scsitest.Response{Status: scsi.Status(d.status), Sense: d.sense}
	if r.InLen > 0 {
		got := r.InLen
		if d.flags&srp.RspFlagDiUnder != 0 {
			got -= int(d.diResid)
			resp.InResidual = int(d.diResid)
		}
		if !r.DiscardIn {
			resp.Data = append([]byte(nil), mem[:max(0, got)]...)
		}
	}
	if d.flags&srp.RspFlagDoUnder != 0 {
		resp.OutResidual = int(d.doResid)
	}
	return resp
}

// start grants tag ti's pages for r and sends its SRP_CMD; it returns how
// many pages it granted (revoke them once the response is in).
func (s *SRPDirect) start(t *dtag, ti int, r *scsitest.Request) (int, error) {
	n, write := r.InLen, false
	if len(r.DataOut) > 0 {
		n, write = len(r.DataOut), true
	}
	pages := (n + xen.PageSize - 1) / xen.PageSize
	if pages > len(t.refs) {
		return 0, ErrTooLarge
	}
	for i := 0; i < pages; i++ {
		s.g.Grant(t.refs[i], s.be, t.frame+uint32(i), write)
	}
	cmd := srp.Cmd{Tag: uint64(ti), LUN: r.LUN, TaskAttr: uint8(r.Attr), CDB: r.CDB}
	var bd srp.BufDesc
	switch {
	case pages == 1:
		bd = srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Addr: 0, Key: uint32(t.refs[0]), Len: uint32(n)}}
	case pages > 1:
		bd = srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Addr: srpring.RegionFlag, Key: uint32(t.rref), Len: uint32(n)}}
	}
	if write {
		copy(t.mem, r.DataOut)
		cmd.Out = bd
	} else if n > 0 {
		cmd.In = bd
	}
	t.iu.Op, t.iu.Cmd = srp.OpCmd, cmd
	return pages, s.send(&t.iu)
}

func (s *SRPDirect) revoke(t *dtag, pages int) {
	for i := 0; i < pages; i++ {
		s.g.Revoke(t.refs[i])
	}
}

// Logout sends SRP_I_LOGOUT and closes the ring.
func (s *SRPDirect) Logout() error {
	s.send(&srp.IU{Op: srp.OpILogout, ILogout: srp.ILogout{Tag: 1 << 40}})
	s.fail(errors.New("frontend: logged out"))
	return s.conn.Close()
}

// Close closes the ring without logging out.
func (s *SRPDirect) Close() error {
	s.fail(errors.New("frontend: closed"))
	return s.conn.Close()
}
