// Package fakeverbs is an in-memory RDMA fabric implementing
// transport/rdma/provider, so that the RDMA transport's logic runs in fast
// unit tests without a device or a VM.
//
// It models what the transport depends on:
//
//   - RDMA CM: listeners by address, connect requests carrying private
//     data (padded to 56 bytes as InfiniBand CM pads a REQ), accept and
//     reject with private data (reject reason 28, consumer defined),
//     disconnect on either side with DISCONNECTED events on both, and the
//     responder resources / initiator depth swap a passive side sees.
//   - Memory: protection domains, regions with lkeys and rkeys and access
//     flags; every local and remote access is bounds- and key-checked.
//   - Reliable-connected queue pairs: work requests execute in order per
//     send queue; a SEND waits for a posted receive on the peer (RNR
//     retry forever) and lands in it; RDMA WRITE and READ copy through the
//     peer's rkeys. A bad key, a bound violation or a receive too small
//     completes that work request in error and moves both queue pairs to
//     the error state, where everything outstanding or posted later
//     completes with WCFlushErr.
//   - Completion queues with notification: Arm, then Wait wakes on the
//     next completion.
//
// Work requests run on a fabric goroutine, asynchronously to the poster
// (Latency delays each batch), so outstanding RDMA READs can be counted:
// Stats reports the most a queue pair ever had outstanding against the
// depth it was connected with.
package fakeverbs

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// Fabric is a set of devices connected to each other; it is a
// provider.Provider.
type Fabric struct {
	// Latency delays the execution of each batch of work requests.
	Latency time.Duration
	// NoPad delivers connect private data as sent (iWARP) instead of
	// padded to 56 bytes (InfiniBand, RoCE).
	NoPad bool
	// Fault, if set, is asked about every work request before it runs; a
	// status other than WCSuccess makes it fail with that status.
	Fault func(qp uint32, wr provider.SendWR) provider.WCStatus

	mu        sync.Mutex
	devs      []*Device
	listeners map[netip.AddrPort]*cmID
	mrs       map[uint32]*mr // by lkey and rkey (the same value)
	qps       map[uint32]*qp
	nextKey   uint32
	nextQPN   uint32
	nextAddr  uint64
	work      chan struct{}
	stop      chan struct{}
	running   bool
	stats     Stats
}

// Stats counts what the fabric saw.
type Stats struct {
	Registrations int // memory regions registered
	Sends         int
	Writes        int
	Reads         int
	Recvs         int
	// MaxReadsOutstanding is the most RDMA READs any queue pair had
	// posted and not completed; ReadDepthExceeded counts posts that went
	// beyond the queue pair's connected initiator depth.
	MaxReadsOutstanding int
	ReadDepthExceeded   int
	Errors              int // work requests completed in error (not flushed)
}

// New returns an empty fabric.
func New() *Fabric {
	return &Fabric{
		listeners: make(map[netip.AddrPort]*cmID),
		mrs:       make(map[uint32]*mr),
		qps:       make(map[uint32]*qp),
		nextKey:   0x1000,
		nextQPN:   0x11,
		nextAddr:  0x7f0000000000,
		work:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
}

// Name is "fake".
func (f *Fabric) Name() string { return "fake" }

// Stats returns the counters.
func (f *Fabric) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close stops the fabric's goroutine.
func (f *Fabric) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		close(f.stop)
		f.running = false
	}
}

// Device is a fake RDMA device with one port.
type Device struct {
	f     *Fabric
	name  string
	addrs []netip.Addr
	attr  provider.DeviceAttr
	port  provider.PortAttr
}

// AddDevice adds a device owning addrs. Its port GUID (GID 0's low 8
// bytes, as RoCE derives it from a MAC) is guid.
func (f *Fabric) AddDevice(name string, guid uint64, addrs ...netip.Addr) *Device {
	d := &Device{f: f, name: name, addrs: addrs,
		attr: provider.DeviceAttr{MaxQPWR: 16384, MaxSGE: 32, MaxCQE: 1 << 20, MaxMR: 1 << 16,
			MaxQPRdAtom: 128, MaxQPInitRdAtom: 128, NodeGUID: guid},
		port: provider.PortAttr{MaxMsgSize: 1 << 31, LinkLayer: "Ethernet", Active: true}}
	d.port.GID[0], d.port.GID[1] = 0xfe, 0x80
	for i := 0; i < 8; i++ {
		d.port.GID[8+i] = byte(guid >> (56 - 8*i))
	}
	f.mu.Lock()
	f.devs = append(f.devs, d)
	f.mu.Unlock()
	return d
}

// SetMaxMsgSize sets the port's largest message (to test splitting).
func (d *Device) SetMaxMsgSize(n uint32) {
	d.f.mu.Lock()
	d.port.MaxMsgSize = n
	d.f.mu.Unlock()
}

// SetMaxQPInitRdAtom sets the device's RDMA READ depth limit.
func (d *Device) SetMaxQPInitRdAtom(n int) {
	d.f.mu.Lock()
	d.attr.MaxQPInitRdAtom = n
	d.f.mu.Unlock()
}

func (d *Device) Name() string { return d.name }

func (d *Device) Attr() provider.DeviceAttr {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	return d.attr
}

func (d *Device) PortAttr(port uint8) (provider.PortAttr, error) {
	if port != 1 {
		return provider.PortAttr{}, &provider.OpError{Op: "ibv_query_port", Err: provider.ErrInvalid}
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	return d.port, nil
}

func (f *Fabric) deviceFor(ip netip.Addr) *Device {
	for _, d := range f.devs {
		for _, a := range d.addrs {
			if a == ip.Unmap() || a.Unmap() == ip.Unmap() {
				return d
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------- CM

type eventChannel struct {
	f      *Fabric
	mu     sync.Mutex
	q      []provider.Event
	notify chan struct{}
	intr   chan struct{}
	closed chan struct{}
	ids    int
	shut   bool
}

// NewEventChannel opens an event channel.
func (f *Fabric) NewEventChannel() (provider.EventChannel, error) {
	return &eventChannel{f: f, notify: make(chan struct{}, 1), intr: make(chan struct{}, 1), closed: make(chan struct{})}, nil
}

func (ec *eventChannel) push(ev provider.Event) {
	ec.mu.Lock()
	ec.q = append(ec.q, ev)
	ec.mu.Unlock()
	select {
	case ec.notify <- struct{}{}:
	default:
	}
}

func (ec *eventChannel) Next(deadline time.Time) (provider.Event, error) {
	var timer <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timer = t.C
	}
	for {
		ec.mu.Lock()
		if len(ec.q) > 0 {
			ev := ec.q[0]
			ec.q = ec.q[1:]
			ec.mu.Unlock()
			if id, ok := ev.ID.(*cmID); ok && id.isDestroyed() {
				continue
			}
			return ev, nil
		}
		ec.mu.Unlock()
		select {
		case <-ec.notify:
		case <-ec.intr:
			return provider.Event{}, provider.ErrTimeout
		case <-timer:
			return provider.Event{}, provider.ErrTimeout
		case <-ec.closed:
			return provider.Event{}, provider.ErrClosed
		}
	}
}

func (ec *eventChannel) Interrupt() {
	select {
	case ec.intr <- struct{}{}:
	default:
	}
}

func (ec *eventChannel) Close() error {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if ec.shut {
		return nil
	}
	if ec.ids > 0 {
		return &provider.OpError{Op: "rdma_destroy_event_channel", Err: fmt.Errorf("%d identifiers still open", ec.ids)}
	}
	ec.shut = true
	close(ec.closed)
	return nil
}

type idState int

const (
	idIdle idState = iota
	idListening
	idConnecting // active: connect sent; passive: request received
	idConnected
	idDisconnected
	idDestroyed
)

type cmID struct {
	ec     *eventChannel
	dev    *Device
	local  netip.AddrPort
	remote netip.AddrPort
	state  idState
	peer   *cmID
	qp     *qp
	// param of the connect request (active side)
	req provider.ConnParam
}

func (ec *eventChannel) newID() *cmID {
	ec.mu.Lock()
	ec.ids++
	ec.mu.Unlock()
	return &cmID{ec: ec}
}

func (id *cmID) isDestroyed() bool {
	id.ec.f.mu.Lock()
	defer id.ec.f.mu.Unlock()
	return id.state == idDestroyed
}

func (ec *eventChannel) CreateID() (provider.ID, error) { return ec.newID(), nil }

func (ec *eventChannel) Listen(addr netip.AddrPort, backlog int) (provider.ID, error) {
	f := ec.f
	f.mu.Lock()
	defer f.mu.Unlock()
	var dev *Device
	if !addr.Addr().IsUnspecified() {
		if dev = f.deviceFor(addr.Addr()); dev == nil {
			return nil, &provider.OpError{Op: "rdma_bind_addr", Err: provider.ErrAddrNotAvail}
		}
	}
	if _, busy := f.listeners[addr]; busy {
		return nil, &provider.OpError{Op: "rdma_bind_addr", Err: provider.ErrAddrInUse}
	}
	id := ec.newID()
	id.dev, id.local, id.state = dev, addr, idListening
	f.listeners[addr] = id
	return id, nil
}

func (id *cmID) Device() provider.Device {
	id.ec.f.mu.Lock()
	defer id.ec.f.mu.Unlock()
	if id.dev == nil {
		return nil
	}
	return id.dev
}

func (id *cmID) PortNum() uint8             { return 1 }
func (id *cmID) LocalAddr() netip.AddrPort  { return id.local }
func (id *cmID) RemoteAddr() netip.AddrPort { return id.remote }

func (id *cmID) ResolveAddr(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	f := id.ec.f
	f.mu.Lock()
	var dev *Device
	if src.IsValid() {
		dev = f.deviceFor(src)
	}
	if dev == nil {
		dev = f.deviceFor(dst.Addr())
	}
	if dev == nil && len(f.devs) > 0 {
		dev = f.devs[0]
	}
	ev := provider.Event{Type: provider.EventAddrResolved, ID: id}
	if dev == nil {
		ev = provider.Event{Type: provider.EventAddrError, ID: id, Status: -19}
	} else {
		id.dev = dev
		a := src
		if !a.IsValid() && len(dev.addrs) > 0 {
			a = dev.addrs[0]
		}
		id.local = netip.AddrPortFrom(a, 0)
		id.remote = dst
	}
	f.mu.Unlock()
	id.ec.push(ev)
	return nil
}

func (id *cmID) ResolveRoute(timeout time.Duration) error {
	id.ec.push(provider.Event{Type: provider.EventRouteResolved, ID: id})
	return nil
}

func (id *cmID) CreateQP(pdi provider.PD, cqi provider.CQ, c provider.QPCap) (provider.QP, error) {
	p, ok1 := pdi.(*pd)
	q, ok2 := cqi.(*cq)
	if !ok1 || !ok2 {
		return nil, &provider.OpError{Op: "rdma_create_qp", Err: provider.ErrInvalid}
	}
	f := id.ec.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if id.qp != nil || id.dev == nil {
		return nil, &provider.OpError{Op: "rdma_create_qp", Err: provider.ErrInvalid}
	}
	if c.MaxSendWR > id.dev.attr.MaxQPWR || c.MaxRecvWR > id.dev.attr.MaxQPWR {
		return nil, &provider.OpError{Op: "rdma_create_qp", Errno: 22, Err: provider.ErrInvalid}
	}
	x := &qp{f: f, id: id, pd: p, cq: q, num: f.nextQPN, maxSend: c.MaxSendWR, maxRecv: c.MaxRecvWR}
	f.nextQPN++
	f.qps[x.num] = x
	id.qp = x
	return x, nil
}

func pad(b []byte, n int, noPad bool) []byte {
	out := append([]byte(nil), b...)
	if !noPad && len(out) < n {
		out = append(out, make([]byte, n-len(out))...)
	}
	return out
}

// Connect sends a connect request to the listener on the remote address.
func (id *cmID) Connect(p *provider.ConnParam) error {
	f := id.ec.f
	f.mu.Lock()
	if id.qp == nil || id.dev == nil {
		f.mu.Unlock()
		return &provider.OpError{Op: "rdma_connect", Err: provider.ErrInvalid}
	}
	l := f.listeners[id.remote]
	if l == nil {
		l = f.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), id.remote.Port())]
		if l == nil {
			l = f.listeners[netip.AddrPortFrom(netip.IPv6Unspecified(), id.remote.Port())]
		}
	}
	id.req = *p
	id.req.PrivateData = append([]byte(nil), p.PrivateData...)
	id.qp.maxRd = int(p.InitiatorDepth)
	if l == nil {
		f.mu.Unlock()
		// IB_CM_REJ_INVALID_SERVICE_ID
		id.ec.push(provider.Event{Type: provider.EventRejected, ID: id, Status: 8})
		return nil
	}
	dev := l.dev
	if dev == nil {
		dev = f.deviceFor(id.remote.Addr())
	}
	if dev == nil {
		f.mu.Unlock()
		id.ec.push(provider.Event{Type: provider.EventUnreachable, ID: id, Status: -110})
		return nil
	}
	child := l.ec.newID()
	child.dev, child.local, child.remote = dev, id.remote, id.local
	child.state, id.state = idConnecting, idConnecting
	child.peer, id.peer = id, child
	ev := provider.Event{Type: provider.EventConnectRequest, ID: child, Listen: l,
		Param: provider.ConnParam{
			PrivateData: pad(p.PrivateData, 56, f.NoPad),
			// as the passive side sees them
			ResponderResources: p.InitiatorDepth,
			InitiatorDepth:     p.ResponderResources,
			RetryCount:         p.RetryCount,
			RNRRetryCount:      p.RNRRetryCount,
		}}
	f.mu.Unlock()
	l.ec.push(ev)
	return nil
}

func (id *cmID) Accept(p *provider.ConnParam) error {
	f := id.ec.f
	f.mu.Lock()
	peer := id.peer
	if id.state != idConnecting || peer == nil || peer.state != idConnecting || id.qp == nil {
		f.mu.Unlock()
		return &provider.OpError{Op: "rdma_accept", Err: provider.ErrInvalid}
	}
	id.qp.maxRd = int(p.InitiatorDepth)
	id.qp.peer, peer.qp.peer = peer.qp, id.qp
	id.qp.state, peer.qp.state = qpRTS, qpRTS
	id.state, peer.state = idConnected, idConnected
	pd := pad(p.PrivateData, 196, f.NoPad)
	f.mu.Unlock()
	peer.ec.push(provider.Event{Type: provider.EventEstablished, ID: peer,
		Param: provider.ConnParam{PrivateData: pd, ResponderResources: p.InitiatorDepth, InitiatorDepth: p.ResponderResources}})
	id.ec.push(provider.Event{Type: provider.EventEstablished, ID: id})
	f.kick()
	return nil
}

func (id *cmID) Reject(b []byte) error {
	f := id.ec.f
	f.mu.Lock()
	peer := id.peer
	if id.state != idConnecting || peer == nil {
		f.mu.Unlock()
		return &provider.OpError{Op: "rdma_reject", Err: provider.ErrInvalid}
	}
	id.state, peer.state = idDisconnected, idDisconnected
	id.peer, peer.peer = nil, nil
	pd := pad(b, 148, f.NoPad)
	f.mu.Unlock()
	peer.ec.push(provider.Event{Type: provider.EventRejected, ID: peer, Status: provider.RejectConsumerDefined,
		Param: provider.ConnParam{PrivateData: pd}})
	return nil
}

// disconnectLocked moves both queue pairs to error and reports
// DISCONNECTED to the peer (and to id itself if it initiated).
func (id *cmID) disconnectLocked() []func() {
	var evs []func()
	if id.qp != nil {
		id.qp.setError()
	}
	peer := id.peer
	if id.state == idConnected {
		id.state = idDisconnected
		evs = append(evs, func() { id.ec.push(provider.Event{Type: provider.EventDisconnected, ID: id}) })
	}
	if peer != nil {
		if peer.qp != nil {
			peer.qp.setError()
		}
		if peer.state == idConnected {
			peer.state = idDisconnected
			evs = append(evs, func() { peer.ec.push(provider.Event{Type: provider.EventDisconnected, ID: peer}) })
		} else if peer.state == idConnecting {
			peer.state = idDisconnected
			evs = append(evs, func() { peer.ec.push(provider.Event{Type: provider.EventRejected, ID: peer, Status: 28}) })
		}
	}
	return evs
}

func (id *cmID) Disconnect() error {
	f := id.ec.f
	f.mu.Lock()
	if id.state != idConnected && id.state != idConnecting {
		if id.qp != nil {
			id.qp.setError()
		}
		f.mu.Unlock()
		f.kick()
		return &provider.OpError{Op: "rdma_disconnect", Err: provider.ErrInvalid}
	}
	evs := id.disconnectLocked()
	f.mu.Unlock()
	for _, e := range evs {
		e()
	}
	f.kick()
	return nil
}

func (id *cmID) Destroy() error {
	f := id.ec.f
	f.mu.Lock()
	if id.state == idDestroyed {
		f.mu.Unlock()
		return nil
	}
	var evs []func()
	if id.state == idConnected || id.state == idConnecting {
		evs = id.disconnectLocked()
	}
	if id.state == idListening {
		delete(f.listeners, id.local)
	}
	if id.qp != nil {
		id.qp.destroyLocked()
	}
	if id.peer != nil {
		id.peer.peer = nil
	}
	id.state = idDestroyed
	f.mu.Unlock()
	for _, e := range evs {
		e()
	}
	id.ec.mu.Lock()
	id.ec.ids--
	id.ec.mu.Unlock()
	f.kick()
	return nil
}

// Disconnect forces the connection of the queue pair numbered qpn down
// as a peer's DREQ or a cable pull would: both sides get DISCONNECTED and
// their queue pairs flush.
func (f *Fabric) Disconnect(qpn uint32) error {
	f.mu.Lock()
	q := f.qps[qpn]
	if q == nil {
		f.mu.Unlock()
		return errors.New("fakeverbs: no such queue pair")
	}
	evs := q.id.disconnectLocked()
	f.mu.Unlock()
	for _, e := range evs {
		e()
	}
	f.kick()
	return nil
}

// QPs lists the live queue pair numbers.
func (f *Fabric) QPs() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for n := range f.qps {
		out = append(out, n)
	}
	return out
}

// ---------------------------------------------------------------- memory

type pd struct {
	dev    *Device
	closed bool
}

func (d *Device) AllocPD() (provider.PD, error) { return &pd{dev: d}, nil }

func (p *pd) Close() error {
	p.closed = true
	return nil
}

type mr struct {
	pd     *pd
	mem    []byte
	addr   uint64
	key    uint32
	access provider.Access
	closed bool
}

func (p *pd) Register(size int, access provider.Access) (provider.MR, error) {
	f := p.dev.f
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &mr{pd: p, mem: make([]byte, size), addr: f.nextAddr, key: f.nextKey, access: access}
	f.nextAddr += uint64(size+0xFFFFF) &^ 0xFFFFF
	f.nextKey += 0x101
	f.mrs[m.key] = m
	f.stats.Registrations++
	return m, nil
}

func (m *mr) Bytes() []byte { return m.mem }
func (m *mr) Addr() uint64  { return m.addr }
func (m *mr) LKey() uint32  { return m.key }
func (m *mr) RKey() uint32  { return m.key }

func (m *mr) Close() error {
	f := m.pd.dev.f
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mrs, m.key)
	m.closed = true
	return nil
}

// span resolves key/addr/len in protection domain p with the access
// needed; nil if any check fails.
func (f *Fabric) span(p *pd, key uint32, addr uint64, n uint32, need provider.Access) []byte {
	m := f.mrs[key]
	if m == nil || m.pd != p || m.access&need != need {
		return nil
	}
	if addr < m.addr || addr-m.addr > uint64(len(m.mem)) || uint64(n) > uint64(len(m.mem))-(addr-m.addr) {
		return nil
	}
	off := addr - m.addr
	return m.mem[off : off+uint64(n)]
}

// ---------------------------------------------------------------- CQ

type cq struct {
	f      *Fabric
	max    int
	mu     sync.Mutex
	q      []provider.WC
	armed  bool
	notify chan struct{}
	intr   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (d *Device) CreateCQ(cqe int) (provider.CQ, error) {
	return &cq{f: d.f, max: cqe, notify: make(chan struct{}, 1), intr: make(chan struct{}, 1), closed: make(chan struct{})}, nil
}

func (c *cq) push(wc provider.WC) {
	c.mu.Lock()
	c.q = append(c.q, wc)
	armed := c.armed
	c.armed = false
	c.mu.Unlock()
	if armed {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

func (c *cq) Poll(wc []provider.WC) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) > c.max {
		return 0, &provider.OpError{Op: "ibv_poll_cq", Err: errors.New("completion queue overrun")}
	}
	n := copy(wc, c.q)
	c.q = c.q[:copy(c.q, c.q[n:])]
	return n, nil
}

func (c *cq) Arm() error {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
	return nil
}

func (c *cq) Wait(deadline time.Time) error {
	var timer <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-c.notify:
		return nil
	case <-c.intr:
		return provider.ErrTimeout
	case <-timer:
		return provider.ErrTimeout
	case <-c.closed:
		return provider.ErrClosed
	}
}

func (c *cq) Interrupt() {
	select {
	case c.intr <- struct{}{}:
	default:
	}
}

func (c *cq) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// ---------------------------------------------------------------- QP

type qpState int

const (
	qpInit qpState = iota
	qpRTS
	qpError
	qpDestroyed
)

type qp struct {
	f       *Fabric
	id      *cmID
	pd      *pd
	cq      *cq
	num     uint32
	peer    *qp
	state   qpState
	maxSend int
	maxRecv int
	maxRd   int
	sq      []provider.SendWR
	rq      []provider.RecvWR
}

func (q *qp) Num() uint32 { return q.num }

func (q *qp) complete(wc provider.WC) {
	wc.QPNum = q.num
	q.cq.push(wc)
}

// setError moves the queue pair to the error state and flushes it. The
// caller holds f.mu.
func (q *qp) setError() {
	if q.state == qpError || q.state == qpDestroyed {
		return
	}
	q.state = qpError
	for _, w := range q.sq {
		q.complete(provider.WC{ID: w.ID, Status: provider.WCFlushErr})
	}
	q.sq = nil
	for _, r := range q.rq {
		q.complete(provider.WC{ID: r.ID, Status: provider.WCFlushErr})
	}
	q.rq = nil
}

func (q *qp) destroyLocked() {
	q.sq, q.rq = nil, nil
	q.state = qpDestroyed
	delete(q.f.qps, q.num)
}

func (q *qp) PostSend(wrs []provider.SendWR) (int, error) {
	f := q.f
	f.mu.Lock()
	defer f.kick()
	defer f.mu.Unlock()
	if q.state == qpDestroyed {
		return 0, &provider.OpError{Op: "ibv_post_send", Err: provider.ErrInvalid}
	}
	for i, w := range wrs {
		if len(q.sq) >= q.maxSend {
			return i, &provider.OpError{Op: "ibv_post_send", Errno: 12, Err: provider.ErrQueueFull}
		}
		if q.state == qpError {
			q.complete(provider.WC{ID: w.ID, Status: provider.WCFlushErr})
			continue
		}
		q.sq = append(q.sq, w)
		if w.Op == provider.OpRead {
			n := 0
			for _, x := range q.sq {
				if x.Op == provider.OpRead {
					n++
				}
			}
			f.stats.MaxReadsOutstanding = max(f.stats.MaxReadsOutstanding, n)
			if q.maxRd > 0 && n > q.maxRd {
				f.stats.ReadDepthExceeded++
			}
		}
	}
	return len(wrs), nil
}

func (q *qp) PostRecv(wrs []provider.RecvWR) (int, error) {
	f := q.f
	f.mu.Lock()
	defer f.kick()
	defer f.mu.Unlock()
	if q.state == qpDestroyed {
		return 0, &provider.OpError{Op: "ibv_post_recv", Err: provider.ErrInvalid}
	}
	for i, w := range wrs {
		if len(q.rq) >= q.maxRecv {
			return i, &provider.OpError{Op: "ibv_post_recv", Errno: 12, Err: provider.ErrQueueFull}
		}
		if q.state == qpError {
			q.complete(provider.WC{ID: w.ID, Status: provider.WCFlushErr})
			continue
		}
		q.rq = append(q.rq, w)
	}
	return len(wrs), nil
}

func (q *qp) Close() error {
	f := q.f
	f.mu.Lock()
	q.destroyLocked()
	f.mu.Unlock()
	return nil
}

// kick wakes the fabric goroutine (starting it on first use).
func (f *Fabric) kick() {
	f.mu.Lock()
	if !f.running {
		select {
		case <-f.stop:
			f.stop = make(chan struct{})
		default:
		}
		f.running = true
		go f.loop(f.stop)
	}
	f.mu.Unlock()
	select {
	case f.work <- struct{}{}:
	default:
	}
}

func (f *Fabric) loop(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-f.work:
		}
		if f.Latency > 0 {
			time.Sleep(f.Latency)
		}
		f.mu.Lock()
		for f.step() {
		}
		f.mu.Unlock()
	}
}

// step executes at most one work request per queue pair; it reports
// whether anything happened. The caller holds f.mu.
func (f *Fabric) step() bool {
	progress := false
	for _, q := range f.qps {
		if q.state != qpRTS || len(q.sq) == 0 {
			continue
		}
		w := q.sq[0]
		if w.Op == provider.OpSend && q.peer != nil && q.peer.state == qpRTS && len(q.peer.rq) == 0 {
			continue // receiver not ready: RNR, retried forever
		}
		q.sq = q.sq[:copy(q.sq, q.sq[1:])]
		progress = true
		st := provider.WCSuccess
		if f.Fault != nil {
			st = f.Fault(q.num, w)
		}
		if st == provider.WCSuccess {
			st = f.execute(q, w)
		}
		if st != provider.WCSuccess {
			f.stats.Errors++
			q.complete(provider.WC{ID: w.ID, Status: st})
			q.setError()
			if q.peer != nil {
				q.peer.setError()
			}
			continue
		}
		if w.Flags&provider.Signaled != 0 {
			q.complete(provider.WC{ID: w.ID, Status: provider.WCSuccess, Op: wcOp(w.Op), Len: w.Local.Len})
		}
	}
	return progress
}

func wcOp(o provider.Opcode) provider.WCOpcode {
	switch o {
	case provider.OpWrite:
		return provider.WCWrite
	case provider.OpRead:
		return provider.WCRead
	}
	return provider.WCSend
}

// execute runs one work request; the caller holds f.mu.
func (f *Fabric) execute(q *qp, w provider.SendWR) provider.WCStatus {
	p := q.peer
	if p == nil || p.state != qpRTS {
		return provider.WCRetryExcErr
	}
	var local []byte
	if w.Local.Len > 0 {
		need := provider.Access(0)
		if w.Op == provider.OpRead {
			need = provider.AccessLocalWrite
		}
		if local = f.span(q.pd, w.Local.LKey, w.Local.Addr, w.Local.Len, need); local == nil {
			return provider.WCLocProtErr
		}
	}
	switch w.Op {
	case provider.OpSend:
		f.stats.Sends++
		r := p.rq[0]
		p.rq = p.rq[:copy(p.rq, p.rq[1:])]
		dst := f.span(p.pd, r.Local.LKey, r.Local.Addr, r.Local.Len, provider.AccessLocalWrite)
		if dst == nil || len(local) > len(dst) {
			st := provider.WCLocLenErr
			if dst == nil {
				st = provider.WCLocProtErr
			}
			p.complete(provider.WC{ID: r.ID, Status: st})
			return provider.WCRemInvReqErr
		}
		copy(dst, local)
		f.stats.Recvs++
		p.complete(provider.WC{ID: r.ID, Status: provider.WCSuccess, Op: provider.WCRecv, Len: uint32(len(local))})
	case provider.OpWrite:
		f.stats.Writes++
		dst := f.span(p.pd, w.RKey, w.RemoteAddr, w.Local.Len, provider.AccessRemoteWrite)
		if dst == nil {
			return provider.WCRemAccessErr
		}
		copy(dst, local)
	case provider.OpRead:
		f.stats.Reads++
		src := f.span(p.pd, w.RKey, w.RemoteAddr, w.Local.Len, provider.AccessRemoteRead)
		if src == nil {
			return provider.WCRemAccessErr
		}
		copy(local, src)
	}
	return provider.WCSuccess
}

var (
	_ provider.Provider     = (*Fabric)(nil)
	_ provider.EventChannel = (*eventChannel)(nil)
	_ provider.ID           = (*cmID)(nil)
	_ provider.Device       = (*Device)(nil)
	_ provider.PD           = (*pd)(nil)
	_ provider.MR           = (*mr)(nil)
	_ provider.CQ           = (*cq)(nil)
	_ provider.QP           = (*qp)(nil)
)
