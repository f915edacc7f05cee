package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/srp"
)

// MemConfig configures an in-memory transport.
type MemConfig struct {
	// MaxITIU is the largest IU a channel receives (default 8260 + 4096).
	MaxITIU int
	// MaxTIIU is the largest IU a channel sends (default 256).
	MaxTIIU int
	// Credits is how many requests a channel holds (default 128).
	Credits int
	// NoImmData makes channels refuse SRP-2 immediate data.
	NoImmData bool
	// Tap, if set, sees every IU in wire order before it is delivered:
	// fromInitiator tells the direction. It runs on the sending goroutine
	// under the pipe's lock, so IUs of one pipe reach it one at a time.
	Tap func(fromInitiator bool, iu []byte)
}

func (c *MemConfig) defaults() {
	if c.MaxITIU == 0 {
		c.MaxITIU = 8260 + 4096
	}
	if c.MaxTIIU == 0 {
		c.MaxTIIU = 256
	}
	if c.Credits == 0 {
		c.Credits = 128
	}
}

// MemListener is an in-memory transport: initiators Dial it, the session
// layer Accepts its channels. IUs cross it as encoded bytes, so the codec
// runs as on a real wire; initiator memory is registered regions that
// descriptors name by key and address, as on RDMA.
type MemListener struct {
	cfg     MemConfig
	pending chan *MemChannel
	closed  chan struct{}
	once    sync.Once
}

// NewMemListener returns a listener.
func NewMemListener(cfg MemConfig) *MemListener {
	cfg.defaults()
	return &MemListener{cfg: cfg, pending: make(chan *MemChannel), closed: make(chan struct{})}
}

// Accept returns the next channel an initiator opened.
func (l *MemListener) Accept(ctx context.Context) (Channel, error) {
	select {
	case ch := <-l.pending:
		return ch, nil
	case <-l.closed:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the listener.
func (l *MemListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Dial returns the initiator end of a new channel; Login opens it.
func (l *MemListener) Dial() *MemConn {
	return &MemConn{l: l}
}

type memMsg struct {
	b []byte
	n int
}

// memQueue carries encoded IUs one way, in preallocated buffers.
type memQueue struct {
	q    chan *memMsg
	free chan *memMsg
}

func newMemQueue(depth, size int) memQueue {
	mq := memQueue{q: make(chan *memMsg, depth), free: make(chan *memMsg, depth)}
	for i := 0; i < depth; i++ {
		mq.free <- &memMsg{b: make([]byte, size)}
	}
	return mq
}

type region struct {
	addr     uint64
	b        []byte
	writable bool
}

type loginResult struct {
	rsp *srp.LoginRsp
	rej *srp.LoginRej
}

// MemChannel is the target end of an in-memory channel.
type MemChannel struct {
	cfg   MemConfig
	login srp.LoginReq
	// result hands the login answer to the dialer.
	result chan loginResult

	toTarget, toInit memQueue
	tapMu            sync.Mutex
	cur              *memMsg

	regMu   sync.RWMutex
	regions map[uint32]region
	nextKey uint32

	pool      *bufpool.Pool
	done      chan struct{}
	closeOnce sync.Once
	reasonMu  sync.Mutex
	reason    error
}

// LoginRequest returns the SRP_LOGIN_REQ the initiator sent.
func (ch *MemChannel) LoginRequest() *srp.LoginReq { return &ch.login }

// Limits reports the channel's configuration.
func (ch *MemChannel) Limits() srp.Limits {
	return srp.Limits{MaxITIU: ch.cfg.MaxITIU, MaxTIIU: ch.cfg.MaxTIIU, Credits: ch.cfg.Credits,
		ImmData: !ch.cfg.NoImmData, SyncData: true, AnyData: true}
}

// Accept answers the login.
func (ch *MemChannel) Accept(rsp *srp.LoginRsp) error {
	r := *rsp
	select {
	case ch.result <- loginResult{rsp: &r}:
		return nil
	case <-ch.done:
		return srp.ErrClosed
	}
}

// Reject refuses the login and closes the channel.
func (ch *MemChannel) Reject(rej *srp.LoginRej) error {
	r := *rej
	select {
	case ch.result <- loginResult{rej: &r}:
	case <-ch.done:
	}
	ch.Close(errors.New("login rejected"))
	return nil
}

// Recv decodes the next IU from the initiator.
func (ch *MemChannel) Recv(iu *srp.IU) error {
	if ch.cur != nil {
		ch.toTarget.free <- ch.cur
		ch.cur = nil
	}
	select {
	case m := <-ch.toTarget.q:
		ch.cur = m
		return iu.DecodeFromInitiator(m.b[:m.n])
	case <-ch.done:
		return srp.ErrClosed
	}
}

// Send encodes iu for the initiator.
func (ch *MemChannel) Send(iu *srp.IU) error {
	n := iu.Len()
	if n > ch.cfg.MaxTIIU {
		return fmt.Errorf("transport: %v of %d bytes exceeds the channel's %d", iu.Op, n, ch.cfg.MaxTIIU)
	}
	var m *memMsg
	select {
	case m = <-ch.toInit.free:
	case <-ch.done:
		return srp.ErrClosed
	}
	var err error
	if m.n, err = iu.Encode(m.b); err != nil {
		ch.toInit.free <- m
		return err
	}
	return ch.push(&ch.toInit, m, false)
}

func (ch *MemChannel) push(q *memQueue, m *memMsg, fromInitiator bool) error {
	ch.tapMu.Lock()
	defer ch.tapMu.Unlock()
	if ch.cfg.Tap != nil {
		ch.cfg.Tap(fromInitiator, m.b[:m.n])
	}
	select {
	case q.q <- m:
		return nil
	case <-ch.done:
		return srp.ErrClosed
	}
}

// Alloc returns a data buffer.
func (ch *MemChannel) Alloc(n int) ([]byte, error) { return ch.pool.Get(n), nil }

// Free returns a data buffer.
func (ch *MemChannel) Free(b []byte) { ch.pool.Put(b) }

// ErrBadDescriptor reports a memory descriptor that names no registered
// region, lies outside it, or asks to write a read-only one.
var ErrBadDescriptor = errors.New("transport: memory descriptor outside registered initiator memory")

func (ch *MemChannel) span(d srp.MemDesc, write bool) ([]byte, error) {
	ch.regMu.RLock()
	r, ok := ch.regions[d.Key]
	ch.regMu.RUnlock()
	if !ok || d.Addr < r.addr || d.Addr-r.addr > uint64(len(r.b)) || uint64(d.Len) > uint64(len(r.b))-(d.Addr-r.addr) {
		return nil, fmt.Errorf("%w: key %#x addr %#x len %d", ErrBadDescriptor, d.Key, d.Addr, d.Len)
	}
	if write && !r.writable {
		return nil, fmt.Errorf("%w: key %#x is read-only", ErrBadDescriptor, d.Key)
	}
	off := d.Addr - r.addr
	return r.b[off : off+uint64(d.Len)], nil
}

// ReadData copies initiator memory into dst.
func (ch *MemChannel) ReadData(dst []byte, descs []srp.MemDesc) error {
	pos := 0
	for _, d := range descs {
		if pos == len(dst) {
			break
		}
		src, err := ch.span(d, false)
		if err != nil {
			return err
		}
		pos += copy(dst[pos:], src)
	}
	if pos < len(dst) {
		return fmt.Errorf("%w: descriptors cover %d of %d bytes", ErrBadDescriptor, pos, len(dst))
	}
	return ch.alive()
}

// WriteData copies src into initiator memory.
func (ch *MemChannel) WriteData(src []byte, descs []srp.MemDesc) error {
	pos := 0
	for _, d := range descs {
		if pos == len(src) {
			break
		}
		dst, err := ch.span(d, true)
		if err != nil {
			return err
		}
		pos += copy(dst, src[pos:])
	}
	if pos < len(src) {
		return fmt.Errorf("%w: descriptors cover %d of %d bytes", ErrBadDescriptor, pos, len(src))
	}
	return ch.alive()
}

func (ch *MemChannel) alive() error {
	select {
	case <-ch.done:
		return srp.ErrClosed
	default:
		return nil
	}
}

// Close closes the channel from the target side.
func (ch *MemChannel) Close(reason error) {
	ch.closeOnce.Do(func() {
		ch.reasonMu.Lock()
		ch.reason = reason
		ch.reasonMu.Unlock()
		close(ch.done)
	})
}

// CloseReason returns why the channel closed (nil while open).
func (ch *MemChannel) CloseReason() error {
	ch.reasonMu.Lock()
	defer ch.reasonMu.Unlock()
	return ch.reason
}

// MemConn is the initiator end of an in-memory channel.
type MemConn struct {
	l   *MemListener
	ch  *MemChannel
	cur *memMsg
}

// ErrRejected is returned by Login when the target refused the login; the
// reject is returned alongside.
var ErrRejected = errors.New("transport: login rejected")

// Login opens the channel with req and waits for the target's answer.
func (c *MemConn) Login(ctx context.Context, req *srp.LoginReq) (*srp.LoginRsp, *srp.LoginRej, error) {
	if c.ch != nil {
		return nil, nil, errors.New("transport: already logged in")
	}
	cfg := c.l.cfg
	depth := 4*cfg.Credits + 8
	ch := &MemChannel{
		cfg:      cfg,
		login:    *req,
		result:   make(chan loginResult, 1),
		toTarget: newMemQueue(depth, cfg.MaxITIU),
		toInit:   newMemQueue(depth, cfg.MaxTIIU),
		regions:  make(map[uint32]region),
		nextKey:  0x100,
		pool:     bufpool.New(nil),
		done:     make(chan struct{}),
	}
	c.ch = ch
	select {
	case c.l.pending <- ch:
	case <-c.l.closed:
		return nil, nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	select {
	case r := <-ch.result:
		if r.rej != nil {
			return nil, r.rej, ErrRejected
		}
		return r.rsp, nil, nil
	case <-ch.done:
		// A reject closes the channel right after answering.
		select {
		case r := <-ch.result:
			if r.rej != nil {
				return nil, r.rej, ErrRejected
			}
		default:
		}
		return nil, nil, srp.ErrClosed
	case <-ctx.Done():
		ch.Close(ctx.Err())
		return nil, nil, ctx.Err()
	}
}

// Send sends one encoded IU to the target. b is copied.
func (c *MemConn) Send(b []byte) error {
	if len(b) > c.ch.cfg.MaxITIU {
		return fmt.Errorf("transport: IU of %d bytes exceeds the channel's %d", len(b), c.ch.cfg.MaxITIU)
	}
	var m *memMsg
	select {
	case m = <-c.ch.toTarget.free:
	case <-c.ch.done:
		return srp.ErrClosed
	}
	m.n = copy(m.b, b)
	return c.ch.push(&c.ch.toTarget, m, true)
}

// Recv returns the next IU from the target; it is valid until the next
// Recv.
func (c *MemConn) Recv() ([]byte, error) {
	if c.cur != nil {
		c.ch.toInit.free <- c.cur
		c.cur = nil
	}
	select {
	case m := <-c.ch.toInit.q:
		c.cur = m
		return m.b[:m.n], nil
	case <-c.ch.done:
		return nil, srp.ErrClosed
	}
}

// Register exposes b to the target and returns a descriptor for all of it.
func (c *MemConn) Register(b []byte, writable bool) (srp.MemDesc, error) {
	ch := c.ch
	ch.regMu.Lock()
	defer ch.regMu.Unlock()
	ch.nextKey++
	key := ch.nextKey
	addr := uint64(key) << 32
	ch.regions[key] = region{addr: addr, b: b, writable: writable}
	return srp.MemDesc{Addr: addr, Key: key, Len: uint32(len(b))}, nil
}

// Unregister withdraws a region.
func (c *MemConn) Unregister(d srp.MemDesc) {
	c.ch.regMu.Lock()
	delete(c.ch.regions, d.Key)
	c.ch.regMu.Unlock()
}

// MaxIU returns the largest IU the initiator may send.
func (c *MemConn) MaxIU() int { return c.l.cfg.MaxITIU }

// Close disconnects the channel from the initiator side.
func (c *MemConn) Close() error {
	if c.ch != nil {
		c.ch.Close(errors.New("initiator disconnected"))
	}
	return nil
}

// Channel returns the target end (for tests that inspect it).
func (c *MemConn) Channel() *MemChannel { return c.ch }
