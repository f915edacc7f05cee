package frontend

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
)

// VSCSIConfig configures a vscsiif frontend.
type VSCSIConfig struct {
	// VHost is the device number (device/vscsi/<VHost>).
	VHost int
	// RingStart is the value every ring index starts at (0 as in Linux;
	// tests start near 2^32 to cross the wrap).
	RingStart uint32
	// MaxPages is the largest transfer in pages each request slot is
	// prepared for (default: what feature-sg-grant allows, at most 256).
	MaxPages int
}

// VSCSI is a vscsiif frontend, as Linux xen-scsifront: one ring page of 16
// requests, data granted page by page per command (read-only for a
// write), direct segments up to 26 pages and indirect pages beyond when
// the backend offers feature-sg-grant. It implements scsitest.Initiator.
type VSCSI struct {
	d        *device
	cfg      VSCSIConfig
	ringF    uint32
	ringMem  []byte
	ringRef  xen.GrantRef
	ev       xen.EventChannel
	sgGrant  int
	maxPages int

	rmu sync.Mutex // the request producer
	fr  *vscsiif.FrontRing

	slots [vscsiif.RingSize]vslot
	// free holds a token per free rqid, ids the free rqids themselves,
	// the one freed last on top (as scsifront reuses its lowest free
	// ids, a shallow queue keeps touching the same few slots' pages)
	free chan struct{}
	ids  bufpool.Stack[uint16]

	mu      sync.Mutex
	state   xenbus.State
	luns    map[string]LUN
	changed chan struct{}
	done    chan struct{}
	err     error
	once    sync.Once
	// respDone is closed when the response goroutine has returned
	respDone chan struct{}
	// live is held (read) while Submit or Wait use a slot's pages and
	// grant references, and taken by teardown before it frees them: a
	// command racing a Close sees the frontend's end instead of pages
	// already given back (and perhaps granted again by a new frontend)
	live sync.RWMutex

	// hooks for hostile-frontend tests: rewrite a request before it is
	// published, or publish raw bytes
	tamper func(slot []byte)
}

// LUN is a LUN the backend added to the guest (a vscsi-devs entry).
type LUN struct {
	Dev  string // dev-N
	PDev string // the backend's name for it (the LU)
	Addr xen.Addr
}

// SAM is the 8-byte SAM LUN a command uses to reach it.
func (l LUN) SAM() uint64 {
	n, _ := l.Addr.SAMLUN()
	return xen.EncodeLUN(n)
}

type vslot struct {
	frame uint32
	mem   []byte // maxPages data pages, then the indirect pages
	refs  []xen.GrantRef
	ind   []xen.GrantRef
	segs  []vscsiif.Segment
	res   chan vresult
	// inflight is set from Submit until Wait took the result; lun and
	// act say what the request was (for ABORT and RESET).
	inflight atomic.Bool
	lun      uint64
	act      uint8
}

type vresult struct {
	rsp      vscsiif.Response
	sense    [vscsiif.SenseBufferSize]byte
	senseLen int
	aborted  bool // a successful ABORT or RESET ended the request: no response comes
	failed   bool // the frontend stopped (fail): no response comes
}

var _ scsitest.Initiator = (*VSCSI)(nil)

// DialVSCSI attaches to device/vscsi/<vhost> as scsifront_probe does and
// waits until the backend is Connected and the LUNs it offers are added.
func DialVSCSI(ctx context.Context, g Guest, cfg VSCSIConfig) (*VSCSI, error) {
	d, err := openDevice(ctx, g, "vscsi", cfg.VHost)
	if err != nil {
		return nil, err
	}
	f := &VSCSI{d: d, cfg: cfg, free: make(chan struct{}, vscsiif.RingSize), ids: bufpool.Stack[uint16]{Depth: vscsiif.RingSize}, luns: map[string]LUN{},
		changed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := f.attach(ctx); err != nil {
		f.fail(err)
		f.teardown()
		return nil, err
	}
	return f, nil
}

func (f *VSCSI) attach(ctx context.Context) error {
	d, g := f.d, f.d.g
	if err := d.wait(ctx, func() (bool, error) {
		s, err := d.st.Read(0, d.fe+"/state")
		return err == nil && xenbus.ParseState(s) == xenbus.Initialising, nil
	}); err != nil {
		return fmt.Errorf("frontend: waiting for device nodes: %w", err)
	}
	// feature-sg-grant is written at the backend's probe (InitWait);
	// scsifront reads it when the backend connects, the slots need it now.
	if err := d.wait(ctx, func() (bool, error) {
		_, err := d.st.Read(0, d.be+"/feature-sg-grant")
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("frontend: waiting for the backend: %w", err)
	}
	sg, _ := d.readUint("feature-sg-grant")
	f.sgGrant = int(min(sg, 1<<16))
	f.maxPages = vscsiif.SGTableSize
	if f.sgGrant > f.maxPages {
		f.maxPages = min(f.sgGrant, 256)
	}
	if f.cfg.MaxPages > 0 && f.cfg.MaxPages < f.maxPages {
		f.maxPages = f.cfg.MaxPages
	}
	indPages := 0
	if f.maxPages > vscsiif.SGTableSize {
		indPages = (f.maxPages + vscsiif.SGPerPage - 1) / vscsiif.SGPerPage
	}
	for i := range f.slots {
		s := &f.slots[i]
		fr, mem, err := g.AllocPages(f.maxPages + indPages)
		if err != nil {
			return err
		}
		s.frame, s.mem = fr, mem
		s.segs = make([]vscsiif.Segment, f.maxPages)
		s.res = make(chan vresult, 1)
		for j := 0; j < f.maxPages+indPages; j++ {
			r, err := g.AllocRef()
			if err != nil {
				return err
			}
			if j < f.maxPages {
				s.refs = append(s.refs, r)
			} else {
				s.ind = append(s.ind, r)
			}
		}
	}
	for i := len(f.slots) - 1; i >= 0; i-- {
		f.ids.Push(uint16(i))
		f.free <- struct{}{}
	}
	fr, mem, err := g.AllocPages(1)
	if err != nil {
		return err
	}
	f.ringF, f.ringMem = fr, mem
	if err := vscsiif.InitSharedRing(mem, f.cfg.RingStart); err != nil {
		return err
	}
	if f.fr, err = vscsiif.AttachFrontRing(mem); err != nil {
		return err
	}
	if f.ringRef, err = g.AllocRef(); err != nil {
		return err
	}
	g.Grant(f.ringRef, d.backendID, fr, false)
	if f.ev, err = g.AllocUnbound(d.backendID); err != nil {
		return err
	}
	if err := d.writeNodes([][2]string{{"ring-ref", strconv.Itoa(int(f.ringRef))},
		{"event-channel", strconv.Itoa(int(f.ev.LocalPort()))}}, xenbus.Initialised); err != nil {
		return err
	}
	f.state = xenbus.Initialised
	f.respDone = make(chan struct{})
	go f.responses()
	go f.watch()
	for {
		f.mu.Lock()
		s := f.state
		f.mu.Unlock()
		if s == xenbus.Connected {
			return nil
		}
		select {
		case <-f.changed:
		case <-f.done:
			return f.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *VSCSI) note() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *VSCSI) setState(s xenbus.State) {
	f.d.setState(s)
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	f.note()
}

// watch is scsifront_backend_changed.
func (f *VSCSI) watch() {
	for {
		select {
		case <-f.done:
			return
		case _, ok := <-f.d.st.Events():
			if !ok {
				f.fail(xen.ErrClosed)
				return
			}
		}
		v, err := f.d.st.Read(0, f.d.be+"/state")
		if err != nil {
			f.fail(fmt.Errorf("%w: its directory is gone", ErrBackendGone))
			return
		}
		bs := xenbus.ParseState(v)
		f.mu.Lock()
		my := f.state
		f.mu.Unlock()
		switch bs {
		case xenbus.Connected:
			if my == xenbus.Initialised {
				f.hotplug(true)
				f.setState(xenbus.Connected)
			}
		case xenbus.Closing, xenbus.Closed:
			f.fail(fmt.Errorf("%w (state %v)", ErrBackendGone, bs))
			return
		case xenbus.Reconfiguring:
			if my == xenbus.Connected {
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

// hotplug is scsifront_do_lun_hotplug: add the entries the backend
// Initialised, or drop those it is Closing.
func (f *VSCSI) hotplug(add bool) {
	st, be := f.d.st, f.d.be
	names, _ := st.List(0, be+"/vscsi-devs")
	for _, n := range names {
		s, err := st.Read(0, be+"/vscsi-devs/"+n+"/state")
		if err != nil {
			continue
		}
		v, _ := st.Read(0, be+"/vscsi-devs/"+n+"/v-dev")
		a, err := xen.ParseAddr(v)
		if err != nil {
			continue
		}
		p, _ := st.Read(0, be+"/vscsi-devs/"+n+"/p-dev")
		switch bs := xenbus.ParseState(s); {
		case add && bs == xenbus.Initialised:
			f.mu.Lock()
			f.luns[n] = LUN{Dev: n, PDev: p, Addr: a}
			f.mu.Unlock()
			st.Write(0, f.d.fe+"/vscsi-devs/"+n+"/state", strconv.Itoa(int(xenbus.Connected)))
		case !add && bs == xenbus.Closing:
			f.mu.Lock()
			delete(f.luns, n)
			f.mu.Unlock()
			st.Write(0, f.d.fe+"/vscsi-devs/"+n+"/state", strconv.Itoa(int(xenbus.Closed)))
		}
	}
	f.note()
}

// LUNs returns the LUNs added, by dev-N name.
func (f *VSCSI) LUNs() map[string]LUN {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]LUN, len(f.luns))
	for k, v := range f.luns {
		out[k] = v
	}
	return out
}

// LUNByName returns the LUN whose p-dev (the backend's LU name) is name.
func (f *VSCSI) LUNByName(name string) (LUN, bool) {
	for _, l := range f.LUNs() {
		if l.PDev == name {
			return l, true
		}
	}
	return LUN{}, false
}

// Changed is signalled after every state or LUN change.
func (f *VSCSI) Changed() <-chan struct{} { return f.changed }

// responses is scsifront's interrupt handler: drain the ring, wake the
// waiters, sleep on the event channel.
func (f *VSCSI) responses() {
	defer close(f.respDone)
	var sense [vscsiif.SenseBufferSize]byte
	var rsp vscsiif.Response
	for {
		for f.fr.Responses() > 0 || f.fr.FinalCheck() {
			n := f.fr.Responses()
			if n > vscsiif.RingSize || n < 0 {
				f.fail(errors.New("frontend: the backend's rsp_prod overflows the ring"))
				return
			}
			f.fr.GetResponse(&rsp, sense[:])
			if int(rsp.Rqid) >= vscsiif.RingSize {
				continue // a response for no request: ignored, as scsifront does (with a warning)
			}
			r := vresult{rsp: rsp}
			r.senseLen = copy(r.sense[:], rsp.Sense)
			r.rsp.Sense = nil
			select {
			case f.slots[rsp.Rqid].res <- r:
			default: // a second response: dropped
			}
		}
		// Poll briefly before sleeping on the event channel (PollSpins).
		for spin := 0; spin < PollSpins && f.fr.Responses() == 0; spin++ {
			runtime.Gosched()
		}
		if f.fr.Responses() > 0 {
			continue
		}
		if err := f.ev.Wait(); err != nil {
			return
		}
	}
}

func (f *VSCSI) fail(err error) {
	f.once.Do(func() {
		f.mu.Lock()
		f.err = err
		f.state = xenbus.Closed
		f.mu.Unlock()
		close(f.done)
		for i := range f.slots {
			if s := &f.slots[i]; s.inflight.Load() {
				select {
				case s.res <- vresult{failed: true}:
				default:
				}
			}
		}
	})
}

// Err is why the frontend stopped.
func (f *VSCSI) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Done is closed when the frontend stops (the backend went away).
func (f *VSCSI) Done() <-chan struct{} { return f.done }

// Result is the outcome of one request.
type Result struct {
	Rslt     int32
	Residual uint32
	Sense    []byte
}

// Host is the host byte of rslt.
func (r *Result) Host() uint8 { return uint8(r.Rslt >> 16) }

// Request is one request: the fields the frontend does not fill itself
// (rqid and the segments). Act defaults to CDB.
type Request struct {
	Act     uint8
	LUN     uint64 // SAM LUN
	CDB     []byte
	DataOut []byte
	InLen   int
	// DiscardIn: Wait leaves the data-in in the granted pages
	// (scsitest.Request.DiscardIn).
	DiscardIn bool
	RefRqid   uint16
	// Rqid is set by Submit.
	Rqid uint16
}

// Pending is a submitted request.
type Pending struct {
	f       *VSCSI
	Rqid    uint16
	inLen   int
	n       int
	discard bool
}

// Submit takes a free request slot, grants the data pages and publishes
// the request. It does not allocate.
func (f *VSCSI) Submit(ctx context.Context, r *Request) (Pending, error) {
	var rqid uint16
	select {
	case <-f.done:
		return Pending{}, f.Err()
	default:
	}
	select {
	case <-f.free: // usually one is free: no select
		rqid, _ = f.ids.Pop()
	default:
		select {
		case <-f.free:
			rqid, _ = f.ids.Pop()
		case <-f.done:
			return Pending{}, f.Err()
		case <-ctx.Done():
			return Pending{}, ctx.Err()
		}
	}
	f.live.RLock()
	defer f.live.RUnlock()
	select {
	case <-f.done:
		return Pending{}, f.Err()
	default:
	}
	s := &f.slots[rqid]
	req := vscsiif.Request{Rqid: rqid, Act: r.Act, Dir: vscsiif.DirNone, RefRqid: r.RefRqid, Timeout: 30}
	if req.Act == 0 {
		req.Act = vscsiif.ActSCSICDB
	}
	req.CmdLen = uint8(copy(req.CDB[:], r.CDB))
	tl := uint16(r.LUN >> 48)
	if tl&0xc000 == 0x4000 {
		tl &= 0x3fff
	}
	req.ID, req.LUN = tl>>8, tl&0xff
	n := len(r.DataOut)
	if r.InLen > 0 {
		n = r.InLen
		req.Dir = vscsiif.DirFromDevice
	} else if n > 0 {
		req.Dir = vscsiif.DirToDevice
	}
	pages := (n + xen.PageSize - 1) / xen.PageSize
	if pages > f.maxPages {
		f.putID(rqid)
		return Pending{}, fmt.Errorf("frontend: a transfer of %d bytes exceeds %d pages", n, f.maxPages)
	}
	g, be := f.d.g, f.d.backendID
	if pages > 0 {
		copy(s.mem, r.DataOut)
		for i := 0; i < pages; i++ {
			g.Grant(s.refs[i], be, s.frame+uint32(i), req.Dir == vscsiif.DirToDevice)
			s.segs[i] = vscsiif.Segment{Gref: uint32(s.refs[i]), Length: uint16(min(n-i*xen.PageSize, xen.PageSize))}
		}
		if pages <= vscsiif.SGTableSize {
			req.NSeg = copy(req.Seg[:], s.segs[:pages])
		} else {
			ind := (pages + vscsiif.SGPerPage - 1) / vscsiif.SGPerPage
			list := s.mem[f.maxPages*xen.PageSize:]
			vscsiif.EncodeSegments(list, s.segs[:pages])
			for p := 0; p < ind; p++ {
				g.Grant(s.ind[p], be, s.frame+uint32(f.maxPages+p), true)
				cnt := min(pages-p*vscsiif.SGPerPage, vscsiif.SGPerPage)
				req.Seg[p] = vscsiif.Segment{Gref: uint32(s.ind[p]), Length: uint16(cnt * vscsiif.SegmentSize)}
			}
			req.Indirect, req.NSeg = true, ind
		}
	}
	r.Rqid = rqid
	s.lun, s.act = r.LUN, req.Act
	s.inflight.Store(true)
	// A free rqid means a free ring slot: an rqid is freed only after its
	// response was consumed.
	f.rmu.Lock()
	if f.tamper != nil {
		var b [vscsiif.RequestSize]byte
		req.Encode(b[:])
		f.tamper(b[:])
		f.fr.PutRaw(b[:])
	} else {
		f.fr.PutRequest(&req)
	}
	kick := f.fr.Push()
	f.rmu.Unlock()
	if kick {
		f.ev.Notify()
	}
	return Pending{f: f, Rqid: rqid, inLen: r.InLen, n: pages, discard: r.DiscardIn}, nil
}

func (f *VSCSI) release(rqid uint16, pages int) {
	s := &f.slots[rqid]
	for i := 0; i < pages; i++ {
		f.d.g.Revoke(s.refs[i])
	}
	for _, r := range s.ind {
		f.d.g.Revoke(r)
	}
	f.putID(rqid)
}

func (f *VSCSI) putID(rqid uint16) {
	f.ids.Push(rqid)
	f.free <- struct{}{}
}

// Wait waits for the response and fills res; data-in is appended to
// in[:0]. When the frontend stops first (the backend went away) the
// request fails with the reason. It allocates only for sense data.
func (p Pending) Wait(ctx context.Context, res *Result, in []byte) ([]byte, error) {
	f := p.f
	s := &f.slots[p.Rqid]
	var r vresult
	if ctx.Done() == nil {
		// Nothing to cancel: one channel receive. fail wakes an
		// in-flight slot itself; a failure before this request was
		// in flight closed done already.
		select {
		case r = <-s.res:
		default:
			select {
			case <-f.done:
				return nil, f.Err()
			default:
				r = <-s.res
			}
		}
	} else {
		select {
		case r = <-s.res:
		case <-f.done:
			return nil, f.Err()
		case <-ctx.Done():
			// the request stays outstanding, as in scsifront until it
			// is aborted or answered; its slot is not reused
			return nil, ctx.Err()
		}
	}
	if r.failed {
		return nil, f.Err()
	}
	f.live.RLock()
	defer f.live.RUnlock()
	select {
	case <-f.done:
		// closed meanwhile: the slot's pages may be given back already
		return nil, f.Err()
	default:
	}
	s.inflight.Store(false)
	if r.aborted {
		f.release(p.Rqid, p.n)
		return nil, scsitest.ErrAborted
	}
	*res = Result{Rslt: r.rsp.Rslt, Residual: r.rsp.Residual}
	if r.senseLen > 0 {
		res.Sense = append([]byte(nil), r.sense[:r.senseLen]...)
	}
	if p.inLen > 0 && !p.discard {
		got := max(0, p.inLen-int(r.rsp.Residual))
		in = append(in[:0], s.mem[:got]...)
	}
	f.release(p.Rqid, p.n)
	return in, nil
}

// Do runs one command.
func (f *VSCSI) Do(ctx context.Context, r *scsitest.Request) (*scsitest.Response, error) {
	req := &Request{LUN: r.LUN, CDB: r.CDB, DataOut: r.DataOut, InLen: r.InLen, DiscardIn: r.DiscardIn}
	p, err := f.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	var in []byte
	if r.InLen > 0 && !r.DiscardIn {
		in = make([]byte, 0, r.InLen)
	}
	res := new(Result)
	in, err = p.Wait(ctx, res, in)
	if err != nil {
		return nil, err
	}
	if h := res.Host(); h != vscsiif.HostOK {
		return nil, &HostError{Host: h}
	}
	out := &scsitest.Response{Status: scsi.Status(res.Rslt & 0xff), Sense: res.Sense, Data: in}
	if r.InLen > 0 {
		out.InResidual = int(res.Residual)
	} else {
		out.OutResidual = int(res.Residual)
	}
	return out, nil
}

// HostError is a command the backend failed with a host byte.
type HostError struct{ Host uint8 }

func (e *HostError) Error() string { return fmt.Sprintf("frontend: host byte %d", e.Host) }

// Abort sends VSCSIIF_ACT_SCSI_ABORT for rqid and returns rslt (0x2002
// SUCCESS, 0x2003 FAILED). After SUCCESS the backend sends no response
// for the aborted request: its Wait returns scsitest.ErrAborted.
func (f *VSCSI) Abort(ctx context.Context, lun uint64, rqid uint16) (int32, error) {
	rslt, err := f.tmf(ctx, &Request{Act: vscsiif.ActSCSIAbort, LUN: lun, RefRqid: rqid})
	if err == nil && rslt == vscsiif.RsltResetSuccess && int(rqid) < len(f.slots) {
		f.aborted(&f.slots[rqid])
	}
	return rslt, err
}

// Reset sends VSCSIIF_ACT_SCSI_RESET (a logical unit reset). After SUCCESS
// the requests outstanding to the LUN get no response: their Waits return
// scsitest.ErrAborted.
func (f *VSCSI) Reset(ctx context.Context, lun uint64) (int32, error) {
	rslt, err := f.tmf(ctx, &Request{Act: vscsiif.ActSCSIReset, LUN: lun})
	if err == nil && rslt == vscsiif.RsltResetSuccess {
		for i := range f.slots {
			if s := &f.slots[i]; s.lun == lun && s.act == vscsiif.ActSCSICDB {
				f.aborted(s)
			}
		}
	}
	return rslt, err
}

// aborted ends a request the backend will not answer (unless its
// response already arrived).
func (f *VSCSI) aborted(s *vslot) {
	if !s.inflight.Load() {
		return
	}
	select {
	case s.res <- vresult{aborted: true}:
	default:
	}
}

func (f *VSCSI) tmf(ctx context.Context, r *Request) (int32, error) {
	p, err := f.Submit(ctx, r)
	if err != nil {
		return 0, err
	}
	var res Result
	if _, err := p.Wait(ctx, &res, nil); err != nil {
		return 0, err
	}
	return res.Rslt, nil
}

// SetTamper installs a hook that may rewrite each encoded request before
// it is put on the ring (hostile-frontend tests).
func (f *VSCSI) SetTamper(t func(slot []byte)) {
	f.rmu.Lock()
	f.tamper = t
	f.rmu.Unlock()
}

// RingPage is the shared ring page (hostile-frontend tests).
func (f *VSCSI) RingPage() []byte { return f.ringMem }

// Ring exposes the front ring (hostile-frontend tests); lock with
// LockRing.
func (f *VSCSI) Ring() *vscsiif.FrontRing { return f.fr }

// LockRing serializes with Submit.
func (f *VSCSI) LockRing() func() { f.rmu.Lock(); return f.rmu.Unlock }

// Notify kicks the backend.
func (f *VSCSI) Notify() error { return f.ev.Notify() }

// Close disconnects as the guest's xenbus does on module unload: state
// Closing, then Closed once the backend let go.
func (f *VSCSI) Close() error {
	f.fail(errors.New("frontend: closed"))
	f.teardown()
	return nil
}

func (f *VSCSI) teardown() {
	d, g := f.d, f.d.g
	if f.ev != nil {
		f.ev.Close()
	}
	// the response goroutine returns on the closed event channel; after
	// that nothing reads the ring page this teardown gives back
	if f.respDone != nil {
		<-f.respDone
	}
	d.setState(xenbus.Closing)
	d.setState(xenbus.Closed)
	d.st.Close()
	// The backend unmaps on Closing; then the pages go back to the guest,
	// once no Submit or Wait uses them (fail closed done before: none
	// starts again).
	f.live.Lock()
	defer f.live.Unlock()
	for i := range f.slots {
		s := &f.slots[i]
		for _, r := range append(s.refs, s.ind...) {
			g.FreeRef(r)
		}
		if s.mem != nil {
			g.FreePages(s.frame, len(s.mem)/xen.PageSize)
		}
		s.refs, s.ind, s.mem = nil, nil, nil
	}
	if f.ringRef != 0 {
		g.FreeRef(f.ringRef)
		g.FreePages(f.ringF, 1)
	}
}
