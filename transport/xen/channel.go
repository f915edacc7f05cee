package xen

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
)

// ring is one attached vscsiif ring: the srp.Channel of one guest vhost.
//
// Threads: the session's receive goroutine runs Recv (the only consumer
// of requests); slot goroutines run Send, ReadData and WriteData; a
// kicker goroutine turns event channel wakeups into a Go channel so that
// Close can interrupt Recv; after the session released the channel an
// orphan loop answers whatever the guest still sends until the frontend
// closes and the backend detaches the ring.
type ring struct {
	l      *Listener
	dev    *device
	log    *zap.Logger
	dom    DomID
	grants Grants
	evt    EventChannel
	page   []byte
	br     *vscsiif.BackRing
	login  srp.LoginReq

	maxSegs   int
	mapThresh int
	pool      *bufpool.Pool

	kick chan struct{}
	done chan struct{} // closed by Close
	once sync.Once

	// receive side (Recv's goroutine, then the orphan loop)
	reqBuf [vscsiif.RequestSize]byte
	req    vscsiif.Request
	segs   []vscsiif.Segment
	descs  []srp.MemDesc
	indRaw []byte
	cdb    [16]byte

	// response side
	rmu         sync.Mutex
	outstanding [1 << 16 / 64]uint64 // rqids consumed and not answered
	nOut        int
	dead        bool // ring unmapped: nothing may touch the page
	rsp         vscsiif.Response
	// deferRsp: the receiver holds more requests of the batch it is
	// taking; answer leaves the push to it (next).
	deferRsp bool

	copies sync.Pool // *[]CopySeg

	released chan struct{} // closed once the session is done with it
	relOnce  sync.Once
	detach   chan struct{} // closed by the backend's Disconnect action
	detOnce  sync.Once
	gone     chan struct{} // closed when torn down
	faulted  atomic.Bool
}

var (
	_ srp.Channel  = (*ring)(nil)
	_ srp.Releaser = (*ring)(nil)
	_ srp.Dropper  = (*ring)(nil)
)

// Dropped answers a command the session ended without a response (a
// LOGICAL UNIT RESET or ABORT TASK aborted it): the guest frees the
// request's slot only on an answer. DID_RESET: Linux retries the command
// (one a reset caught in flight), or ignores the answer of one its error
// handler already completed (an aborted timeout).
func (r *ring) Dropped(tag uint64) {
	r.answer(uint16(tag), vscsiif.Rslt(vscsiif.HostReset, 0), nil, 0)
}

func (r *ring) LoginRequest() *srp.LoginReq { return &r.login }

// Limits: one request IU per ring slot. The sense a vscsiif response can
// carry is 96 bytes, so the largest target-to-initiator IU is an SRP_RSP
// with 96 bytes of sense.
func (r *ring) Limits() srp.Limits {
	// SyncData: data-out is a grant copy (one ioctl), not a wait on the
	// guest.
	return srp.Limits{MaxITIU: 256, MaxTIIU: srp.RspMinLen + vscsiif.SenseBufferSize, Credits: vscsiif.RingSize, SyncData: true, AnyData: true}
}

func (r *ring) Accept(*srp.LoginRsp) error {
	if r.closed() {
		return srp.ErrClosed
	}
	return nil
}

func (r *ring) Reject(rej *srp.LoginRej) error {
	r.log.Warn("the session layer refused the ring's login; disconnecting the device", zap.Uint32("reason", rej.Reason))
	r.Close(fmt.Errorf("login rejected (reason %#x)", rej.Reason))
	// A refused login never reaches Serve's cleanup.
	r.Released()
	return nil
}

func (r *ring) closed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Close ends the session side of the ring; the device goes Closing
// unless it already is, so that the guest removes its disks cleanly.
func (r *ring) Close(reason error) {
	r.once.Do(func() {
		close(r.done)
		if reason != nil && !errors.Is(reason, srp.ErrClosed) {
			r.log.Info("ring channel closed", zap.Error(reason))
		}
		r.l.post(func() { r.l.ringClosed(r.dev, r) })
	})
}

// Released: the session will not touch the ring again.
func (r *ring) Released() {
	r.relOnce.Do(func() {
		close(r.released)
		go r.orphan()
	})
}

// fault disconnects a misbehaving frontend.
func (r *ring) fault(err error) {
	if r.faulted.Swap(true) {
		return
	}
	r.log.Warn("bad frontend: disconnecting it", zap.Error(err))
	r.l.post(func() { r.l.ringFault(r.dev, r, err) })
	r.Close(err)
}

// kicker forwards event channel notifications until the channel closes.
func (r *ring) kicker() {
	for r.evt.Wait() == nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// next copies the next request out of the ring, waiting for one while
// stop is open. It returns false when stop closed or the ring faulted.
//
// Requests are taken in batches, one read of req_prod for all the
// requests it shows; while more of the batch remain, answer writes
// responses without pushing them (deferRsp), and the last request of the
// batch, or running out of requests, pushes them all with at most one
// notification. Before sleeping on the event channel the receiver looks
// at the ring a few more times (PollSpins), so a frontend that sends its
// next request within microseconds costs no wake-ups.
func (r *ring) next(stop <-chan struct{}) bool {
	for spins := 0; ; spins++ {
		select {
		case <-stop:
			return false
		default:
		}
		// The ring's private indexes are shared with answer (the
		// overflow check reads rsp_prod_pvt): hold rmu while using them.
		r.rmu.Lock()
		if r.dead {
			r.rmu.Unlock()
			return false
		}
		n, err := r.br.Seen(), error(nil)
		notify := false
		if n == 0 {
			r.deferRsp = false
			notify = r.br.Push()
			n, err = r.br.Pending()
		}
		more := n > 0
		if err == nil && !more && spins >= PollSpins {
			more, err = r.br.FinalCheck()
			n = r.br.Seen()
		}
		if err == nil && more {
			r.br.CopyRequest(r.reqBuf[:])
			r.deferRsp = n > 1
		}
		r.rmu.Unlock()
		if notify {
			r.evt.Notify()
		}
		if err == nil && !more {
			if spins < PollSpins {
				runtime.Gosched()
				continue
			}
			spins = 0
			select {
			case <-r.kick:
			case <-stop:
				return false
			}
			continue
		}
		if err != nil {
			r.fault(err)
			return false
		}
		if err := r.req.Decode(r.reqBuf[:], r.maxSegs); err != nil {
			r.fault(err)
			return false
		}
		r.rmu.Lock()
		id := r.req.Rqid
		if r.outstanding[id/64]&(1<<(id%64)) == 0 {
			r.outstanding[id/64] |= 1 << (id % 64)
			r.nOut++
		}
		r.rmu.Unlock()
		return true
	}
}

// PollSpins is how many times a ring's receiver (vscsiif here, the SRP
// ring in package srpring) yields and looks at the ring again before it
// arms the event and sleeps: polling answers a busy frontend without
// wake-ups, at the price of the CPU time it burns while the frontend is
// slower. SRPTGT_XEN_POLL_SPINS in the environment sets it (0: sleep at
// once).
var PollSpins = pollSpinsFromEnv()

func pollSpinsFromEnv() int {
	if v, err := strconv.Atoi(os.Getenv("SRPTGT_XEN_POLL_SPINS")); err == nil && v >= 0 {
		return v
	}
	return 64
}

// Recv builds the next IU from the ring: SRP_CMD for a CDB request,
// SRP_TSK_MGMT for ABORT and RESET. Requests that cannot reach the
// session (an address no LUN can have, a bidirectional transfer) are
// answered here.
func (r *ring) Recv(iu *srp.IU) error {
	for {
		if !r.next(r.done) {
			return srp.ErrClosed
		}
		q := &r.req
		lun, ok := lunNumber(uint32(q.Channel), uint32(q.ID), uint32(q.LUN))
		switch q.Act {
		case vscsiif.ActSCSIAbort, vscsiif.ActSCSIReset:
			iu.Op = srp.OpTskMgmt
			iu.TskMgmt = srp.TskMgmt{Tag: uint64(q.Rqid), LUN: EncodeLUN(lun), Function: srp.TMFLogicalUnitReset}
			if q.Act == vscsiif.ActSCSIAbort {
				iu.TskMgmt.Function = srp.TMFAbortTask
				iu.TskMgmt.TaskTag = uint64(q.RefRqid)
			}
			if !ok {
				r.answer(q.Rqid, vscsiif.RsltResetFailed, nil, 0)
				continue
			}
			return nil
		}
		if !ok {
			r.answer(q.Rqid, vscsiif.Rslt(vscsiif.HostBadTarget, 0), nil, 0)
			continue
		}
		if q.Dir == vscsiif.DirBidirectional {
			r.answer(q.Rqid, vscsiif.Rslt(vscsiif.HostError, 0), nil, 0)
			continue
		}
		descs, total, err := r.resolve()
		if err != nil {
			r.fault(err)
			return srp.ErrClosed
		}
		clear(r.cdb[:])
		copy(r.cdb[:], q.Command())
		descBuf := iu.Cmd.DescBuf
		iu.Op = srp.OpCmd
		iu.Cmd = srp.Cmd{Tag: uint64(q.Rqid), LUN: EncodeLUN(lun), TaskAttr: srp.TaskSimple, CDB: r.cdb[:], DescBuf: descBuf}
		var bd srp.BufDesc
		switch {
		case len(descs) == 0:
		case len(descs) == 1:
			bd = srp.BufDesc{Format: srp.BufDirect, Direct: descs[0]}
		default:
			bd = srp.BufDesc{Format: srp.BufIndirect, Count: uint8(min(len(descs), 255)),
				Table: srp.MemDesc{Len: uint32(len(descs) * srp.MemDescLen)}, TotalLen: total, Partial: descs}
		}
		switch q.Dir {
		case vscsiif.DirToDevice:
			iu.Cmd.Out = bd
		case vscsiif.DirFromDevice:
			iu.Cmd.In = bd
		}
		return nil
	}
}

// resolve turns the request's segments into memory descriptors
// (Addr = offset in the page, Key = grant reference, Len = length),
// fetching indirect segment lists with one grant copy.
func (r *ring) resolve() ([]srp.MemDesc, uint32, error) {
	q := &r.req
	segs := q.Seg[:q.NSeg]
	if q.Indirect {
		n := q.IndirectSegs * vscsiif.SegmentSize
		if cap(r.indRaw) < n {
			r.indRaw = make([]byte, n)
		}
		raw := r.indRaw[:n]
		cs := r.copyBuf()
		pos := 0
		for _, s := range segs {
			*cs = append(*cs, CopySeg{Dom: r.dom, Ref: GrantRef(s.Gref), Offset: s.Offset, Local: raw[pos : pos+int(s.Length)]})
			pos += int(s.Length)
		}
		err := r.copy(*cs)
		r.putCopyBuf(cs)
		if err != nil {
			return nil, 0, fmt.Errorf("fetching %d indirect segment pages: %w", len(segs), err)
		}
		if r.segs, err = vscsiif.DecodeIndirect(raw, r.segs); err != nil {
			return nil, 0, err
		}
		segs = r.segs
	}
	r.descs = r.descs[:0]
	var total uint32
	for _, s := range segs {
		if s.Length == 0 {
			continue
		}
		r.descs = append(r.descs, srp.MemDesc{Addr: uint64(s.Offset), Key: s.Gref, Len: uint32(s.Length)})
		total += uint32(s.Length)
	}
	return r.descs, total, nil
}

// Send turns an SRP_RSP into a vscsiif response. SRP_CRED_REQ and
// SRP_AER_REQ have no vscsiif form; SRP_T_LOGOUT disconnects the ring.
func (r *ring) Send(iu *srp.IU) error {
	switch iu.Op {
	case srp.OpRsp:
		x := &iu.Rsp
		if len(x.RespData) >= srp.RespDataLen {
			// a task management response
			rslt := int32(vscsiif.RsltResetFailed)
			if c := x.RespData[3]; c == srp.RspCodeComplete || c == srp.RspCodeSucceeded {
				rslt = vscsiif.RsltResetSuccess
			}
			return r.answer(uint16(x.Tag), rslt, nil, 0)
		}
		var resid uint32
		switch {
		case x.Flags&srp.RspFlagDiUnder != 0:
			resid = x.DataInResidual
		case x.Flags&srp.RspFlagDoUnder != 0:
			resid = x.DataOutResidual
		}
		return r.answer(uint16(x.Tag), vscsiif.Rslt(vscsiif.HostOK, x.Status), x.Sense, resid)
	case srp.OpCredReq, srp.OpAerReq:
		return nil
	case srp.OpTLogout:
		r.Close(fmt.Errorf("session logged the ring out (reason %d)", iu.TLogout.Reason))
		return nil
	}
	return fmt.Errorf("xen: %v cannot be sent on a vscsiif ring", iu.Op)
}

// answer writes one response and pushes it, notifying the frontend only
// if it asked (rsp_event); in the middle of a batch of requests the
// receiver pushes it later (next).
func (r *ring) answer(rqid uint16, rslt int32, sense []byte, resid uint32) error {
	r.rmu.Lock()
	if r.dead {
		r.rmu.Unlock()
		return srp.ErrClosed
	}
	if r.outstanding[rqid/64]&(1<<(rqid%64)) == 0 {
		// Never more responses than requests: that would overwrite
		// requests the frontend has not produced yet.
		r.rmu.Unlock()
		return fmt.Errorf("xen: response to rqid %d with no request outstanding", rqid)
	}
	r.outstanding[rqid/64] &^= 1 << (rqid % 64)
	r.nOut--
	r.rsp = vscsiif.Response{Rqid: rqid, Sense: sense, Rslt: rslt, Residual: resid}
	r.br.PutResponse(&r.rsp)
	if r.deferRsp {
		// the receiver pushes it with the rest of its batch
		r.rmu.Unlock()
		return nil
	}
	notify := r.br.Push()
	r.rmu.Unlock()
	if notify {
		return r.evt.Notify()
	}
	return nil
}

func (r *ring) Alloc(n int) ([]byte, error) { return r.pool.Get(n), nil }
func (r *ring) Free(b []byte)               { r.pool.Put(b) }

// ErrGrant is a grant copy or map that failed (a bad or revoked grant
// reference, a read-only grant written).
var ErrGrant = errors.New("xen: grant operation failed")

// ReadData fills dst from the guest's segments (data-out, a SCSI write).
func (r *ring) ReadData(dst []byte, descs []srp.MemDesc) error {
	return r.move(dst, descs, false)
}

// WriteData copies src into the guest's segments (data-in, a SCSI read).
func (r *ring) WriteData(src []byte, descs []srp.MemDesc) error {
	return r.move(src, descs, true)
}

func (r *ring) move(buf []byte, descs []srp.MemDesc, toGuest bool) error {
	if r.isDead() {
		return srp.ErrClosed
	}
	if r.mapThresh > 0 && len(buf) >= r.mapThresh {
		return r.moveMapped(buf, descs, toGuest)
	}
	cs := r.copyBuf()
	defer r.putCopyBuf(cs)
	pos := 0
	for _, d := range descs {
		if pos == len(buf) {
			break
		}
		if d.Addr+uint64(d.Len) > PageSize {
			return fmt.Errorf("%w: segment offset %d length %d crosses a page", ErrGrant, d.Addr, d.Len)
		}
		n := min(int(d.Len), len(buf)-pos)
		*cs = append(*cs, CopySeg{Dom: r.dom, Ref: GrantRef(d.Key), Offset: uint16(d.Addr), Local: buf[pos : pos+n], ToGuest: toGuest})
		pos += n
	}
	if pos < len(buf) {
		return fmt.Errorf("%w: segments cover %d of %d bytes", ErrGrant, pos, len(buf))
	}
	return r.copy(*cs)
}

func (r *ring) copy(cs []CopySeg) error {
	if len(cs) == 0 {
		return nil
	}
	if err := r.grants.Copy(cs); err != nil {
		return fmt.Errorf("%w: %v", ErrGrant, err)
	}
	// GNTST_eagain (a page being paged in) is transient: copy those
	// segments again a few times before blaming the frontend.
	for try := 0; try < 5; try++ {
		again := cs[:0:0]
		for i := range cs {
			if cs[i].Status == GrantEAgain {
				again = append(again, cs[i])
			}
		}
		if len(again) == 0 {
			break
		}
		time.Sleep(time.Duration(1<<try) * time.Millisecond)
		if err := r.grants.Copy(again); err != nil {
			return fmt.Errorf("%w: %v", ErrGrant, err)
		}
		j := 0
		for i := range cs {
			if cs[i].Status == GrantEAgain {
				cs[i].Status = again[j].Status
				j++
			}
		}
	}
	for i := range cs {
		if cs[i].Status != GrantOK {
			err := fmt.Errorf("%w: grant %d of domain %d: %v", ErrGrant, cs[i].Ref, r.dom, cs[i].Status)
			// A reference the guest did not grant to us, or granted
			// read-only for data-in, is the frontend's fault (Xen
			// issue 6: disconnect it with the reason).
			r.fault(err)
			return err
		}
	}
	return nil
}

// moveMapped maps every granted page of the transfer at once, copies
// through the mapping and unmaps it (the grant map path, chosen for
// transfers of at least Config.MapThreshold bytes).
func (r *ring) moveMapped(buf []byte, descs []srp.MemDesc, toGuest bool) error {
	refs := make([]GrantRef, 0, len(descs))
	for _, d := range descs {
		if d.Addr+uint64(d.Len) > PageSize {
			return fmt.Errorf("%w: segment offset %d length %d crosses a page", ErrGrant, d.Addr, d.Len)
		}
		refs = append(refs, GrantRef(d.Key))
	}
	mem, err := r.grants.Map(r.dom, refs, toGuest)
	if err != nil {
		err = fmt.Errorf("%w: mapping %d grants: %v", ErrGrant, len(refs), err)
		r.fault(err)
		return err
	}
	pos := 0
	for i, d := range descs {
		if pos == len(buf) {
			break
		}
		page := mem[i*PageSize+int(d.Addr) : i*PageSize+int(d.Addr)+int(d.Len)]
		if toGuest {
			pos += copy(page, buf[pos:])
		} else {
			pos += copy(buf[pos:], page)
		}
	}
	if err := r.grants.Unmap(mem); err != nil {
		return fmt.Errorf("%w: unmapping: %v", ErrGrant, err)
	}
	if pos < len(buf) {
		return fmt.Errorf("%w: segments cover %d of %d bytes", ErrGrant, pos, len(buf))
	}
	return nil
}

func (r *ring) copyBuf() *[]CopySeg {
	if p, ok := r.copies.Get().(*[]CopySeg); ok {
		*p = (*p)[:0]
		return p
	}
	s := make([]CopySeg, 0, max(r.maxSegs, vscsiif.SGTableSize))
	return &s
}

func (r *ring) putCopyBuf(p *[]CopySeg) {
	clear(*p) // drop the buffer references
	r.copies.Put(p)
}

func (r *ring) isDead() bool {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.dead
}

// orphan runs once the session let go of the ring: requests it dropped,
// and any the guest still sends, are failed with DID_NO_CONNECT (aborts
// and resets succeed) until the backend detaches the ring.
func (r *ring) orphan() {
	defer r.teardown()
	r.rmu.Lock()
	var left []uint16
	for i, w := range r.outstanding {
		for w != 0 {
			b := uint16(0)
			for w&(1<<b) == 0 {
				b++
			}
			w &^= 1 << b
			left = append(left, uint16(i*64)+b)
		}
	}
	r.rmu.Unlock()
	for _, id := range left {
		r.answer(id, vscsiif.Rslt(vscsiif.HostNoConnect, 0), nil, 0)
	}
	if len(left) > 0 {
		r.log.Info("failed the requests the session left unanswered", zap.Int("requests", len(left)))
	}
	if r.faulted.Load() {
		<-r.detach
		return
	}
	for r.next(r.detach) {
		rslt := vscsiif.Rslt(vscsiif.HostNoConnect, 0)
		if r.req.Act != vscsiif.ActSCSICDB {
			rslt = vscsiif.RsltResetSuccess
		}
		r.answer(r.req.Rqid, rslt, nil, 0)
	}
}

// disconnect is the backend's Disconnect action: the session is closed,
// and once it released the ring, the grants are unmapped.
func (r *ring) disconnect() {
	r.Close(errors.New("device disconnected"))
	r.detOnce.Do(func() { close(r.detach) })
}

func (r *ring) teardown() {
	<-r.detach
	r.rmu.Lock()
	r.dead = true
	r.rmu.Unlock()
	r.evt.Close()
	if err := r.grants.Unmap(r.page); err != nil {
		r.log.Warn("unmapping the ring page", zap.Error(err))
	}
	r.grants.Close()
	close(r.gone)
	r.l.post(func() { r.l.ringGone(r.dev, r) })
	// not in ringGone: the backend's loop may already have ended (its
	// XenStore connection lost), and Shutdown waits for every ring
	r.l.rings.Done()
}
