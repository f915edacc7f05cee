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
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// Listener accepts SRP logins on one RDMA CM address. One goroutine reads
// the CM event channel: connect requests become Channels, and the events
// of established channels (disconnect requests, errors) are passed to
// them.
type Listener struct {
	t    *Transport
	log  *zap.Logger
	ec   provider.EventChannel
	lid  provider.ID
	addr netip.AddrPort

	accept chan *Channel

	mu      sync.Mutex
	chans   map[provider.ID]*Channel
	closing bool

	closed   chan struct{}
	loopDone chan struct{}
	once     sync.Once
}

var _ transport.Listener = (*Listener)(nil)

// Listen listens for SRP logins on addr (see ParseAddr).
func (t *Transport) Listen(addr netip.AddrPort) (*Listener, error) {
	ec, err := t.prov.NewEventChannel()
	if err != nil {
		return nil, fmt.Errorf("rdma: listen %v: %w", addr, err)
	}
	lid, err := ec.Listen(addr, t.cfg.Backlog)
	if err != nil {
		ec.Close()
		return nil, fmt.Errorf("rdma: listen %v: %w", addr, err)
	}
	l := &Listener{
		t: t, log: t.log.With(zap.Stringer("listen", addr)), ec: ec, lid: lid, addr: addr,
		accept:   make(chan *Channel, t.cfg.Backlog),
		chans:    make(map[provider.ID]*Channel),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go l.loop()
	l.log.Info("listening for SRP logins over RDMA CM")
	return l, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Device names the RDMA device the listener is bound to ("" for a
// wildcard address).
func (l *Listener) Device() string {
	if d := l.lid.Device(); d != nil {
		return d.Name()
	}
	return ""
}

// DefaultPortID is the SRP target port identifier LIO ib_srpt would use
// on the listening device: id_ext and ioc_guid both the port GUID (the
// low 8 bytes of GID 0). It fails for a wildcard address, which is bound
// to no device: configure the port ID then.
func (l *Listener) DefaultPortID() ([16]byte, error) {
	dev := l.lid.Device()
	if dev == nil {
		return [16]byte{}, fmt.Errorf("rdma: %v is not bound to one RDMA device; configure the target port ID", l.addr)
	}
	pa, err := dev.PortAttr(l.lid.PortNum())
	if err != nil {
		return [16]byte{}, err
	}
	guid := be64(pa.GID[8:16])
	if guid == 0 {
		guid = dev.Attr().NodeGUID
	}
	return PortIDFromGUID(guid), nil
}

// Accept returns the next channel whose login awaits an answer.
func (l *Listener) Accept(ctx context.Context) (transport.Channel, error) {
	select {
	case ch := <-l.accept:
		return ch, nil
	case <-l.closed:
		return nil, transport.ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops listening, refuses logins not yet answered, closes the
// listener's channels and waits (a few seconds at most) for them to be
// torn down.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closing = true
		chans := make([]*Channel, 0, len(l.chans))
		for _, ch := range l.chans {
			chans = append(chans, ch)
		}
		l.mu.Unlock()
		close(l.closed)
		if err := l.lid.Destroy(); err != nil {
			l.log.Debug("destroying the listening identifier", zap.Error(err))
		}
		for {
			select {
			case ch := <-l.accept:
				ch.Reject(&srp.LoginRej{Tag: ch.login.Tag, Reason: srp.RejUnableToEstablish,
					BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect})
				continue
			default:
			}
			break
		}
		for _, ch := range chans {
			ch.Close(errors.New("listener closed"))
		}
		l.ec.Interrupt()
	})
	select {
	case <-l.loopDone:
	case <-time.After(drainSends + drainFlushed + 2*time.Second):
		return errors.New("rdma: listener: channels did not finish closing")
	}
	return nil
}

// finished reports whether the event loop may end.
func (l *Listener) finished() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing && len(l.chans) == 0
}

func (l *Listener) loop() {
	defer close(l.loopDone)
	for !l.finished() {
		ev, err := l.ec.Next(time.Time{})
		if err != nil {
			if errors.Is(err, provider.ErrTimeout) {
				continue
			}
			if errors.Is(err, provider.ErrClosed) {
				break
			}
			l.log.Error("RDMA CM event channel", zap.Error(err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if ev.Type == provider.EventConnectRequest {
			l.onConnectRequest(ev)
			continue
		}
		l.mu.Lock()
		ch := l.chans[ev.ID]
		l.mu.Unlock()
		if ch == nil {
			if ev.ID == l.lid && ev.Type == provider.EventDeviceRemoval {
				l.log.Error("the listening RDMA device was removed")
			}
			continue
		}
		ch.onEvent(ev)
	}
	if err := l.ec.Close(); err != nil {
		l.log.Warn("closing the RDMA CM event channel", zap.Error(err))
	}
}

// decodeLogin reads the login from connect private data: the 64-byte
// SRP_LOGIN_REQ IU when exactly that much arrived (iWARP carries private
// data as sent), else Linux's 56-byte RDMA CM form (what fits in an
// InfiniBand CM REQ after the RDMA CM header; the CM pads it).
func decodeLogin(pd []byte) (srp.LoginReq, error) {
	var req srp.LoginReq
	if len(pd) == srp.LoginReqLen {
		if err := req.Decode(pd); err == nil {
			return req, nil
		}
	}
	err := req.DecodeRDMA(pd)
	return req, err
}

func (l *Listener) reject(id provider.ID, tag uint64, reason uint32, why string) {
	rej := srp.LoginRej{Tag: tag, Reason: reason, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect}
	var b [srp.LoginRejLen]byte
	n, _ := rej.Encode(b[:])
	l.log.Warn("login rejected by the transport", zap.Stringer("from", id.RemoteAddr()),
		zap.Uint32("reason", reason), zap.String("why", why))
	if err := id.Reject(b[:n]); err != nil {
		l.log.Debug("rdma_reject", zap.Error(err))
	}
	id.Destroy()
}

func (l *Listener) onConnectRequest(ev provider.Event) {
	id := ev.ID
	req, err := decodeLogin(ev.Param.PrivateData)
	if err != nil {
		l.reject(id, 0, srp.RejUnableToEstablish, fmt.Sprintf("undecodable login in %d bytes of private data: %v", len(ev.Param.PrivateData), err))
		return
	}
	l.mu.Lock()
	closing := l.closing
	l.mu.Unlock()
	if closing {
		l.reject(id, req.Tag, srp.RejUnableToEstablish, "the listener is closing")
		return
	}
	ch, err := l.newChannel(id, &req, ev.Param)
	if err != nil {
		l.reject(id, req.Tag, srp.RejInsufficientResources, err.Error())
		return
	}
	select {
	case l.accept <- ch:
	default:
		ch.Reject(&srp.LoginRej{Tag: req.Tag, Reason: srp.RejInsufficientResources, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect})
	}
}

func (l *Listener) newChannel(id provider.ID, req *srp.LoginReq, param provider.ConnParam) (*Channel, error) {
	cfg := &l.t.cfg
	ds, err := l.t.device(id.Device(), false)
	if err != nil {
		return nil, err
	}
	maxMsg := uint32(1 << 30)
	if pa, err := ds.dev.PortAttr(id.PortNum()); err == nil && pa.MaxMsgSize > 0 && pa.MaxMsgSize < maxMsg {
		maxMsg = pa.MaxMsgSize
	}
	// RDMA READs this side may have outstanding: what the initiator
	// offered as its responder resources, within the device's limit.
	depth := int(param.InitiatorDepth)
	if m := ds.attr.MaxQPInitRdAtom; m > 0 && depth > m {
		depth = m
	}
	if depth < 1 {
		depth = 1
	}
	resp := int(param.ResponderResources)
	if m := ds.attr.MaxQPRdAtom; m > 0 && resp > m {
		resp = m
	}
	iu := int(req.MaxITIULen)
	iu = max(iu, 64)
	iu = min(iu, cfg.MaxITIU)
	sq := 4*cfg.Credits + 64
	if m := ds.attr.MaxQPWR; m > 0 && sq > m {
		sq = m
	}
	recvs := cfg.Credits + recvHeadroom
	if m := ds.attr.MaxQPWR; m > 0 && recvs > m {
		recvs = m
	}
	ecfg := endpointConfig{
		recvs: recvs, recvSize: iu,
		sends: cfg.Credits + recvHeadroom, sendSize: cfg.MaxTIIU,
		sqDepth: sq, readDepth: depth, waiters: 2*cfg.Credits + 8,
		maxMsg: maxMsg, polling: cfg.Polling,
	}
	log := l.log.With(zap.Stringer("peer", id.RemoteAddr()))
	e, err := newEndpoint(ds, ds.arena, id, ecfg, log)
	if err != nil {
		return nil, err
	}
	ch := &Channel{l: l, e: e, log: log, login: *req, credits: recvs - recvHeadroom,
		respRes: uint8(resp), depth: uint8(depth)}
	if ch.credits < 2 {
		ch.credits = recvs / 2
	}
	e.onStop = func() { l.stopped(ch) }
	l.mu.Lock()
	l.chans[id] = ch
	l.mu.Unlock()
	go e.run()
	log.Debug("connect request", zap.Uint32("max_it_iu", req.MaxITIULen),
		zap.Int("rdma_read_depth", depth), zap.String("device", ds.dev.Name()))
	return ch, nil
}

func (l *Listener) stopped(ch *Channel) {
	l.mu.Lock()
	delete(l.chans, ch.e.id)
	closing := l.closing
	l.mu.Unlock()
	ch.log.Debug("channel torn down", zap.NamedError("reason", ch.e.closeReason()))
	if closing {
		l.ec.Interrupt()
	}
}
