package srpring

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/xen"
)

// Channel is the backend end of one SRP ring: an srp.Channel. Requests
// are copied out of their slot once and decoded from the copy; responses
// are encoded straight into their slot; data moves by batched grant copy.
type Channel struct {
	log    *zap.Logger
	dom    xen.DomID
	geo    Geometry
	grants xen.Grants
	region []byte
	ev     xen.EventChannel
	ring   *Ring
	cons   *Consumer // the receiving goroutine's
	prod   *Producer // under sendMu
	login  srp.LoginReq
	pool   *bufpool.Pool
	rbuf   []byte

	sendMu      sync.Mutex
	sendTimeout time.Duration

	reqReady chan struct{}
	space    chan struct{}
	done     chan struct{}
	// onClose runs once, after Close, in its own goroutine.
	onClose func(reason error)

	closeOnce sync.Once
	reasonMu  sync.Mutex
	reason    error
	closed    atomic.Bool
	inflight  atomic.Int64
	torn      chan struct{}

	batches bufpool.Stack[*copyBatch]

	// deferRsp: the receiver holds more requests of the batch it is
	// taking; Send leaves its response for the receiver to publish when
	// the batch ends (flush).
	deferRsp atomic.Bool
}

type copyBatch struct {
	segs []xen.CopySeg
	refs [PageSize]byte // a region page's references
	one  [1]xen.CopySeg
}

// maxSegs bounds the grant copies of one transfer (the session's 16 MiB
// maximum in pages, and one more per descriptor for an unaligned start).
const maxSegs = 4096 + 256

func newChannel(log *zap.Logger, dom xen.DomID, geo Geometry, grants xen.Grants, region []byte, ev xen.EventChannel, sendTimeout time.Duration) (*Channel, error) {
	r, err := NewRing(region, geo)
	if err != nil {
		return nil, err
	}
	c := &Channel{log: log, dom: dom, geo: geo, grants: grants, region: region, ev: ev, ring: r,
		pool: bufpool.New(nil), rbuf: make([]byte, geo.SlotSize()), sendTimeout: sendTimeout,
		reqReady: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{}),
		torn: make(chan struct{})}
	c.cons, c.prod = r.Backend()
	for range 64 {
		c.batches.Push(&copyBatch{segs: make([]xen.CopySeg, 0, 64)})
	}
	go c.events()
	return c, nil
}

// events is the only waiter on the event channel: each notification
// wakes the receiver and a sender waiting for a free response slot.
func (c *Channel) events() {
	for {
		if err := c.ev.Wait(); err != nil {
			return
		}
		select {
		case c.reqReady <- struct{}{}:
		default:
		}
		select {
		case c.space <- struct{}{}:
		default:
		}
	}
}

// fault closes the channel because the frontend broke the protocol.
func (c *Channel) fault(err error) error {
	c.log.Warn("disconnecting a frontend that broke the SRP ring protocol", zap.Uint16("domid", uint16(c.dom)), zap.Error(err))
	c.Close(err)
	return err
}

func (c *Channel) notify() {
	if err := c.ev.Notify(); err != nil && !errors.Is(err, xen.ErrClosed) {
		c.log.Debug("event channel notify failed", zap.Error(err))
	}
}

// next copies the next request slot into c.rbuf, waiting for one. It
// returns srp.ErrClosed once the channel is closed.
//
// Requests the frontend published together are taken as a batch: the
// producer index is read once for all of them, and while more of the
// batch remain, responses are written but not published (Send defers;
// see deferRsp). The last request of a batch, or the receiver running out
// of requests, publishes the responses and the consumed request slots at
// once, with at most one notification each way.
func (c *Channel) next(timeout <-chan time.Time) error {
	for {
		// The ring stays mapped while this receiver is counted in
		// inflight: Close's teardown unmaps it only after.
		if !c.enter() {
			return srp.ErrClosed
		}
		n, err := c.cons.Seen(), error(nil)
		if n == 0 {
			if err = c.flush(); err == nil {
				n, err = c.cons.Pending()
			}
		}
		// Poll briefly before arming the event and sleeping: a frontend
		// that answers within microseconds is picked up without two
		// wake-ups through the event channel.
		for spin := 0; err == nil && n == 0 && spin < xen.PollSpins; spin++ {
			runtime.Gosched()
			n, err = c.cons.Pending()
		}
		if err == nil && n == 0 {
			n, err = c.cons.Arm()
		}
		if err != nil {
			c.leave()
			c.fault(err)
			return srp.ErrClosed
		}
		if n > 0 {
			c.cons.Copy(c.rbuf)
			last := n == 1
			c.deferRsp.Store(!last)
			if last && c.cons.Publish() {
				c.notify()
			}
			c.leave()
			return nil
		}
		c.leave()
		select {
		case <-c.reqReady:
		case <-c.done:
		case <-timeout:
			return errLoginTimeout
		}
	}
}

// flush publishes responses Send deferred and request slots consumed,
// and checks the frontend's response consumer index (Send reads it only
// when the ring looks full; it shares a cache line with the request
// producer index next reads anyway).
func (c *Channel) flush() error {
	c.deferRsp.Store(false)
	if c.cons.Publish() {
		c.notify()
	}
	c.sendMu.Lock()
	kick := c.prod.Publish()
	_, err := c.prod.Refresh()
	c.sendMu.Unlock()
	if kick {
		c.notify()
	}
	return err
}

var errLoginTimeout = errors.New("srpring: no SRP_LOGIN_REQ from the frontend")

// readLogin waits for the SRP_LOGIN_REQ that opens the channel.
func (c *Channel) readLogin(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	if err := c.next(t.C); err != nil {
		return err
	}
	var iu srp.IU
	if err := DecodeRequest(c.rbuf, &iu); err != nil {
		return err
	}
	if iu.Op != srp.OpLoginReq {
		return fmt.Errorf("srpring: the first IU is %v, not SRP_LOGIN_REQ", iu.Op)
	}
	c.login = iu.LoginReq
	return nil
}

// LoginRequest is the SRP_LOGIN_REQ from the first request slot.
func (c *Channel) LoginRequest() *srp.LoginReq { return &c.login }

// Limits: one IU per slot; credits are the request slots.
func (c *Channel) Limits() srp.Limits {
	m := c.geo.MaxIU()
	// SyncData: data-out is a grant copy, not a wait on the guest.
	return srp.Limits{MaxITIU: m, MaxTIIU: m, Credits: c.geo.Slots(), ImmData: m > srp.LinuxImmDataOffset+512, SyncData: true, AnyData: true}
}

// Accept answers the login.
func (c *Channel) Accept(rsp *srp.LoginRsp) error {
	return c.Send(&srp.IU{Op: srp.OpLoginRsp, LoginRsp: *rsp})
}

// Reject answers the login with a reject and closes the channel.
func (c *Channel) Reject(rej *srp.LoginRej) error {
	err := c.Send(&srp.IU{Op: srp.OpLoginRej, LoginRej: *rej})
	c.Close(errors.New("login rejected"))
	return err
}

// Recv decodes the next request IU.
func (c *Channel) Recv(iu *srp.IU) error {
	if err := c.next(nil); err != nil {
		return err
	}
	if err := DecodeRequest(c.rbuf, iu); err != nil {
		var de *srp.DecodeError
		if errors.As(err, &de) {
			// The session logs the initiator out with the reason
			// that names the fault.
			return de
		}
		c.fault(err)
		return srp.ErrClosed
	}
	return nil
}

func (c *Channel) enter() bool {
	c.inflight.Add(1)
	if c.closed.Load() {
		c.inflight.Add(-1)
		return false
	}
	return true
}

func (c *Channel) leave() { c.inflight.Add(-1) }

var errStalled = errors.New("srpring: the frontend stopped consuming responses")

// Send encodes iu into the next response slot, waiting (up to the send
// timeout) for the frontend to free one.
func (c *Channel) Send(iu *srp.IU) error {
	if !c.enter() {
		return srp.ErrClosed
	}
	defer c.leave()
	c.sendMu.Lock()
	if n, err := c.prod.Space(); err != nil || n == 0 {
		if err := c.waitSpace(); err != nil {
			c.sendMu.Unlock()
			return err
		}
	}
	s := c.prod.Slot()
	n, err := iu.Encode(s[SlotHeader:])
	if err != nil {
		c.sendMu.Unlock()
		return err
	}
	PutSlot(s, n)
	c.prod.Advance()
	if c.deferRsp.Load() {
		// the receiver publishes it with the rest of its batch
		c.sendMu.Unlock()
		return nil
	}
	kick := c.prod.Publish()
	c.sendMu.Unlock()
	if kick {
		c.notify()
	}
	return nil
}

// waitSpace waits (up to the send timeout) for the frontend to free a
// response slot. The caller holds sendMu.
func (c *Channel) waitSpace() error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n, err := c.prod.Space()
		if err == nil && n == 0 {
			n, err = c.prod.ArmSpace()
		}
		if err != nil {
			return c.fault(err)
		}
		if n > 0 {
			return nil
		}
		// the frontend can free slots only of responses it sees
		if c.prod.Publish() {
			c.notify()
		}
		if timer == nil {
			timer = time.NewTimer(c.sendTimeout)
		}
		select {
		case <-c.space:
		case <-c.done:
			return srp.ErrClosed
		case <-timer.C:
			return c.fault(fmt.Errorf("%w for %v", errStalled, c.sendTimeout))
		}
	}
}

// Alloc returns a data buffer.
func (c *Channel) Alloc(n int) ([]byte, error) { return c.pool.Get(n), nil }

// Free returns a data buffer.
func (c *Channel) Free(b []byte) { c.pool.Put(b) }

// ReadData copies guest memory into dst (data-out).
func (c *Channel) ReadData(dst []byte, descs []srp.MemDesc) error { return c.copy(dst, descs, false) }

// WriteData copies src into guest memory (data-in).
func (c *Channel) WriteData(src []byte, descs []srp.MemDesc) error { return c.copy(src, descs, true) }

// ErrGrant is matched by a data transfer the guest's grants refused.
var ErrGrant = errors.New("srpring: grant copy refused")

func (c *Channel) copy(buf []byte, descs []srp.MemDesc, toGuest bool) error {
	if !c.enter() {
		return srp.ErrClosed
	}
	b, ok := c.batches.Pop()
	if !ok {
		b = &copyBatch{segs: make([]xen.CopySeg, 0, 64)}
	}
	// no defers: this runs for every command
	err := c.copyBatch(b, buf, descs, toGuest)
	clear(b.segs)
	b.segs = b.segs[:0]
	c.batches.Push(b)
	c.leave()
	return err
}

func (c *Channel) copyBatch(b *copyBatch, buf []byte, descs []srp.MemDesc, toGuest bool) error {
	pos := 0
	for _, d := range descs {
		if pos == len(buf) {
			break
		}
		if err := CheckDesc(d); err != nil {
			return c.fault(err)
		}
		n := min(int(d.Len), len(buf)-pos)
		if n == 0 {
			continue
		}
		if len(b.segs) >= maxSegs {
			return c.fault(fmt.Errorf("%w: more than %d descriptors in one transfer", ErrDescriptor, maxSegs))
		}
		if d.Addr&RegionFlag == 0 {
			b.segs = append(b.segs, xen.CopySeg{Dom: c.dom, Ref: xen.GrantRef(d.Key), Offset: uint16(d.Addr),
				Local: buf[pos : pos+n], ToGuest: toGuest})
			pos += n
			continue
		}
		if err := c.regionCopies(b, d, buf[pos:pos+n], toGuest); err != nil {
			return err
		}
		pos += n
	}
	if pos < len(buf) {
		return c.fault(fmt.Errorf("%w: descriptors cover %d of %d bytes", ErrDescriptor, pos, len(buf)))
	}
	if err := c.grants.Copy(b.segs); err != nil {
		return c.fault(fmt.Errorf("%w: %v", ErrGrant, err))
	}
	for i := range b.segs {
		if st := b.segs[i].Status; st != xen.GrantOK {
			return c.fault(fmt.Errorf("%w: grant %d: %v", ErrGrant, b.segs[i].Ref, st))
		}
	}
	return nil
}

// Close closes the channel: receiving stops at once; the ring is unmapped
// once no Send or data transfer is running.
func (c *Channel) Close(reason error) {
	c.closeOnce.Do(func() {
		c.reasonMu.Lock()
		c.reason = reason
		c.reasonMu.Unlock()
		c.closed.Store(true)
		close(c.done)
		c.ev.Close()
		go c.teardown()
	})
}

func (c *Channel) teardown() {
	for c.inflight.Load() != 0 {
		time.Sleep(100 * time.Microsecond)
	}
	c.grants.Unmap(c.region)
	c.grants.Close()
	close(c.torn)
	if r := c.CloseReason(); r != nil {
		c.log.Info("SRP ring detached", zap.NamedError("reason", r))
	}
	if c.onClose != nil {
		c.onClose(c.CloseReason())
	}
}

// Released is called by the session layer once it is done with the
// channel (srp.Releaser); the teardown waits for the same condition.
func (c *Channel) Released() {}

// CloseReason returns why the channel closed (nil while open).
func (c *Channel) CloseReason() error {
	c.reasonMu.Lock()
	defer c.reasonMu.Unlock()
	return c.reason
}

// Done is closed when the ring is unmapped after Close.
func (c *Channel) Done() <-chan struct{} { return c.torn }

// regionCopies appends the copies of a region descriptor's range: the range's
// grant references are fetched from the region page first (one grant
// copy of just those references).
func (c *Channel) regionCopies(b *copyBatch, d srp.MemDesc, local []byte, toGuest bool) error {
	off := int(d.Addr &^ RegionFlag)
	first, last := off/PageSize, (off+len(local)-1)/PageSize
	refs := b.refs[4*first : 4*(last+1)]
	b.one[0] = xen.CopySeg{Dom: c.dom, Ref: xen.GrantRef(d.Key), Offset: uint16(4 * first), Local: refs}
	if err := c.grants.Copy(b.one[:]); err != nil {
		return c.fault(fmt.Errorf("%w: region page %d: %v", ErrGrant, d.Key, err))
	}
	if st := b.one[0].Status; st != xen.GrantOK {
		return c.fault(fmt.Errorf("%w: region page %d: %v", ErrGrant, d.Key, st))
	}
	if len(b.segs)+last-first+1 > maxSegs {
		return c.fault(fmt.Errorf("%w: more than %d pages in one transfer", ErrDescriptor, maxSegs))
	}
	pos := 0
	for p := first; p <= last; p++ {
		in := 0
		if p == first {
			in = off % PageSize
		}
		n := min(PageSize-in, len(local)-pos)
		b.segs = append(b.segs, xen.CopySeg{Dom: c.dom, Ref: xen.GrantRef(le.Uint32(b.refs[4*p:])), Offset: uint16(in),
			Local: local[pos : pos+n], ToGuest: toGuest})
		pos += n
	}
	return nil
}
