//go:build linux && cgo

// Package verbs implements transport/rdma/provider over rdma-core:
// libibverbs and librdmacm through cgo. It is the only package of srptgt
// that includes <infiniband/verbs.h> and <rdma/rdma_cma.h>.
//
// Each call crosses into C once: work requests are posted as one list per
// call (up to 32 per ibv_post_send), completions are polled 32 at a time,
// and an RDMA CM event is copied out (private data included) before it is
// acknowledged. Event channels and completion channels are non-blocking
// descriptors waited on through Go's poller (see pollFD). Errors are
// *provider.OpError values that unwrap to the provider's sentinels.
// Handles are released by Close/Destroy; a cleanup attached to each Go
// wrapper releases a forgotten one when it is garbage collected (a safety
// net, logged nowhere: callers close what they open).
package verbs

/*
#cgo LDFLAGS: -libverbs -lrdmacm
#cgo noescape gv_poll
#cgo nocallback gv_poll
#cgo noescape gv_post_send
#cgo nocallback gv_post_send
#cgo noescape gv_post_recv
#cgo nocallback gv_post_recv
#cgo nocallback gv_req_notify
#cgo nocallback gv_get_cq_event
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// Provider is the rdma-core verbs layer.
type Provider struct {
	mu   sync.Mutex
	devs map[*C.struct_ibv_context]*device
}

// New returns the rdma-core provider. It opens nothing until an event
// channel is created.
func New() *Provider {
	return &Provider{devs: make(map[*C.struct_ibv_context]*device)}
}

// Name is "verbs".
func (p *Provider) Name() string { return "verbs" }

func (p *Provider) device(ctx *C.struct_ibv_context) *device {
	if ctx == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.devs[ctx]
	if d == nil {
		d = &device{ctx: ctx, name: C.GoString(C.ibv_get_device_name(ctx.device))}
		var a C.struct_gv_dev_attr
		if r := C.gv_query_device(ctx, &a); r == 0 {
			d.attr = provider.DeviceAttr{
				MaxQPWR: int(a.max_qp_wr), MaxSGE: int(a.max_sge), MaxCQE: int(a.max_cqe),
				MaxMR: int(a.max_mr), MaxQPRdAtom: int(a.max_qp_rd_atom),
				MaxQPInitRdAtom: int(a.max_qp_init_rd_atom), NodeGUID: uint64(a.node_guid),
			}
		}
		p.devs[ctx] = d
	}
	return d
}

// NewEventChannel opens an RDMA CM event channel.
func (p *Provider) NewEventChannel() (provider.EventChannel, error) {
	ch, err := C.rdma_create_event_channel()
	if ch == nil {
		if en, ok := err.(syscall.Errno); ok {
			return nil, opErr("rdma_create_event_channel", -int(en))
		}
		return nil, &provider.OpError{Op: "rdma_create_event_channel", Err: provider.ErrNoDevice}
	}
	pfd, perr := newPollFD(int(ch.fd), "rdma_cm")
	if perr != nil {
		C.rdma_destroy_event_channel(ch)
		return nil, &provider.OpError{Op: "rdma_create_event_channel", Err: perr}
	}
	ec := &eventChannel{p: p, ch: ch, pfd: pfd, ids: make(map[*C.struct_rdma_cm_id]*cmID)}
	ec.cleanup = runtime.AddCleanup(ec, func(h *C.struct_rdma_event_channel) { C.rdma_destroy_event_channel(h) }, ch)
	return ec, nil
}

type eventChannel struct {
	p       *Provider
	ch      *C.struct_rdma_event_channel
	pfd     *pollFD
	mu      sync.Mutex
	ids     map[*C.struct_rdma_cm_id]*cmID
	closed  bool
	cleanup runtime.Cleanup
}

func toGVAddr(ap netip.AddrPort) (C.struct_gv_addr, error) {
	var a C.struct_gv_addr
	ip := ap.Addr()
	a.port = C.uint16_t(ap.Port())
	switch {
	case !ip.IsValid():
		return a, nil
	case ip.Is4() || ip.Is4In6():
		a.family = 4
		b := ip.Unmap().As4()
		for i, x := range b {
			a.ip[i] = C.uint8_t(x)
		}
	default:
		a.family = 6
		b := ip.As16()
		for i, x := range b {
			a.ip[i] = C.uint8_t(x)
		}
		if z := ip.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return a, &provider.OpError{Op: "resolve zone", Err: provider.ErrAddrNotAvail}
			}
			a.scope = C.uint32_t(ifi.Index)
		}
	}
	return a, nil
}

func fromGVAddr(a *C.struct_gv_addr) netip.AddrPort {
	switch a.family {
	case 4:
		var b [4]byte
		for i := range b {
			b[i] = byte(a.ip[i])
		}
		return netip.AddrPortFrom(netip.AddrFrom4(b), uint16(a.port))
	case 6:
		var b [16]byte
		for i := range b {
			b[i] = byte(a.ip[i])
		}
		ip := netip.AddrFrom16(b)
		if a.scope != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.scope)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(ip, uint16(a.port))
	}
	return netip.AddrPort{}
}

func (ec *eventChannel) newID(cid *C.struct_rdma_cm_id) *cmID {
	id := &cmID{ec: ec, cid: cid}
	ec.mu.Lock()
	ec.ids[cid] = id
	ec.mu.Unlock()
	return id
}

// CreateID creates an identifier for an active connection.
func (ec *eventChannel) CreateID() (provider.ID, error) {
	var cid *C.struct_rdma_cm_id
	if r := C.gv_create_id(ec.ch, &cid); r != 0 {
		return nil, opErr("rdma_create_id", int(r))
	}
	return ec.newID(cid), nil
}

// Listen binds and listens.
func (ec *eventChannel) Listen(addr netip.AddrPort, backlog int) (provider.ID, error) {
	a, err := toGVAddr(addr)
	if err != nil {
		return nil, err
	}
	if a.family == 0 {
		a.family = 4
	}
	var cid *C.struct_rdma_cm_id
	if r := C.gv_create_id(ec.ch, &cid); r != 0 {
		return nil, opErr("rdma_create_id", int(r))
	}
	if r := C.gv_listen(cid, &a, C.int(backlog)); r != 0 {
		C.gv_destroy_id(cid)
		return nil, opErr("rdma_listen "+addr.String(), int(r))
	}
	return ec.newID(cid), nil
}

var eventTypes = map[C.int32_t]provider.EventType{
	C.RDMA_CM_EVENT_ADDR_RESOLVED:    provider.EventAddrResolved,
	C.RDMA_CM_EVENT_ADDR_ERROR:       provider.EventAddrError,
	C.RDMA_CM_EVENT_ROUTE_RESOLVED:   provider.EventRouteResolved,
	C.RDMA_CM_EVENT_ROUTE_ERROR:      provider.EventRouteError,
	C.RDMA_CM_EVENT_CONNECT_REQUEST:  provider.EventConnectRequest,
	C.RDMA_CM_EVENT_CONNECT_RESPONSE: provider.EventConnectResponse,
	C.RDMA_CM_EVENT_CONNECT_ERROR:    provider.EventConnectError,
	C.RDMA_CM_EVENT_UNREACHABLE:      provider.EventUnreachable,
	C.RDMA_CM_EVENT_REJECTED:         provider.EventRejected,
	C.RDMA_CM_EVENT_ESTABLISHED:      provider.EventEstablished,
	C.RDMA_CM_EVENT_DISCONNECTED:     provider.EventDisconnected,
	C.RDMA_CM_EVENT_DEVICE_REMOVAL:   provider.EventDeviceRemoval,
	C.RDMA_CM_EVENT_MULTICAST_JOIN:   provider.EventMulticastJoin,
	C.RDMA_CM_EVENT_MULTICAST_ERROR:  provider.EventMulticastError,
	C.RDMA_CM_EVENT_ADDR_CHANGE:      provider.EventAddrChange,
	C.RDMA_CM_EVENT_TIMEWAIT_EXIT:    provider.EventTimewaitExit,
}

// Next returns the next event for a live identifier.
func (ec *eventChannel) Next(deadline time.Time) (provider.Event, error) {
	for {
		var out C.struct_gv_event
		var gerr C.int
		err := ec.pfd.wait(deadline, func() bool {
			gerr = C.gv_get_event(ec.ch, &out)
			return gerr != -C.EAGAIN
		})
		if err != nil {
			return provider.Event{}, waitErr("rdma_get_cm_event", err)
		}
		if gerr != 0 {
			return provider.Event{}, opErr("rdma_get_cm_event", int(gerr))
		}
		// Look the identifiers up before acknowledging: until then
		// rdma_destroy_id of the event's identifier cannot return, so
		// its address cannot have been reused.
		typ, ok := eventTypes[out._type]
		if !ok {
			typ = provider.EventType(out._type)
		}
		ev := provider.Event{Type: typ, Status: int(out.status)}
		ec.mu.Lock()
		var id *cmID
		if typ == provider.EventConnectRequest {
			if l := ec.ids[out.listen_id]; l != nil {
				ev.Listen = l
				id = &cmID{ec: ec, cid: out.id}
				ec.ids[out.id] = id
			}
		} else {
			id = ec.ids[out.id]
		}
		ec.mu.Unlock()
		if n := int(out.pdata_len); n > 0 {
			ev.Param.PrivateData = C.GoBytes(unsafe.Pointer(&out.pdata[0]), C.int(n))
		}
		ev.Param.ResponderResources = uint8(out.responder_resources)
		ev.Param.InitiatorDepth = uint8(out.initiator_depth)
		ev.Param.RetryCount = uint8(out.retry_count)
		ev.Param.RNRRetryCount = uint8(out.rnr_retry_count)
		C.gv_ack_event(out.ev)
		if id == nil {
			if typ == provider.EventConnectRequest {
				// A request for a listener being destroyed.
				C.gv_destroy_id(out.id)
			}
			continue
		}
		ev.ID = id
		return ev, nil
	}
}

// Interrupt wakes Next.
func (ec *eventChannel) Interrupt() { ec.pfd.interrupt() }

// Close destroys the channel.
func (ec *eventChannel) Close() error {
	ec.mu.Lock()
	if ec.closed {
		ec.mu.Unlock()
		return nil
	}
	if n := len(ec.ids); n > 0 {
		ec.mu.Unlock()
		return &provider.OpError{Op: "rdma_destroy_event_channel", Err: fmt.Errorf("%d identifiers still open", n)}
	}
	ec.closed = true
	ec.mu.Unlock()
	ec.cleanup.Stop()
	ec.pfd.close()
	C.rdma_destroy_event_channel(ec.ch)
	return nil
}

type cmID struct {
	ec   *eventChannel
	cid  *C.struct_rdma_cm_id
	mu   sync.Mutex
	qp   *qp
	gone bool
}

func (id *cmID) Device() provider.Device {
	if d := id.ec.p.device(id.cid.verbs); d != nil {
		return d
	}
	return nil
}

func (id *cmID) PortNum() uint8 { return uint8(id.cid.port_num) }

func (id *cmID) LocalAddr() netip.AddrPort {
	var a C.struct_gv_addr
	C.gv_get_addr(C.rdma_get_local_addr(id.cid), &a)
	return fromGVAddr(&a)
}

func (id *cmID) RemoteAddr() netip.AddrPort {
	var a C.struct_gv_addr
	C.gv_get_addr(C.rdma_get_peer_addr(id.cid), &a)
	return fromGVAddr(&a)
}

func (id *cmID) ResolveAddr(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	var s C.struct_gv_addr
	var err error
	if src.IsValid() {
		if s, err = toGVAddr(netip.AddrPortFrom(src, 0)); err != nil {
			return err
		}
	}
	d, err := toGVAddr(dst)
	if err != nil {
		return err
	}
	if r := C.gv_resolve_addr(id.cid, &s, &d, C.int(timeout.Milliseconds())); r != 0 {
		return opErr("rdma_resolve_addr", int(r))
	}
	return nil
}

func (id *cmID) ResolveRoute(timeout time.Duration) error {
	if r := C.gv_resolve_route(id.cid, C.int(timeout.Milliseconds())); r != 0 {
		return opErr("rdma_resolve_route", int(r))
	}
	return nil
}

func (id *cmID) CreateQP(pd provider.PD, cq provider.CQ, c provider.QPCap) (provider.QP, error) {
	p, ok1 := pd.(*protDomain)
	q, ok2 := cq.(*complQueue)
	if !ok1 || !ok2 {
		return nil, &provider.OpError{Op: "rdma_create_qp", Err: provider.ErrInvalid}
	}
	r := C.gv_create_qp(id.cid, p.pd, q.cq, C.int(c.MaxSendWR), C.int(c.MaxRecvWR),
		C.int(max(c.MaxSendSGE, 1)), C.int(max(c.MaxRecvSGE, 1)), C.int(c.MaxInline))
	if r < 0 {
		return nil, opErr("rdma_create_qp", int(r))
	}
	x := &qp{id: id, qp: id.cid.qp, inline: int(r)}
	id.mu.Lock()
	id.qp = x
	id.mu.Unlock()
	return x, nil
}

func pdata(b []byte) (unsafe.Pointer, C.int) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&b[0]), C.int(len(b))
}

func (id *cmID) Connect(p *provider.ConnParam) error {
	ptr, n := pdata(p.PrivateData)
	if r := C.gv_connect(id.cid, ptr, n, C.int(p.ResponderResources), C.int(p.InitiatorDepth),
		C.int(p.RetryCount), C.int(p.RNRRetryCount)); r != 0 {
		return opErr("rdma_connect", int(r))
	}
	runtime.KeepAlive(p)
	return nil
}

func (id *cmID) Accept(p *provider.ConnParam) error {
	ptr, n := pdata(p.PrivateData)
	if r := C.gv_accept(id.cid, ptr, n, C.int(p.ResponderResources), C.int(p.InitiatorDepth),
		C.int(p.RNRRetryCount)); r != 0 {
		return opErr("rdma_accept", int(r))
	}
	runtime.KeepAlive(p)
	return nil
}

func (id *cmID) Reject(b []byte) error {
	ptr, n := pdata(b)
	if r := C.gv_reject(id.cid, ptr, n); r != 0 {
		return opErr("rdma_reject", int(r))
	}
	runtime.KeepAlive(b)
	return nil
}

func (id *cmID) Disconnect() error {
	if r := C.gv_disconnect(id.cid); r != 0 {
		return opErr("rdma_disconnect", int(r))
	}
	return nil
}

func (id *cmID) Destroy() error {
	id.mu.Lock()
	if id.gone {
		id.mu.Unlock()
		return nil
	}
	id.gone = true
	q := id.qp
	id.mu.Unlock()
	if q != nil {
		q.Close()
	}
	id.ec.mu.Lock()
	delete(id.ec.ids, id.cid)
	id.ec.mu.Unlock()
	if r := C.gv_destroy_id(id.cid); r != 0 {
		return opErr("rdma_destroy_id", int(r))
	}
	return nil
}

type device struct {
	ctx  *C.struct_ibv_context
	name string
	attr provider.DeviceAttr
}

func (d *device) Name() string              { return d.name }
func (d *device) Attr() provider.DeviceAttr { return d.attr }

func (d *device) PortAttr(port uint8) (provider.PortAttr, error) {
	var a C.struct_gv_port_attr
	if r := C.gv_query_port(d.ctx, C.uint8_t(port), &a); r != 0 {
		return provider.PortAttr{}, opErr("ibv_query_port", int(r))
	}
	pa := provider.PortAttr{MaxMsgSize: uint32(a.max_msg_sz), Active: a.state == C.IBV_PORT_ACTIVE}
	switch a.link_layer {
	case C.IBV_LINK_LAYER_ETHERNET:
		pa.LinkLayer = "Ethernet"
	default:
		pa.LinkLayer = "InfiniBand"
	}
	for i := range pa.GID {
		pa.GID[i] = byte(a.gid[i])
	}
	return pa, nil
}

func (d *device) AllocPD() (provider.PD, error) {
	var e C.int
	pd := C.gv_alloc_pd(d.ctx, &e)
	if pd == nil {
		return nil, opErr("ibv_alloc_pd", int(e))
	}
	p := &protDomain{pd: pd}
	p.cleanup = runtime.AddCleanup(p, func(h *C.struct_ibv_pd) { C.ibv_dealloc_pd(h) }, pd)
	return p, nil
}

type protDomain struct {
	pd      *C.struct_ibv_pd
	cleanup runtime.Cleanup
	once    sync.Once
}

func (p *protDomain) Register(size int, access provider.Access) (provider.MR, error) {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, &provider.OpError{Op: "mmap", Err: provider.ErrNoMemory}
	}
	var acc C.int
	if access&provider.AccessLocalWrite != 0 {
		acc |= C.IBV_ACCESS_LOCAL_WRITE
	}
	if access&provider.AccessRemoteWrite != 0 {
		acc |= C.IBV_ACCESS_REMOTE_WRITE
	}
	if access&provider.AccessRemoteRead != 0 {
		acc |= C.IBV_ACCESS_REMOTE_READ
	}
	var e C.int
	mr := C.gv_reg_mr(p.pd, unsafe.Pointer(&mem[0]), C.size_t(size), acc, &e)
	if mr == nil {
		syscall.Munmap(mem)
		return nil, opErr("ibv_reg_mr", int(e))
	}
	m := &memRegion{mr: mr, mem: mem}
	m.cleanup = runtime.AddCleanup(m, func(h *C.struct_ibv_mr) { C.ibv_dereg_mr(h) }, mr)
	return m, nil
}

func (p *protDomain) Close() error {
	var err error
	p.once.Do(func() {
		p.cleanup.Stop()
		if r := C.ibv_dealloc_pd(p.pd); r != 0 {
			err = opErr("ibv_dealloc_pd", int(r))
		}
	})
	return err
}

type memRegion struct {
	mr      *C.struct_ibv_mr
	mem     []byte
	cleanup runtime.Cleanup
	once    sync.Once
}

func (m *memRegion) Bytes() []byte { return m.mem }
func (m *memRegion) Addr() uint64  { return uint64(uintptr(unsafe.Pointer(&m.mem[0]))) }
func (m *memRegion) LKey() uint32  { return uint32(m.mr.lkey) }
func (m *memRegion) RKey() uint32  { return uint32(m.mr.rkey) }

func (m *memRegion) Close() error {
	var err error
	m.once.Do(func() {
		m.cleanup.Stop()
		if r := C.ibv_dereg_mr(m.mr); r != 0 {
			err = opErr("ibv_dereg_mr", int(r))
			return
		}
		syscall.Munmap(m.mem)
	})
	return err
}

func (d *device) CreateCQ(cqe int) (provider.CQ, error) {
	var e C.int
	ch := C.gv_create_comp_channel(d.ctx, &e)
	if ch == nil {
		return nil, opErr("ibv_create_comp_channel", int(e))
	}
	cq := C.gv_create_cq(d.ctx, C.int(cqe), ch, &e)
	if cq == nil {
		C.ibv_destroy_comp_channel(ch)
		return nil, opErr("ibv_create_cq", int(e))
	}
	pfd, err := newPollFD(int(ch.fd), "ibv_comp_channel")
	if err != nil {
		C.ibv_destroy_cq(cq)
		C.ibv_destroy_comp_channel(ch)
		return nil, &provider.OpError{Op: "ibv_create_comp_channel", Err: err}
	}
	q := &complQueue{ch: ch, cq: cq, pfd: pfd}
	q.cleanup = runtime.AddCleanup(q, func(h cqHandles) {
		C.ibv_destroy_cq(h.cq)
		C.ibv_destroy_comp_channel(h.ch)
	}, cqHandles{cq, ch})
	return q, nil
}

type cqHandles struct {
	cq *C.struct_ibv_cq
	ch *C.struct_ibv_comp_channel
}

type complQueue struct {
	ch      *C.struct_ibv_comp_channel
	cq      *C.struct_ibv_cq
	pfd     *pollFD
	unacked int // events got and not acknowledged; Wait's caller only
	cleanup runtime.Cleanup
	once    sync.Once
}

func (q *complQueue) Poll(wc []provider.WC) (int, error) {
	var out [C.GV_BATCH]C.struct_gv_wc
	n := min(len(wc), C.GV_BATCH)
	if n == 0 {
		return 0, nil
	}
	r := C.gv_poll(q.cq, &out[0], C.int(n))
	if r < 0 {
		return 0, opErr("ibv_poll_cq", int(r))
	}
	for i := 0; i < int(r); i++ {
		o := &out[i]
		wc[i] = provider.WC{ID: uint64(o.wr_id), Status: provider.WCStatus(o.status),
			Op: provider.WCOpcode(o.opcode), Len: uint32(o.byte_len), QPNum: uint32(o.qp_num)}
	}
	return int(r), nil
}

func (q *complQueue) Arm() error {
	if r := C.gv_req_notify(q.cq); r != 0 {
		return opErr("ibv_req_notify_cq", int(r))
	}
	return nil
}

func (q *complQueue) Wait(deadline time.Time) error {
	var gerr C.int
	err := q.pfd.wait(deadline, func() bool {
		gerr = C.gv_get_cq_event(q.ch)
		return gerr != -C.EAGAIN
	})
	if err != nil {
		return waitErr("ibv_get_cq_event", err)
	}
	if gerr != 0 {
		return opErr("ibv_get_cq_event", int(gerr))
	}
	// ibv_ack_cq_events takes a mutex: acknowledge in batches.
	if q.unacked++; q.unacked >= 64 {
		C.gv_ack_cq_events(q.cq, C.uint(q.unacked))
		q.unacked = 0
	}
	return nil
}

func (q *complQueue) Interrupt() { q.pfd.interrupt() }

func (q *complQueue) Close() error {
	var err error
	q.once.Do(func() {
		q.cleanup.Stop()
		q.pfd.close()
		if q.unacked > 0 {
			C.gv_ack_cq_events(q.cq, C.uint(q.unacked))
		}
		if r := C.ibv_destroy_cq(q.cq); r != 0 {
			err = opErr("ibv_destroy_cq", int(r))
		}
		C.ibv_destroy_comp_channel(q.ch)
	})
	return err
}

type qp struct {
	id     *cmID
	qp     *C.struct_ibv_qp
	inline int
	once   sync.Once
}

func (q *qp) Num() uint32 { return uint32(q.qp.qp_num) }

func (q *qp) PostSend(wrs []provider.SendWR) (int, error) {
	var arr [C.GV_BATCH]C.struct_gv_swr
	done := 0
	for done < len(wrs) {
		k := min(len(wrs)-done, C.GV_BATCH)
		for i := 0; i < k; i++ {
			w := &wrs[done+i]
			a := &arr[i]
			a.wr_id = C.uint64_t(w.ID)
			a.laddr = C.uint64_t(w.Local.Addr)
			a.len = C.uint32_t(w.Local.Len)
			a.lkey = C.uint32_t(w.Local.LKey)
			a.raddr = C.uint64_t(w.RemoteAddr)
			a.rkey = C.uint32_t(w.RKey)
			a.opcode = C.uint8_t(w.Op)
			a.flags = C.uint8_t(w.Flags)
		}
		var posted C.int
		r := C.gv_post_send(q.qp, &arr[0], C.int(k), &posted)
		done += int(posted)
		if r != 0 {
			return done, opErr("ibv_post_send", int(r))
		}
	}
	return done, nil
}

func (q *qp) PostRecv(wrs []provider.RecvWR) (int, error) {
	var arr [C.GV_BATCH]C.struct_gv_rwr
	done := 0
	for done < len(wrs) {
		k := min(len(wrs)-done, C.GV_BATCH)
		for i := 0; i < k; i++ {
			w := &wrs[done+i]
			a := &arr[i]
			a.wr_id = C.uint64_t(w.ID)
			a.addr = C.uint64_t(w.Local.Addr)
			a.len = C.uint32_t(w.Local.Len)
			a.lkey = C.uint32_t(w.Local.LKey)
		}
		var posted C.int
		r := C.gv_post_recv(q.qp, &arr[0], C.int(k), &posted)
		done += int(posted)
		if r != 0 {
			return done, opErr("ibv_post_recv", int(r))
		}
	}
	return done, nil
}

func (q *qp) Close() error {
	q.once.Do(func() { C.gv_destroy_qp(q.id.cid) })
	return nil
}

var (
	_ provider.Provider     = (*Provider)(nil)
	_ provider.EventChannel = (*eventChannel)(nil)
	_ provider.ID           = (*cmID)(nil)
	_ provider.Device       = (*device)(nil)
	_ provider.PD           = (*protDomain)(nil)
	_ provider.MR           = (*memRegion)(nil)
	_ provider.CQ           = (*complQueue)(nil)
	_ provider.QP           = (*qp)(nil)
)
