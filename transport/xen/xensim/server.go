package xensim

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// Config configures a simulator.
type Config struct {
	// Logger receives domain and event channel events.
	Logger *zap.Logger
	// DefaultPages is a guest's memory in pages when it asks for none
	// (default 16384: 64 MiB). MaxPages caps what a guest may ask for
	// (default 262144: 1 GiB).
	DefaultPages, MaxPages int
	// DefaultGrants is a guest's grant table size in entries when it asks
	// for none (default 16384); MaxGrants caps it (default 1<<20).
	DefaultGrants, MaxGrants int
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.DefaultPages <= 0 {
		c.DefaultPages = 16384
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 1 << 18
	}
	if c.DefaultGrants <= 0 {
		c.DefaultGrants = 16384
	}
	if c.MaxGrants <= 0 {
		c.MaxGrants = 1 << 20
	}
}

// Server is the simulated hypervisor: it hands out guest domains (memory
// and grant table in memfds), event channels (eventfds) and XenStore
// connections over a Unix SOCK_SEQPACKET socket.
type Server struct {
	cfg   Config
	log   *zap.Logger
	ln    *net.UnixListener
	path  string
	store *xenstore.Mem

	mu     sync.Mutex
	doms   map[xen.DomID]*domain
	conns  map[*conn]struct{}
	gen    uint64
	closed bool
	wg     sync.WaitGroup
}

type domain struct {
	id     xen.DomID
	name   string
	uuid   string
	gen    uint64
	pages  int
	grants int
	memfd  int
	gtfd   int
	owner  *conn // nil for dom0
	ports  map[uint32]*port
	next   uint32
	xsConn []net.Conn
}

const (
	portUnbound = iota
	portInterdomain
)

type port struct {
	state  int
	remote xen.DomID // unbound: who may bind; interdomain: the peer
	rport  uint32    // interdomain: the peer's port
	wait   int       // eventfd the owner waits on
	notify int       // eventfd the owner writes to notify the peer
	owner  *conn
	ownFDs bool // the port's owner created the eventfds (the unbound end)
}

type conn struct {
	s   *Server
	c   *net.UnixConn
	wmu sync.Mutex
	dom *domain
}

// Listen starts a simulator on the socket path (replacing a stale socket
// file).
func Listen(path string, cfg Config) (*Server, error) {
	cfg.defaults()
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, derr := net.Dial("unixpacket", path); derr == nil {
			c.Close()
			return nil, fmt.Errorf("xensim: %s: a simulator is already listening", path)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("xensim: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ln: ln, path: path, store: xenstore.NewMem(),
		doms: map[xen.DomID]*domain{}, conns: map[*conn]struct{}{}}
	s.doms[0] = &domain{id: 0, name: "Domain-0", ports: map[uint32]*port{}, memfd: -1, gtfd: -1}
	s.store.IntroduceDomain(0, "Domain-0", "00000000-0000-0000-0000-000000000000")
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Store is the simulator's XenStore (for tests and the dom0 tools).
func (s *Server) Store() *xenstore.Mem { return s.store }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		cn := &conn{s: s, c: c}
		s.conns[cn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go cn.serve()
	}
}

// Close stops the simulator: every connection is closed and every guest
// domain destroyed.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.c.Close()
	}
	s.wg.Wait()
	os.Remove(s.path)
	return nil
}

func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.cleanup()
	buf := make([]byte, msgMax)
	oob := make([]byte, 256)
	for {
		m, err := recv(c.c, buf, oob)
		if err != nil {
			if !errors.Is(err, errEOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("control connection failed", zap.Error(err))
			}
			return
		}
		closeFDs(m.fds) // clients send none
		rep := msg{op: m.op, seq: m.seq}
		keep, err := c.handle(&m, &rep)
		if err != nil {
			closeFDs(rep.fds)
			rep = msg{op: m.op, seq: m.seq, errno: errnoOf(err)}
		}
		werr := c.send(&rep)
		if !keep {
			closeFDs(rep.fds)
		}
		if werr != nil {
			return
		}
		if m.op == OpDestroy && err == nil {
			continue
		}
	}
}

func (c *conn) send(m *msg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return send(c.c, m)
}

// handle performs one request. keep reports that rep.fds are the
// simulator's own (not to be closed after sending).
func (c *conn) handle(m, rep *msg) (keep bool, err error) {
	s := c.s
	if m.op != OpHello && c.dom == nil {
		return false, syscall.EPROTO
	}
	switch m.op {
	case OpHello:
		return c.hello(m, rep)
	case OpXenStore:
		return false, c.xenstore(rep)
	case OpDomain:
		if c.dom.id != 0 {
			return false, syscall.EPERM
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.doms[xen.DomID(m.args[0])]
		if d == nil || d.id == 0 || m.args[0] > 0xffff {
			return false, syscall.ESRCH
		}
		gt, err := reopenReadOnly(d.gtfd)
		if err != nil {
			return false, err
		}
		mem, err := unix.Dup(d.memfd)
		if err != nil {
			unix.Close(gt)
			return false, err
		}
		rep.args = [msgArgs]uint64{uint64(d.pages), uint64(d.grants), d.gen}
		rep.fds = []int{mem, gt}
		return false, nil
	case OpAllocUnbound:
		return true, c.allocUnbound(m, rep)
	case OpBind:
		return true, c.bind(m, rep)
	case OpClosePort:
		s.mu.Lock()
		defer s.mu.Unlock()
		p := c.dom.ports[uint32(m.args[0])]
		if p == nil || p.owner != c || m.args[0] > 0xffffffff {
			return false, syscall.EINVAL
		}
		s.closePortLocked(c.dom, uint32(m.args[0]))
		return false, nil
	case OpList:
		rep.str = s.listing()
		return false, nil
	case OpDestroy:
		if c.dom.id != 0 {
			return false, syscall.EPERM
		}
		s.mu.Lock()
		d := s.doms[xen.DomID(m.args[0])]
		s.mu.Unlock()
		if d == nil || d.id == 0 || m.args[0] > 0xffff {
			return false, syscall.ESRCH
		}
		// Closing the guest's connection destroys the domain.
		d.owner.c.Close()
		return false, nil
	}
	return false, syscall.ENOSYS
}

func reopenReadOnly(fd int) (int, error) {
	return unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// uuidFor derives a stable UUID from a domain name, so that a guest that
// restarts under the same name is the same initiator.
func uuidFor(name string) string {
	h := sha256.Sum256([]byte("xensim:" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func (c *conn) hello(m, rep *msg) (bool, error) {
	s := c.s
	if c.dom != nil {
		return false, syscall.EISCONN
	}
	switch m.args[0] {
	case roleDom0:
		s.mu.Lock()
		c.dom = s.doms[0]
		s.mu.Unlock()
		rep.args[0] = 0
		return false, nil
	case roleGuest:
	default:
		return false, syscall.EINVAL
	}
	pages, grants := int(m.args[2]), int(m.args[3])
	if pages == 0 {
		pages = s.cfg.DefaultPages
	}
	if grants == 0 {
		grants = s.cfg.DefaultGrants
	}
	if pages < 1 || pages > s.cfg.MaxPages || grants <= ReservedRefs || grants > s.cfg.MaxGrants || m.args[1] > 0x7fef {
		return false, syscall.EINVAL
	}
	name := m.str
	if strings.ContainsAny(name, "/\x00") || len(name) > 256 {
		return false, syscall.EINVAL
	}
	memfd, err := unix.MemfdCreate("xensim-mem", unix.MFD_CLOEXEC)
	if err != nil {
		return false, err
	}
	gtfd, err := unix.MemfdCreate("xensim-grants", unix.MFD_CLOEXEC)
	if err != nil {
		unix.Close(memfd)
		return false, err
	}
	fail := func(err error) (bool, error) {
		unix.Close(memfd)
		unix.Close(gtfd)
		return false, err
	}
	if err := unix.Ftruncate(memfd, int64(pages)*xen.PageSize); err != nil {
		return fail(err)
	}
	if err := unix.Ftruncate(gtfd, int64(grants)*EntrySize); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	id := xen.DomID(m.args[1])
	if id == 0 {
		for id = 1; s.doms[id] != nil; id++ {
		}
	} else if s.doms[id] != nil {
		s.mu.Unlock()
		return fail(syscall.EEXIST)
	}
	if name == "" {
		name = "guest" + strconv.Itoa(int(id))
	}
	for _, d := range s.doms {
		if d.name == name {
			s.mu.Unlock()
			return fail(syscall.EEXIST)
		}
	}
	s.gen++
	d := &domain{id: id, name: name, uuid: uuidFor(name), gen: s.gen, pages: pages, grants: grants,
		memfd: memfd, gtfd: gtfd, owner: c, ports: map[uint32]*port{}}
	s.doms[id] = d
	c.dom = d
	s.mu.Unlock()
	s.store.IntroduceDomain(uint16(id), name, d.uuid)
	s.log.Info("domain created", zap.Uint16("domid", uint16(id)), zap.String("name", name),
		zap.Int("pages", pages), zap.Int("grants", grants))
	rep.args = [msgArgs]uint64{uint64(id), uint64(pages), uint64(grants), d.gen}
	rep.str = d.uuid
	rep.fds = []int{memfd, gtfd}
	return true, nil
}

func (c *conn) xenstore(rep *msg) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fds[0]), "xenstore")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return err
	}
	s := c.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		unix.Close(fds[1])
		return syscall.ESHUTDOWN
	}
	c.dom.xsConn = append(c.dom.xsConn, nc)
	s.wg.Add(1)
	s.mu.Unlock()
	mc := s.store.Connect(uint16(c.dom.id))
	go func() {
		defer s.wg.Done()
		xenstore.Serve(nc, mc)
	}()
	rep.fds = []int{fds[1]}
	return nil
}

func newEventfd() (int, error) {
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}

func (c *conn) allocUnbound(m, rep *msg) error {
	s := c.s
	if m.args[0] > 0xffff {
		return syscall.EINVAL
	}
	a, err := newEventfd()
	if err != nil {
		return err
	}
	b, err := newEventfd()
	if err != nil {
		unix.Close(a)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := c.dom
	n, err := d.newPort()
	if err != nil {
		unix.Close(a)
		unix.Close(b)
		return err
	}
	d.ports[n] = &port{state: portUnbound, remote: xen.DomID(m.args[0]), wait: a, notify: b, owner: c, ownFDs: true}
	rep.args[0] = uint64(n)
	rep.fds = []int{a, b}
	return nil
}

// maxPorts is the 2-level event channel ABI's limit for a 64-bit guest.
const maxPorts = 4096

func (d *domain) newPort() (uint32, error) {
	for i := 0; i < maxPorts; i++ {
		d.next++
		if d.next >= maxPorts {
			d.next = 1
		}
		if d.ports[d.next] == nil {
			return d.next, nil
		}
	}
	return 0, syscall.ENOSPC
}

func (c *conn) bind(m, rep *msg) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.args[0] > 0xffff || m.args[1] > 0xffffffff {
		return syscall.EINVAL
	}
	rd := s.doms[xen.DomID(m.args[0])]
	if rd == nil {
		return syscall.ESRCH
	}
	rp := rd.ports[uint32(m.args[1])]
	// EVTCHNOP_bind_interdomain: the remote port must be unbound and
	// allocated for this domain.
	if rp == nil || rp.state != portUnbound || rp.remote != c.dom.id {
		return syscall.EINVAL
	}
	n, err := c.dom.newPort()
	if err != nil {
		return err
	}
	c.dom.ports[n] = &port{state: portInterdomain, remote: rd.id, rport: uint32(m.args[1]),
		wait: rp.notify, notify: rp.wait, owner: c}
	rp.state, rp.rport = portInterdomain, n
	rep.args[0] = uint64(n)
	rep.fds = []int{rp.notify, rp.wait}
	s.log.Debug("event channel bound", zap.Uint16("domid", uint16(c.dom.id)), zap.Uint32("port", n),
		zap.Uint16("remote_domid", uint16(rd.id)), zap.Uint32("remote_port", uint32(m.args[1])))
	return nil
}

// closePortLocked frees port n of d (EVTCHNOP_close): a bound peer port
// reverts to unbound, so that a restarted backend can bind it again.
func (s *Server) closePortLocked(d *domain, n uint32) {
	p := d.ports[n]
	if p == nil {
		return
	}
	delete(d.ports, n)
	if p.state == portInterdomain {
		if rd := s.doms[p.remote]; rd != nil {
			if rp := rd.ports[p.rport]; rp != nil && rp.state == portInterdomain && rp.rport == n && rp.remote == d.id {
				if rp.ownFDs {
					rp.state, rp.rport = portUnbound, 0
					rp.remote = d.id
				} else {
					// The unbound end went away; the peer's port is dead.
					rp.rport = 0
				}
			}
		}
	}
	if p.ownFDs {
		unix.Close(p.wait)
		unix.Close(p.notify)
	}
}

// cleanup runs when a control connection ends: its ports are closed, and
// a guest's domain is destroyed.
func (c *conn) cleanup() {
	s := c.s
	c.c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	d := c.dom
	if d == nil {
		s.mu.Unlock()
		return
	}
	for n, p := range d.ports {
		if p.owner == c {
			s.closePortLocked(d, n)
		}
	}
	if d.id == 0 || s.doms[d.id] != d {
		s.mu.Unlock()
		return
	}
	delete(s.doms, d.id)
	for _, x := range d.xsConn {
		x.Close()
	}
	gone := msg{op: OpDomainGone, args: [msgArgs]uint64{uint64(d.id), d.gen}}
	var dom0 []*conn
	for o := range s.conns {
		if o.dom != nil && o.dom.id == 0 {
			dom0 = append(dom0, o)
		}
	}
	s.mu.Unlock()
	for _, o := range dom0 {
		o.send(&gone)
	}
	unix.Close(d.memfd)
	unix.Close(d.gtfd)
	s.store.ReleaseDomain(uint16(d.id))
	s.log.Info("domain destroyed", zap.Uint16("domid", uint16(d.id)), zap.String("name", d.name))
}

func (s *Server) listing() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.doms))
	for id := range s.doms {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	var b strings.Builder
	for _, id := range ids {
		d := s.doms[xen.DomID(id)]
		fmt.Fprintf(&b, "%d %s %d %d\n", id, d.name, d.pages, d.grants)
	}
	return b.String()
}
