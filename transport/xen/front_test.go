package xen_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xensim"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// vfront is a test vscsiif frontend over a simulated guest: what Linux
// xen-scsifront does at attach (scsifront_probe, scsifront_init_ring),
// on backend state changes (scsifront_backend_changed, LUN hotplug) and
// per command (direct segments, indirect pages with feature-sg-grant).
// It implements scsitest.Initiator.
type vfront struct {
	g       *xensim.Guest
	st      xen.Store
	fe, be  string
	backend xen.DomID
	vhost   int

	ringFrame uint32
	ringMem   []byte
	ringRef   xen.GrantRef
	evt       xen.EventChannel
	fr        *vscsiif.FrontRing
	sgGrant   int

	mu      sync.Mutex
	free    []uint16
	waiters map[uint16]chan result
	luns    map[string]xen.Addr // dev-N -> address the "SCSI midlayer" added
	state   xenbus.State
	closed  chan struct{}
	stopped bool
	changes chan struct{}
	notes   []string
	// rawNext, if set, replaces the next request's bytes (hostile tests)
	rawNext []byte

	// respDone is closed when the responses goroutine has returned: after
	// that nothing touches the ring page, and the guest may free it
	respDone  chan struct{}
	closeOnce sync.Once
}

type result struct {
	rsp   vscsiif.Response
	sense []byte
	err   error
}

var errFrontClosed = errors.New("vfront: device closed")

// dialFront waits for device/vscsi/<vhost> and attaches like scsifront.
func dialFront(ctx context.Context, g *xensim.Guest, vhost int, ringStart uint32) (*vfront, error) {
	st, err := g.Store()
	if err != nil {
		return nil, err
	}
	f := &vfront{g: g, st: st, vhost: vhost, fe: fmt.Sprintf("/local/domain/%d/device/vscsi/%d", g.ID(), vhost),
		waiters: map[uint16]chan result{}, luns: map[string]xen.Addr{}, closed: make(chan struct{}), changes: make(chan struct{}, 1)}
	for i := 0; i < vscsiif.RingSize; i++ {
		f.free = append(f.free, uint16(i))
	}
	if err := st.Watch(f.fe, "fe"); err != nil {
		return nil, err
	}
	// wait for the toolstack's nodes
	for {
		be, err1 := st.Read(0, f.fe+"/backend")
		id, err2 := st.Read(0, f.fe+"/backend-id")
		s, err3 := st.Read(0, f.fe+"/state")
		if err1 == nil && err2 == nil && err3 == nil && xenbus.ParseState(s) == xenbus.Initialising {
			n, _ := strconv.Atoi(id)
			f.be, f.backend = be, xen.DomID(n)
			break
		}
		if err := waitEvent(ctx, st); err != nil {
			return nil, fmt.Errorf("vfront: waiting for device nodes: %w", err)
		}
	}
	// the ring page and event channel
	frame, mem, err := g.AllocPages(1)
	if err != nil {
		return nil, err
	}
	f.ringFrame, f.ringMem = frame, mem
	if err := vscsiif.InitSharedRing(mem, ringStart); err != nil {
		return nil, err
	}
	if f.fr, err = vscsiif.AttachFrontRing(mem); err != nil {
		return nil, err
	}
	if f.ringRef, err = g.AllocRef(); err != nil {
		return nil, err
	}
	g.Grant(f.ringRef, f.backend, frame, false)
	if f.evt, err = g.AllocUnbound(f.backend); err != nil {
		return nil, err
	}
	if err := st.Watch(f.be, "be"); err != nil {
		return nil, err
	}
	for _, kv := range [][2]string{{"ring-ref", strconv.Itoa(int(f.ringRef))}, {"event-channel", strconv.Itoa(int(f.evt.LocalPort()))}, {"state", "3"}} {
		if err := st.Write(0, f.fe+"/"+kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("vfront: writing %s: %w", kv[0], err)
		}
	}
	f.state = xenbus.Initialised
	f.respDone = make(chan struct{})
	go f.responses()
	go f.watch()
	// wait for Connected
	for {
		f.mu.Lock()
		s, stopped := f.state, f.stopped
		f.mu.Unlock()
		if s == xenbus.Connected {
			return f, nil
		}
		if stopped {
			return nil, errFrontClosed
		}
		select {
		case <-f.changes:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func waitEvent(ctx context.Context, st xen.Store) error {
	select {
	case _, ok := <-st.Events():
		if !ok {
			return xen.ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *vfront) note(s string) {
	f.notes = append(f.notes, s)
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

// watch plays scsifront_backend_changed.
func (f *vfront) watch() {
	for range f.st.Events() {
		s, err := f.st.Read(0, f.be+"/state")
		if err != nil {
			f.disconnect("backend directory gone")
			return
		}
		bs := xenbus.ParseState(s)
		f.mu.Lock()
		my := f.state
		f.mu.Unlock()
		switch bs {
		case xenbus.Connected:
			// scsifront_read_backend_params
			sg, _ := f.st.Read(0, f.be+"/feature-sg-grant")
			f.mu.Lock()
			f.sgGrant, _ = strconv.Atoi(sg)
			f.mu.Unlock()
			if my == xenbus.Initialised {
				f.hotplug(true)
			}
			if my != xenbus.Connected {
				f.setState(xenbus.Connected)
			}
		case xenbus.Closing, xenbus.Closed:
			if my != xenbus.Closed {
				f.disconnect("backend " + bs.String())
				return
			}
		case xenbus.Reconfiguring:
			if my != xenbus.Reconfiguring {
				f.hotplug(false)
				f.setState(xenbus.Reconfiguring)
			}
		case xenbus.Reconfigured:
			if my == xenbus.Reconfiguring {
				f.hotplug(true)
				f.setState(xenbus.Connected)
			}
		}
	}
}

func (f *vfront) setState(s xenbus.State) {
	f.st.Write(0, f.fe+"/state", strconv.Itoa(int(s)))
	f.mu.Lock()
	f.state = s
	f.note("state " + s.String())
	f.mu.Unlock()
}

// hotplug is scsifront_do_lun_hotplug: add entries Initialised, or drop
// entries Closing.
func (f *vfront) hotplug(add bool) {
	names, _ := f.st.List(0, f.be+"/vscsi-devs")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		s, err := f.st.Read(0, f.be+"/vscsi-devs/"+n+"/state")
		if err != nil {
			continue
		}
		v, _ := f.st.Read(0, f.be+"/vscsi-devs/"+n+"/v-dev")
		a, err := xen.ParseAddr(v)
		if err != nil {
			continue
		}
		switch st := xenbus.ParseState(s); {
		case add && st == xenbus.Initialised:
			f.luns[n] = a
			f.st.Write(0, f.fe+"/vscsi-devs/"+n+"/state", "4")
			f.note("add " + n)
		case !add && st == xenbus.Closing:
			delete(f.luns, n)
			f.st.Write(0, f.fe+"/vscsi-devs/"+n+"/state", "6")
			f.note("remove " + n)
		}
	}
}

// disconnect is scsifront_disconnect: the host goes, commands still
// waiting fail, state Closed.
func (f *vfront) disconnect(why string) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	f.state = xenbus.Closed
	f.note("closed: " + why)
	f.mu.Unlock()
	f.st.Write(0, f.fe+"/state", "6")
	close(f.closed)
}

func (f *vfront) LUNs() map[string]xen.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]xen.Addr{}
	for k, v := range f.luns {
		out[k] = v
	}
	return out
}

func (f *vfront) Notes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.notes, "; ")
}

// responses consumes the response ring (scsifront_ring_drain).
func (f *vfront) responses() {
	defer close(f.respDone)
	sense := make([]byte, vscsiif.SenseBufferSize)
	for {
		for {
			f.mu.Lock()
			if f.stopped {
				// disconnected: the ring page may be going away
				f.mu.Unlock()
				return
			}
			if f.fr.Responses() == 0 && !f.fr.FinalCheck() {
				f.mu.Unlock()
				break
			}
			var rsp vscsiif.Response
			f.fr.GetResponse(&rsp, sense)
			s := append([]byte(nil), rsp.Sense...)
			ch := f.waiters[rsp.Rqid]
			delete(f.waiters, rsp.Rqid)
			f.mu.Unlock()
			if ch != nil {
				ch <- result{rsp: rsp, sense: s}
			}
		}
		if err := f.evt.Wait(); err != nil {
			return
		}
	}
}

// submit puts one request on the ring and waits for its response.
func (f *vfront) submit(ctx context.Context, req *vscsiif.Request) (result, error) {
	ch := make(chan result, 1)
	var rqid uint16
	for {
		f.mu.Lock()
		if f.stopped {
			f.mu.Unlock()
			return result{}, errFrontClosed
		}
		if len(f.free) > 0 && f.fr.Free() > 0 {
			rqid = f.free[0]
			f.free = f.free[1:]
			break
		}
		f.mu.Unlock()
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	req.Rqid = rqid
	f.waiters[req.Rqid] = ch
	if f.rawNext != nil {
		f.fr.PutRaw(f.rawNext)
		f.rawNext = nil
	} else {
		f.fr.PutRequest(req)
	}
	notify := f.fr.Push()
	f.mu.Unlock()
	if notify {
		f.evt.Notify()
	}
	defer func() {
		f.mu.Lock()
		f.free = append(f.free, rqid)
		f.mu.Unlock()
	}()
	select {
	case r := <-ch:
		return r, nil
	case <-f.closed:
		return result{}, errFrontClosed
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

func lunAddr(sam uint64) (id, lun uint16) {
	n := uint16(sam >> 48)
	if n&0xc000 == 0x4000 {
		n &= 0x3fff
	}
	return n >> 8, n & 0xff
}

// Do runs one command: the data buffer is granted page by page (read-only
// for a write), as direct segments up to 26 pages and through indirect
// pages beyond, when the backend offers feature-sg-grant.
func (f *vfront) Do(ctx context.Context, r *scsitest.Request) (*scsitest.Response, error) {
	req := &vscsiif.Request{Act: vscsiif.ActSCSICDB, CmdLen: uint8(len(r.CDB)), Dir: vscsiif.DirNone, Timeout: 30}
	copy(req.CDB[:], r.CDB)
	req.ID, req.LUN = lunAddr(r.LUN)
	n := len(r.DataOut)
	if r.InLen > 0 {
		n = r.InLen
		req.Dir = vscsiif.DirFromDevice
	} else if n > 0 {
		req.Dir = vscsiif.DirToDevice
	}
	pages := (n + xen.PageSize - 1) / xen.PageSize
	var frame uint32
	var mem []byte
	var refs []xen.GrantRef
	release := func() {
		for _, ref := range refs {
			f.g.FreeRef(ref)
		}
		if mem != nil {
			f.g.FreePages(frame, (len(mem)+xen.PageSize-1)/xen.PageSize)
		}
	}
	defer release()
	if pages > 0 {
		var err error
		indPages := 0
		if pages > vscsiif.SGTableSize {
			f.mu.Lock()
			sg := f.sgGrant
			f.mu.Unlock()
			if pages > sg {
				return nil, fmt.Errorf("vfront: %d pages exceed feature-sg-grant %d", pages, sg)
			}
			indPages = (pages + vscsiif.SGPerPage - 1) / vscsiif.SGPerPage
		}
		frame, mem, err = f.g.AllocPages(pages + indPages)
		if err != nil {
			return nil, err
		}
		copy(mem, r.DataOut)
		segs := make([]vscsiif.Segment, pages)
		for i := range segs {
			ref, err := f.g.AllocRef()
			if err != nil {
				return nil, err
			}
			refs = append(refs, ref)
			f.g.Grant(ref, f.backend, frame+uint32(i), req.Dir == vscsiif.DirToDevice)
			l := min(n-i*xen.PageSize, xen.PageSize)
			segs[i] = vscsiif.Segment{Gref: uint32(ref), Length: uint16(l)}
		}
		if indPages == 0 {
			req.NSeg = copy(req.Seg[:], segs)
		} else {
			list := mem[pages*xen.PageSize:]
			vscsiif.EncodeSegments(list, segs)
			req.Indirect = true
			for p := 0; p < indPages; p++ {
				ref, err := f.g.AllocRef()
				if err != nil {
					return nil, err
				}
				refs = append(refs, ref)
				f.g.Grant(ref, f.backend, frame+uint32(pages+p), true)
				cnt := min(len(segs)-p*vscsiif.SGPerPage, vscsiif.SGPerPage)
				req.Seg[p] = vscsiif.Segment{Gref: uint32(ref), Length: uint16(cnt * vscsiif.SegmentSize)}
			}
			req.NSeg = indPages
		}
	}
	res, err := f.submit(ctx, req)
	if err != nil {
		return nil, err
	}
	if host := uint8(res.rsp.Rslt >> 16); host != vscsiif.HostOK {
		return nil, fmt.Errorf("vfront: host byte %d", host)
	}
	out := &scsitest.Response{Status: scsi.Status(res.rsp.Rslt & 0xff), Sense: res.sense}
	if r.InLen > 0 {
		got := r.InLen - int(res.rsp.Residual)
		out.Data = append([]byte(nil), mem[:max(got, 0)]...)
		out.InResidual = int(res.rsp.Residual)
	} else {
		out.OutResidual = int(res.rsp.Residual)
	}
	return out, nil
}

// TMF sends ABORT (of refRqid) or RESET and returns rslt.
func (f *vfront) TMF(ctx context.Context, act uint8, lun uint64, refRqid uint16) (int32, error) {
	req := &vscsiif.Request{Act: act, Dir: vscsiif.DirNone, RefRqid: refRqid}
	req.ID, req.LUN = lunAddr(lun)
	res, err := f.submit(ctx, req)
	return res.rsp.Rslt, err
}

// Close removes the frontend as the guest's xenbus would on module
// unload: state Closing, then Closed.
// Close disconnects and returns once the frontend no longer touches its
// ring page (the guest's memory may be freed after it).
func (f *vfront) Close() {
	f.closeOnce.Do(func() {
		f.disconnect("frontend closed")
		f.evt.Close()
		if f.respDone != nil {
			<-f.respDone
		}
		f.st.Close()
	})
}

var _ scsitest.Initiator = (*vfront)(nil)
var _ = xenstore.None
