package xensim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

const pageSize = xen.PageSize

// Hypervisor is dom0's view of a simulator: the xen.Hypervisor the
// backend runs on. Grant copies and maps never cross the socket: the
// first time a grant handle touches a guest, the guest's memory and grant
// table arrive as file descriptors and are mapped, and from then on every
// grant is validated against the guest's table in this process, as Xen
// would validate it.
type Hypervisor struct {
	r *rpc

	mu    sync.Mutex
	views map[xen.DomID]*domView
	dead  []*domView // destroyed, still used by an open grant handle
}

var _ xen.Hypervisor = (*Hypervisor)(nil)

// domView is one guest's memory and grant table, mapped.
type domView struct {
	dom   xen.DomID
	gen   uint64
	memfd int
	mem   []byte
	gt    []byte
	pages int
	nents int
	gone  atomic.Bool
	users int // grant handles holding it (Hypervisor.mu)
}

// Dial connects to the simulator at path as dom0.
func Dial(path string) (*Hypervisor, error) {
	r, err := dialRPC(path)
	if err != nil {
		return nil, err
	}
	h := &Hypervisor{r: r, views: map[xen.DomID]*domView{}}
	r.onPush = h.push
	r.start()
	if _, err := r.call(OpHello, "", roleDom0); err != nil {
		r.close()
		return nil, err
	}
	return h, nil
}

// Done is closed when the connection to the simulator is lost.
func (h *Hypervisor) Done() <-chan struct{} { return h.r.done }

// Close disconnects. Event channels bound through h are unbound by the
// simulator; grant handles stay usable until closed.
func (h *Hypervisor) Close() error { return h.r.close() }

func (h *Hypervisor) push(m msg) {
	if m.op != OpDomainGone {
		return
	}
	dom := xen.DomID(m.args[0])
	h.mu.Lock()
	defer h.mu.Unlock()
	if v := h.views[dom]; v != nil && v.gen == m.args[1] {
		h.retireLocked(v)
	}
}

func (h *Hypervisor) retireLocked(v *domView) {
	v.gone.Store(true)
	if h.views[v.dom] == v {
		delete(h.views, v.dom)
	}
	if v.users == 0 {
		v.unmap()
	} else {
		h.dead = append(h.dead, v)
	}
}

func (v *domView) unmap() {
	unix.Munmap(v.mem)
	unix.Munmap(v.gt)
	unix.Close(v.memfd)
}

// Domains lists the running domains as the simulator reports them.
func (h *Hypervisor) Domains() (string, error) {
	m, err := h.r.call(OpList, "")
	return m.str, err
}

// Destroy destroys a guest domain, as if it crashed.
func (h *Hypervisor) Destroy(dom xen.DomID) error {
	_, err := h.r.call(OpDestroy, "", uint64(dom))
	return err
}

// Store opens a XenStore connection as dom0.
func (h *Hypervisor) Store() (xen.Store, error) { return storeOf(h.r) }

func storeOf(r *rpc) (*xenstore.Client, error) {
	m, err := r.call(OpXenStore, "")
	if err != nil {
		return nil, err
	}
	if len(m.fds) != 1 {
		closeFDs(m.fds)
		return nil, fmt.Errorf("xensim: XenStore reply with %d descriptors", len(m.fds))
	}
	f := os.NewFile(uintptr(m.fds[0]), "xenstore")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return xenstore.NewClient(c), nil
}

// acquire returns the current view of dom for a grant handle, mapping it
// on first use; the handle releases it on Close.
func (h *Hypervisor) acquire(dom xen.DomID) (*domView, error) {
	h.mu.Lock()
	v := h.views[dom]
	if v != nil && !v.gone.Load() {
		v.users++
		h.mu.Unlock()
		return v, nil
	}
	h.mu.Unlock()
	m, err := h.r.call(OpDomain, "", uint64(dom))
	if err != nil {
		return nil, err
	}
	if len(m.fds) != 2 {
		closeFDs(m.fds)
		return nil, fmt.Errorf("xensim: domain reply with %d descriptors", len(m.fds))
	}
	nv := &domView{dom: dom, pages: int(m.args[0]), nents: int(m.args[1]), gen: m.args[2], memfd: m.fds[0]}
	nv.mem, err = unix.Mmap(m.fds[0], 0, nv.pages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err == nil {
		nv.gt, err = unix.Mmap(m.fds[1], 0, nv.nents*EntrySize, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			unix.Munmap(nv.mem)
		}
	}
	unix.Close(m.fds[1])
	if err != nil {
		unix.Close(m.fds[0])
		return nil, fmt.Errorf("xensim: mapping domain %d: %w", dom, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.views[dom]; old != nil && old.gen == nv.gen && !old.gone.Load() {
		nv.unmap() // raced with another handle
		old.users++
		return old, nil
	} else if old != nil {
		h.retireLocked(old)
	}
	nv.users = 1
	h.views[dom] = nv
	return nv, nil
}

func (h *Hypervisor) release(v *domView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v.users--
	if v.users == 0 && v.gone.Load() {
		for i, d := range h.dead {
			if d == v {
				h.dead = append(h.dead[:i], h.dead[i+1:]...)
				break
			}
		}
		v.unmap()
	}
}

// Grants opens a grant handle.
func (h *Hypervisor) Grants() (xen.Grants, error) {
	g := &grants{h: h, maps: map[uintptr]mapping{}}
	g.views.Store(&viewSet{})
	return g, nil
}

// BindInterdomain binds to port remotePort of domain dom.
func (h *Hypervisor) BindInterdomain(dom xen.DomID, remotePort uint32) (xen.EventChannel, error) {
	m, err := h.r.call(OpBind, "", uint64(dom), uint64(remotePort))
	if err != nil {
		return nil, err
	}
	return newEventChannel(h.r, m)
}

// viewSet is a grant handle's immutable map of the views it holds,
// replaced on change, so that a copy looks its guest up without a lock.
type viewSet struct {
	doms  [4]xen.DomID
	views [4]*domView
	n     int
	more  map[xen.DomID]*domView
}

func (s *viewSet) get(dom xen.DomID) *domView {
	for i := 0; i < s.n; i++ {
		if s.doms[i] == dom {
			return s.views[i]
		}
	}
	return s.more[dom]
}

func (s *viewSet) with(dom xen.DomID, v *domView) *viewSet {
	n := &viewSet{}
	for i := 0; i < s.n; i++ {
		if s.doms[i] != dom {
			n.add(s.doms[i], s.views[i])
		}
	}
	for d, x := range s.more {
		if d != dom {
			n.add(d, x)
		}
	}
	n.add(dom, v)
	return n
}

func (s *viewSet) add(dom xen.DomID, v *domView) {
	if s.n < len(s.doms) {
		s.doms[s.n], s.views[s.n] = dom, v
		s.n++
		return
	}
	if s.more == nil {
		s.more = map[xen.DomID]*domView{}
	}
	s.more[dom] = v
}

type mapping struct {
	dom xen.DomID
	mem []byte
}

// grants is a grant handle (one gntdev file).
type grants struct {
	h     *Hypervisor
	views atomic.Pointer[viewSet]

	mu     sync.Mutex
	held   []*domView // every view acquired, released on Close
	maps   map[uintptr]mapping
	closed bool
}

var errClosed = xen.ErrClosed

// view returns the handle's view of dom, acquiring the domain's current
// one when the handle has none or its domain was destroyed.
func (g *grants) view(dom xen.DomID) (*domView, xen.GrantStatus) {
	if v := g.views.Load().get(dom); v != nil && !v.gone.Load() {
		return v, xen.GrantOK
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, xen.GrantGeneralError
	}
	if v := g.views.Load().get(dom); v != nil && !v.gone.Load() {
		return v, xen.GrantOK
	}
	v, err := g.h.acquire(dom)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil, xen.GrantBadDomain
		}
		return nil, xen.GrantGeneralError
	}
	g.held = append(g.held, v)
	g.views.Store(g.views.Load().with(dom, v))
	return v, xen.GrantOK
}

// ErrCrossesPage is the error of a grant copy batch with a segment that
// crosses its page (gntdev's EINVAL).
var ErrCrossesPage = fmt.Errorf("xensim: grant copy segment crosses a page: %w", syscall.EINVAL)

// Copy performs grant copies, validating each grant against the guest's
// table.
func (g *grants) Copy(segs []xen.CopySeg) error {
	for i := range segs {
		if int(segs[i].Offset)+len(segs[i].Local) > pageSize {
			return ErrCrossesPage
		}
	}
	for i := range segs {
		s := &segs[i]
		v, st := g.view(s.Dom)
		if st != xen.GrantOK {
			s.Status = st
			continue
		}
		if uint64(s.Ref) >= uint64(v.nents) {
			s.Status = xen.GrantBadRef
			continue
		}
		frame, st := decodeEntry(loadEntry(v.gt, uint32(s.Ref))).check(0, s.ToGuest, v.pages)
		if st != xen.GrantOK {
			s.Status = st
			continue
		}
		off := int(frame)*pageSize + int(s.Offset)
		if s.ToGuest {
			copy(v.mem[off:off+len(s.Local)], s.Local)
		} else {
			copy(s.Local, v.mem[off:off+len(s.Local)])
		}
		s.Status = xen.GrantOK
	}
	return nil
}

// GrantError is a failed Map: the status of the first bad reference.
type GrantError struct {
	Ref    xen.GrantRef
	Status xen.GrantStatus
}

func (e *GrantError) Error() string { return fmt.Sprintf("grant %d: %v", e.Ref, e.Status) }
func (e *GrantError) Unwrap() error { return e.Status }

// Map maps granted pages as one region.
func (g *grants) Map(dom xen.DomID, refs []xen.GrantRef, writable bool) ([]byte, error) {
	if len(refs) == 0 || len(refs) > 1<<16 {
		return nil, fmt.Errorf("xensim: mapping %d grants: %w", len(refs), syscall.EINVAL)
	}
	v, st := g.view(dom)
	if st != xen.GrantOK {
		return nil, &GrantError{Ref: refs[0], Status: st}
	}
	frames := make([]uint32, len(refs))
	for i, r := range refs {
		if uint64(r) >= uint64(v.nents) {
			return nil, &GrantError{Ref: r, Status: xen.GrantBadRef}
		}
		f, st := decodeEntry(loadEntry(v.gt, uint32(r))).check(0, writable, v.pages)
		if st != xen.GrantOK {
			return nil, &GrantError{Ref: r, Status: st}
		}
		frames[i] = f
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := mapPages(v.memfd, frames, prot)
	if err != nil {
		return nil, fmt.Errorf("xensim: mapping grants of domain %d: %w", dom, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		unmapRegion(b)
		return nil, errClosed
	}
	g.maps[regionKey(b)] = mapping{dom: dom, mem: b}
	return b, nil
}

// Unmap releases a region from Map.
func (g *grants) Unmap(mem []byte) error {
	if len(mem) == 0 {
		return fmt.Errorf("xensim: unmap of an empty region: %w", syscall.EINVAL)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := regionKey(mem)
	m, ok := g.maps[k]
	if !ok || len(m.mem) != len(mem) {
		return fmt.Errorf("xensim: unmap of a region not mapped by this handle: %w", syscall.EINVAL)
	}
	delete(g.maps, k)
	return unmapRegion(mem)
}

// Close unmaps everything and releases the handle.
func (g *grants) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	for _, m := range g.maps {
		unmapRegion(m.mem)
	}
	g.maps = nil
	held := g.held
	g.held = nil
	g.views.Store(&viewSet{})
	g.mu.Unlock()
	for _, v := range held {
		g.h.release(v)
	}
	return nil
}
