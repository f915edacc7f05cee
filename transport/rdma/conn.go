package rdma

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// DialConfig configures an initiator connection.
type DialConfig struct {
	// Dst is the target's RDMA CM address.
	Dst netip.AddrPort
	// Src is the local address to connect from (zero: any).
	Src netip.Addr
	// MaxITIU is the largest IU sent to the target (default 8260, what
	// Linux ib_srp asks for with immediate data).
	MaxITIU int
	// Recvs is how many receive buffers are posted (default 256+16); it
	// bounds the responses in flight.
	Recvs int
	// RecvSize is the largest IU accepted from the target (default
	// 4096); a login response announcing more fails the login.
	RecvSize int
	// Timeout bounds address and route resolution (default 5s).
	Timeout time.Duration
}

func (c *DialConfig) defaults() {
	if c.MaxITIU <= 0 {
		c.MaxITIU = 8260
	}
	if c.Recvs <= 0 {
		c.Recvs = 256 + 16
	}
	if c.RecvSize <= 0 {
		c.RecvSize = 4096
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
}

// Conn is the initiator end of an RDMA channel: it implements the Go SRP
// initiator's Conn. Initiator memory the target reads and writes lives in
// a registered arena with remote access: Register copies a data-out buffer
// into it (or lends an arena buffer for data-in) and Unregister copies
// data-in back, so no memory is registered per command.
type Conn struct {
	t   *Transport
	cfg DialConfig
	log *zap.Logger
	ec  provider.EventChannel
	id  provider.ID
	ds  *devState
	e   *endpoint
	evs chan provider.Event

	mu   sync.Mutex
	regs map[uint64]registration
	// loggedIn: a receiving goroutine owns the receive side from now on
	// (it lets go when Recv reports the close).
	loggedIn bool

	evDone chan struct{}
}

type registration struct {
	blk      []byte
	orig     []byte
	writable bool
}

var _ initiator.Conn = (*Conn)(nil)

// Dial resolves the target's address and route and prepares a queue pair;
// Login connects.
func (t *Transport) Dial(ctx context.Context, cfg DialConfig) (*Conn, error) {
	cfg.defaults()
	ec, err := t.prov.NewEventChannel()
	if err != nil {
		return nil, fmt.Errorf("rdma: connecting to %v: %w", cfg.Dst, err)
	}
	id, err := ec.CreateID()
	if err != nil {
		ec.Close()
		return nil, fmt.Errorf("rdma: connecting to %v: %w", cfg.Dst, err)
	}
	c := &Conn{t: t, cfg: cfg, log: t.log.With(zap.Stringer("target", cfg.Dst)), ec: ec, id: id,
		evs: make(chan provider.Event, 16), regs: make(map[uint64]registration), evDone: make(chan struct{})}
	fail := func(err error) (*Conn, error) {
		id.Destroy()
		ec.Close()
		return nil, fmt.Errorf("rdma: connecting to %v: %w", cfg.Dst, err)
	}
	if err := id.ResolveAddr(cfg.Src, cfg.Dst, cfg.Timeout); err != nil {
		return fail(err)
	}
	if err := c.expectDirect(ctx, provider.EventAddrResolved); err != nil {
		return fail(err)
	}
	if err := id.ResolveRoute(cfg.Timeout); err != nil {
		return fail(err)
	}
	if err := c.expectDirect(ctx, provider.EventRouteResolved); err != nil {
		return fail(err)
	}
	ds, err := t.device(id.Device(), true)
	if err != nil {
		return fail(err)
	}
	c.ds = ds
	maxMsg := uint32(1 << 30)
	if pa, err := ds.dev.PortAttr(id.PortNum()); err == nil && pa.MaxMsgSize > 0 && pa.MaxMsgSize < maxMsg {
		maxMsg = pa.MaxMsgSize
	}
	sq := cfg.Recvs + 64
	if m := ds.attr.MaxQPWR; m > 0 && sq > m {
		sq = m
	}
	c.e, err = newEndpoint(ds, ds.remote, id, endpointConfig{
		recvs: cfg.Recvs, recvSize: cfg.RecvSize, sends: cfg.Recvs, sendSize: cfg.MaxITIU,
		sqDepth: sq, readDepth: 1, waiters: 1, maxMsg: maxMsg, polling: t.cfg.Polling, drainRecv: true,
	}, c.log)
	if err != nil {
		return fail(err)
	}
	go c.e.run()
	go c.events()
	return c, nil
}

// expectDirect reads events on the caller's goroutine (before events runs).
func (c *Conn) expectDirect(ctx context.Context, want provider.EventType) error {
	for {
		dl := time.Now().Add(100 * time.Millisecond)
		ev, err := c.ec.Next(dl)
		if errors.Is(err, provider.ErrTimeout) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		if ev.Type == want {
			return nil
		}
		return fmt.Errorf("%v (status %d) while waiting for %v", ev.Type, ev.Status, want)
	}
}

// events forwards CM events to Login and closes the endpoint when the
// target disconnects; it ends once the endpoint is torn down.
func (c *Conn) events() {
	defer close(c.evDone)
	for {
		select {
		case <-c.e.stopped:
			if err := c.ec.Close(); err != nil {
				c.log.Debug("closing the event channel", zap.Error(err))
			}
			return
		default:
		}
		ev, err := c.ec.Next(time.Now().Add(200 * time.Millisecond))
		if err != nil {
			if errors.Is(err, provider.ErrClosed) {
				return
			}
			continue
		}
		switch ev.Type {
		case provider.EventDisconnected, provider.EventDeviceRemoval:
			c.e.close(ErrDisconnected)
		}
		select {
		case c.evs <- ev:
		default:
		}
	}
}

// Login connects with the login request as private data (the 56-byte
// form Linux uses) and waits for the target's answer.
func (c *Conn) Login(ctx context.Context, req *srp.LoginReq) (*srp.LoginRsp, *srp.LoginRej, error) {
	var b [srp.LoginReqRDMALen]byte
	n, err := req.EncodeRDMA(b[:])
	if err != nil {
		return nil, nil, err
	}
	rr := min(max(c.ds.attr.MaxQPRdAtom, 1), 16)
	depth := min(max(c.ds.attr.MaxQPInitRdAtom, 1), 4)
	if err := c.id.Connect(&provider.ConnParam{PrivateData: b[:n], ResponderResources: uint8(rr),
		InitiatorDepth: uint8(depth), RetryCount: 7, RNRRetryCount: 7}); err != nil {
		return nil, nil, err
	}
	for {
		var ev provider.Event
		select {
		case ev = <-c.evs:
		case <-c.e.done:
			return nil, nil, c.e.closeReason()
		case <-ctx.Done():
			c.Close()
			return nil, nil, ctx.Err()
		}
		switch ev.Type {
		case provider.EventEstablished:
			var rsp srp.LoginRsp
			if err := rsp.Decode(ev.Param.PrivateData); err != nil {
				c.Close()
				return nil, nil, fmt.Errorf("rdma: login response: %w", err)
			}
			if int(rsp.MaxTIIULen) > c.cfg.RecvSize {
				c.Close()
				return nil, nil, fmt.Errorf("rdma: target sends IUs up to %d bytes, receive buffers hold %d", rsp.MaxTIIULen, c.cfg.RecvSize)
			}
			c.mu.Lock()
			c.loggedIn = true
			c.mu.Unlock()
			return &rsp, nil, nil
		case provider.EventRejected:
			pd := ev.Param.PrivateData
			c.Close()
			if ev.Status == provider.RejectConsumerDefined && len(pd) >= srp.LoginRejLen && srp.Opcode(pd[0]) == srp.OpLoginRej {
				var rej srp.LoginRej
				if rej.Decode(pd) == nil {
					return nil, &rej, transport.ErrRejected
				}
			}
			return nil, nil, fmt.Errorf("%w: CM reject reason %d without SRP_LOGIN_REJ", transport.ErrRejected, ev.Status)
		case provider.EventUnreachable, provider.EventConnectError, provider.EventDisconnected:
			c.Close()
			return nil, nil, fmt.Errorf("rdma: connecting to %v: %v (status %d)", c.cfg.Dst, ev.Type, ev.Status)
		}
	}
}

// Send sends one encoded IU.
func (c *Conn) Send(iu []byte) error {
	e := c.e
	if len(iu) > e.cfg.sendSize {
		return fmt.Errorf("rdma: IU of %d bytes exceeds %d", len(iu), e.cfg.sendSize)
	}
	e.life.RLock()
	defer e.life.RUnlock()
	idx, ok := e.getSendBuf()
	if !ok {
		return srp.ErrClosed
	}
	n := copy(e.sbuf(idx), iu)
	return e.send(idx, n)
}

// Recv returns the next IU from the target, valid until the next Recv.
func (c *Conn) Recv() ([]byte, error) { return c.e.recv() }

// Register exposes b to the target through the registered arena.
func (c *Conn) Register(b []byte, writable bool) (srp.MemDesc, error) {
	blk, err := c.e.ar.alloc(len(b))
	if err != nil {
		return srp.MemDesc{}, err
	}
	if !writable {
		copy(blk, b)
	}
	sge, _ := c.e.ar.sge(blk)
	d := srp.MemDesc{Addr: sge.Addr, Key: c.e.ar.rkey, Len: uint32(len(b))}
	c.mu.Lock()
	c.regs[d.Addr] = registration{blk: blk, orig: b, writable: writable}
	c.mu.Unlock()
	return d, nil
}

// Unregister withdraws a registration; data the target wrote lands in the
// registered buffer.
func (c *Conn) Unregister(d srp.MemDesc) {
	c.mu.Lock()
	r, ok := c.regs[d.Addr]
	delete(c.regs, d.Addr)
	c.mu.Unlock()
	if !ok {
		return
	}
	if r.writable {
		copy(r.orig, r.blk)
	}
	c.e.ar.free(r.blk)
}

// MaxIU is the largest IU sent to the target.
func (c *Conn) MaxIU() int { return c.cfg.MaxITIU }

// Close disconnects and waits for the teardown. After a login, the
// receiving goroutine releases the receive buffers when its Recv reports
// the close.
func (c *Conn) Close() error {
	c.e.close(errors.New("rdma: initiator closed the connection"))
	c.mu.Lock()
	loggedIn := c.loggedIn
	c.mu.Unlock()
	if !loggedIn {
		c.e.releaseRecvSide()
	}
	<-c.e.stopped
	<-c.evDone
	c.mu.Lock()
	for k, r := range c.regs {
		c.e.ar.free(r.blk)
		delete(c.regs, k)
	}
	c.mu.Unlock()
	return nil
}

// PortGUID is the GUID of the local port the connection uses (the low 8
// bytes of its GID 0): Linux ib_srp's initiator port ID is initiator_ext
// followed by it.
func (c *Conn) PortGUID() uint64 {
	pa, err := c.ds.dev.PortAttr(c.id.PortNum())
	if err != nil {
		return 0
	}
	if g := be64(pa.GID[8:16]); g != 0 {
		return g
	}
	return c.ds.attr.NodeGUID
}

// LocalAddr is the address the connection was made from.
func (c *Conn) LocalAddr() netip.AddrPort { return c.id.LocalAddr() }
