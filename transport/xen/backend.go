package xen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/internal/bufpool"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// Config configures the vscsiif backend.
type Config struct {
	// Hypervisor is the real one (package xendev) or a simulator.
	Hypervisor Hypervisor
	// Logger receives device and ring events. Nil: no logging.
	Logger *zap.Logger
	// BackendDom is this domain's ID: 0 in dom0.
	BackendDom DomID
	// TargetPortID is the SRP target port identifier every ring logs in
	// to (the port cmd registers with scsi.Target.AddPort).
	TargetPortID [16]byte
	// Guests are attached automatically: when the backend starts, and
	// whenever a domain of that name (or ID) appears (@introduceDomain).
	// Their devices are removed when the domain goes (@releaseDomain).
	Guests []Guest
	// HasLU reports whether name is a configured LU (a p-dev a guest may
	// be given). Nil accepts any name.
	HasLU func(name string) bool
	// OnMap is called whenever the LUNs a ring exposes change: the
	// initiator port ID of the ring (InitiatorPortID) and the LUNs it
	// shows now (nil when the ring is gone). It is called before the
	// ring's channel is handed to Accept, so an access function that
	// consults Listener.LUNs sees the LUNs at login; after a hot-add or
	// hot-remove the caller re-evaluates the nexus (scsi.Target.Remap).
	// It runs on the backend's goroutine and must not block long.
	OnMap func(initiator [16]byte, luns []LUNMap)
	// MaxSegments is advertised as feature-sg-grant: the most data
	// segments a request may carry through indirect pages. Default 128
	// (Linux scsiback's SG_ALL); at least 26.
	MaxSegments int
	// MapThreshold: data transfers of at least this many bytes use grant
	// map + mmap instead of grant copy. 0: always copy, unless the
	// environment variable SRPTGT_XEN_MAP_THRESHOLD sets it.
	MapThreshold int
	// CloseTimeout bounds how long Shutdown waits for a frontend to close
	// before detaching its ring anyway. Default 10 s.
	CloseTimeout time.Duration
	// ReattachDelay is how long a device left Closed by an earlier clean
	// stop stays removed before it is written again, so that the guest
	// unregisters the old device first. Default 3 s.
	ReattachDelay time.Duration
}

// Guest is one guest's entry in the configuration: a domain name (or
// numeric ID) and its LUNs in 'LU, H:C:T:L' form, H being the vhost.
type Guest struct {
	Domain string
	LUNs   []LUNSpec
}

// LUNMap is one LUN a ring exposes: the LUN number a command's SAM LUN
// decodes to (target<<8 | lun), the LU (p-dev) and the guest address
// (v-dev).
type LUNMap struct {
	LUN  uint16
	LU   string
	Addr Addr
}

// Listener is the vscsiif backend: it runs the XenBus protocol of every
// vscsi device in XenStore whose backend is this domain, and hands each
// attached ring to Accept as an srp.Channel. It implements
// transport.Listener.
type Listener struct {
	cfg  Config
	log  *zap.Logger
	st   Store
	root string // /local/domain/<self>/backend/vscsi

	accept chan *ring
	closed chan struct{}

	pmu     sync.Mutex
	posted  []func()
	wake    chan struct{}
	stopped chan struct{}

	// loop-owned
	devs    map[devKey]*device
	closing bool
	// reattaching: devices removed for a re-attach, written again after
	// ReattachDelay (autoAttach leaves them alone meanwhile)
	reattaching map[devKey]bool
	rings       sync.WaitGroup
	shutDone    chan struct{}

	mmu  sync.Mutex
	maps map[[16]byte][]LUNMap
}

var _ transport.Listener = (*Listener)(nil)

type devKey struct {
	dom   DomID
	vhost int
}

type device struct {
	key       devKey
	be, fe    string
	token     string
	m         *xenbus.Machine
	ring      *ring
	luns      map[string]LUNMap
	initiator [16]byte
	name      string
	watched   bool
	reset     bool // the toolstack part recreated the nodes once
	wholeHost bool // feature-host=1 seen and logged
}

// Listen starts the backend.
func Listen(cfg Config) (*Listener, error) {
	if cfg.Hypervisor == nil {
		return nil, errors.New("xen: no hypervisor")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxSegments == 0 {
		cfg.MaxSegments = 128
	}
	if cfg.MaxSegments < vscsiif.SGTableSize {
		cfg.MaxSegments = vscsiif.SGTableSize
	}
	if cfg.MaxSegments > vscsiif.SGTableSize*vscsiif.SGPerPage {
		cfg.MaxSegments = vscsiif.SGTableSize * vscsiif.SGPerPage
	}
	if cfg.MapThreshold == 0 {
		// A measurement knob until the configuration has a field for
		// it: grant map instead of grant copy from this many bytes.
		if v, err := strconv.Atoi(os.Getenv("SRPTGT_XEN_MAP_THRESHOLD")); err == nil && v > 0 {
			cfg.MapThreshold = v
		}
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 10 * time.Second
	}
	if cfg.ReattachDelay == 0 {
		cfg.ReattachDelay = 3 * time.Second
	}
	st, err := cfg.Hypervisor.Store()
	if err != nil {
		return nil, fmt.Errorf("xen: connecting to XenStore: %w", err)
	}
	l := &Listener{
		cfg:         cfg,
		log:         cfg.Logger,
		st:          st,
		root:        fmt.Sprintf("/local/domain/%d/backend/vscsi", cfg.BackendDom),
		accept:      make(chan *ring, 256),
		closed:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
		stopped:     make(chan struct{}),
		devs:        map[devKey]*device{},
		reattaching: map[devKey]bool{},
		shutDone:    make(chan struct{}),
		maps:        map[[16]byte][]LUNMap{},
	}
	for _, w := range [][2]string{{l.root, "be"}, {xenstore.IntroduceDomain, "intro"}, {xenstore.ReleaseDomain, "release"}} {
		if err := st.Watch(w[0], w[1]); err != nil {
			st.Close()
			return nil, fmt.Errorf("xen: watching %s: %w", w[0], err)
		}
	}
	go l.loop()
	return l, nil
}

// Accept returns the channel of the next ring a frontend attached.
func (l *Listener) Accept(ctx context.Context) (transport.Channel, error) {
	select {
	case r := <-l.accept:
		return r, nil
	case <-l.closed:
		return nil, transport.ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close is Shutdown bounded by the configured CloseTimeout.
func (l *Listener) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CloseTimeout+5*time.Second)
	defer cancel()
	return l.Shutdown(ctx)
}

// Shutdown disconnects every device cleanly: the backend goes Closing,
// each frontend removes its disks (its last commands, such as a cache
// flush, are still served) and closes, the ring is detached and its
// grants unmapped, the backend goes Closed. A frontend that does not
// close within CloseTimeout (or before ctx ends) is detached anyway. The
// nodes stay in XenStore, so a backend started again attaches the guests
// anew. Call it before the session layer's Shutdown, so that the guest's
// final commands are served rather than refused.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.post(func() { l.startShutdown() })
	var err error
	select {
	case <-l.shutDone:
	case <-ctx.Done():
		err = ctx.Err()
		l.post(func() { l.abandonAll() })
		<-l.shutDone
	}
	return err
}

// LUNs returns the LUNs the ring of initiator port ID id exposes (for the
// target's access function).
func (l *Listener) LUNs(id [16]byte) []LUNMap {
	l.mmu.Lock()
	defer l.mmu.Unlock()
	return append([]LUNMap(nil), l.maps[id]...)
}

// post runs f on the backend's goroutine.
func (l *Listener) post(f func()) {
	l.pmu.Lock()
	l.posted = append(l.posted, f)
	l.pmu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Listener) loop() {
	defer close(l.stopped)
	var timer <-chan time.Time
	for {
		select {
		case ev, ok := <-l.st.Events():
			if !ok {
				l.log.Error("XenStore connection lost")
				l.abandonAll()
				l.finish()
				return
			}
			l.onEvent(ev)
		case <-l.wake:
			l.pmu.Lock()
			fs := l.posted
			l.posted = nil
			l.pmu.Unlock()
			for _, f := range fs {
				f()
			}
		case <-timer:
			l.log.Warn("frontends did not close in time; detaching their rings")
			l.abandonAll()
			timer = nil
		}
		if l.closing {
			if timer == nil && !l.allClosed() {
				timer = time.After(l.cfg.CloseTimeout)
			}
			if l.allClosed() {
				l.finish()
				return
			}
		}
	}
}

func (l *Listener) allClosed() bool {
	for _, d := range l.devs {
		if d.ring != nil || !d.m.Closed() {
			return false
		}
	}
	return true
}

func (l *Listener) finish() {
	close(l.closed)
	for {
		select {
		case r := <-l.accept:
			// never handed to the session layer
			r.Close(errors.New("backend shut down"))
			r.Released()
			continue
		default:
		}
		break
	}
	go func() {
		l.rings.Wait()
		l.st.Close()
		close(l.shutDone)
	}()
}

func (l *Listener) startShutdown() {
	if l.closing {
		return
	}
	l.closing = true
	// Devices the toolstack part just wrote may not have reached the
	// loop yet: take them in too, so that their frontends see them close
	// rather than wait for a backend that is gone.
	doms, _ := l.st.List(xenstore.None, l.root)
	for _, dm := range doms {
		vhosts, _ := l.st.List(xenstore.None, l.root+"/"+dm)
		for _, v := range vhosts {
			if k, ok := parseKey(dm, v); ok && l.devs[k] == nil {
				l.touch(k)
			}
		}
	}
	l.log.Info("shutting down: closing every vscsi device", zap.Int("devices", len(l.devs)))
	for _, d := range l.sortedDevs() {
		d.m.Shutdown()
		l.step(d)
	}
}

func (l *Listener) abandonAll() {
	for _, d := range l.sortedDevs() {
		l.apply(d, d.m.Abandon())
	}
}

func (l *Listener) sortedDevs() []*device {
	out := make([]*device, 0, len(l.devs))
	for _, d := range l.devs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		return a.dom < b.dom || a.dom == b.dom && a.vhost < b.vhost
	})
	return out
}

func (l *Listener) onEvent(ev xenstore.WatchEvent) {
	switch {
	case ev.Token == "be":
		if ev.Path == l.root {
			l.scan()
			return
		}
		rest := strings.TrimPrefix(ev.Path, l.root+"/")
		f := strings.SplitN(rest, "/", 3)
		if len(f) < 2 {
			if len(f) == 1 {
				// a whole domain's directory came or went
				l.scanDomain(f[0])
			}
			return
		}
		k, ok := parseKey(f[0], f[1])
		if !ok {
			return
		}
		l.touch(k)
	case strings.HasPrefix(ev.Token, "fe:"):
		f := strings.SplitN(strings.TrimPrefix(ev.Token, "fe:"), ":", 2)
		if len(f) == 2 {
			if k, ok := parseKey(f[0], f[1]); ok {
				if d := l.devs[k]; d != nil {
					l.step(d)
				}
			}
		}
	case ev.Token == "intro":
		if !l.closing {
			l.autoAttach()
		}
	case ev.Token == "release":
		l.cleanupDomains()
	}
}

func parseKey(dom, vhost string) (devKey, bool) {
	d, err1 := strconv.ParseUint(dom, 10, 16)
	v, err2 := strconv.ParseUint(vhost, 10, 16)
	if err1 != nil || err2 != nil {
		return devKey{}, false
	}
	return devKey{DomID(d), int(v)}, true
}

// scan looks at every device under the backend root, then attaches the
// configured guests that have none.
func (l *Listener) scan() {
	doms, _ := l.st.List(xenstore.None, l.root)
	for _, dm := range doms {
		l.scanDomain(dm)
	}
	if !l.closing {
		l.autoAttach()
	}
}

func (l *Listener) scanDomain(dom string) {
	vhosts, _ := l.st.List(xenstore.None, l.root+"/"+dom)
	for _, v := range vhosts {
		if k, ok := parseKey(dom, v); ok {
			l.touch(k)
		}
	}
	// devices of the domain that vanished
	for k, d := range l.devs {
		if strconv.Itoa(int(k.dom)) == dom {
			l.step(d)
		}
	}
}

// touch steps device k, creating it if its backend directory exists.
func (l *Listener) touch(k devKey) {
	d := l.devs[k]
	if d == nil {
		be := fmt.Sprintf("%s/%d/%d", l.root, k.dom, k.vhost)
		if _, err := l.st.Read(xenstore.None, be+"/frontend"); err != nil {
			return // not (yet) a complete device
		}
		d = &device{key: k, be: be, token: fmt.Sprintf("fe:%d:%d", k.dom, k.vhost), luns: map[string]LUNMap{}}
		d.m = xenbus.New(l.cfg.MaxSegments, l.checkDev)
		d.name, d.initiator = l.identity(k)
		l.devs[k] = d
		l.log.Info("vscsi device found", zap.Uint16("domain", uint16(k.dom)), zap.String("name", d.name), zap.Int("vhost", k.vhost))
		if l.closing {
			d.m.Shutdown()
		}
	}
	l.step(d)
}

// identity returns the domain's name and the ring's initiator port ID.
func (l *Listener) identity(k devKey) (string, [16]byte) {
	base := fmt.Sprintf("/local/domain/%d", k.dom)
	name, _ := l.st.Read(xenstore.None, base+"/name")
	uuidSrc := name
	if vm, err := l.st.Read(xenstore.None, base+"/vm"); err == nil && vm != "" {
		uuidSrc = vm[strings.LastIndexByte(vm, '/')+1:]
	} else if name == "" {
		uuidSrc = strconv.Itoa(int(k.dom))
	}
	return name, InitiatorPortID(DomainUUID(uuidSrc), uint16(k.vhost))
}

// checkDev decides whether a LUN entry can be served.
func (l *Listener) checkDev(d xenbus.Dev, active []xenbus.Dev) error {
	if l.cfg.HasLU != nil && !l.cfg.HasLU(d.PDev) {
		return fmt.Errorf("p-dev %q is not a configured LU", d.PDev)
	}
	a, err := ParseAddr(d.VDev)
	if err != nil {
		return err
	}
	n, ok := a.SAMLUN()
	if !ok {
		return fmt.Errorf("v-dev %s: channel must be 0, target 0..%d, LUN 0..%d", a, MaxTarget, MaxLUN)
	}
	for _, o := range active {
		if oa, err := ParseAddr(o.VDev); err == nil {
			if on, _ := oa.SAMLUN(); on == n {
				return fmt.Errorf("v-dev %s: the address is taken by %s", a, o.Name)
			}
		}
	}
	return nil
}

// snapshot reads a device's nodes.
func (l *Listener) snapshot(d *device) xenbus.Snapshot {
	var s xenbus.Snapshot
	st := l.st
	fe, err := st.Read(xenstore.None, d.be+"/frontend")
	if err != nil {
		return s // backend directory gone
	}
	s.Exists = true
	v, _ := st.Read(xenstore.None, d.be+"/state")
	s.State = xenbus.ParseState(v)
	v, _ = st.Read(xenstore.None, d.be+"/online")
	s.Online = strings.TrimSpace(v) == "1"
	v, _ = st.Read(xenstore.None, d.be+"/feature-host")
	wholeHost := strings.TrimSpace(v) == "1"
	if wholeHost && !d.wholeHost {
		// whole-host passthrough (SUSE libxl): not something a
		// user-space target can do; every LUN entry is refused below.
		l.log.Warn("feature-host=1 (whole host passthrough) is not supported; its LUN entries are refused", zap.String("device", d.be))
	}
	d.wholeHost = wholeHost
	if d.fe != fe {
		if d.watched {
			st.Unwatch(d.fe, d.token)
		}
		d.fe, d.watched = fe, false
	}
	if !d.watched && fe != "" {
		if err := st.Watch(fe, d.token); err == nil {
			d.watched = true
		}
	}
	if v, err := st.Read(xenstore.None, fe+"/state"); err == nil {
		s.FrontendExists = true
		s.Frontend = xenbus.ParseState(v)
		rr, err1 := st.Read(xenstore.None, fe+"/ring-ref")
		ev, err2 := st.Read(xenstore.None, fe+"/event-channel")
		r, e1 := strconv.ParseUint(strings.TrimSpace(rr), 10, 32)
		e, e2 := strconv.ParseUint(strings.TrimSpace(ev), 10, 32)
		if err1 == nil && err2 == nil && e1 == nil && e2 == nil {
			s.RingRef, s.EventChannel, s.RingOK = uint32(r), uint32(e), true
		}
		if p, err := st.Read(xenstore.None, fe+"/protocol"); err == nil && p != "" && p != "x86_64-abi" && p != "x86_32-abi" {
			l.log.Warn("frontend asks for an ABI this backend does not speak", zap.String("protocol", p))
			s.RingOK = false
		}
	}
	names, _ := st.List(xenstore.None, d.be+"/vscsi-devs")
	for _, n := range names {
		base := d.be + "/vscsi-devs/" + n
		dv := xenbus.Dev{Name: n}
		stv, err := st.Read(xenstore.None, base+"/state")
		if err != nil {
			continue
		}
		dv.State = xenbus.ParseState(stv)
		dv.PDev, _ = st.Read(xenstore.None, base+"/p-dev")
		dv.VDev, _ = st.Read(xenstore.None, base+"/v-dev")
		if l.cfg.HasLU != nil && !l.cfg.HasLU(dv.PDev) {
			// SUSE libxl may keep a LU name in p-devname
			if alt, err := st.Read(xenstore.None, base+"/p-devname"); err == nil && l.cfg.HasLU(alt) {
				dv.PDev = alt
			}
		}
		if wholeHost {
			dv.PDev = "\x00feature-host"
		}
		s.Devs = append(s.Devs, dv)
	}
	return s
}

// step feeds a device's machine a fresh snapshot.
func (l *Listener) step(d *device) {
	s := l.snapshot(d)
	if !d.reset && !l.closing && s.Exists && s.State == xenbus.Closed && s.FrontendExists && s.Frontend == xenbus.Closed && d.m.State() == xenbus.Unknown {
		// Left Closed by a backend that stopped cleanly: the frontend
		// will not come back by itself. Do the toolstack's part again.
		d.reset = true
		l.log.Info("re-attaching a device left closed: removing it now, writing it again shortly",
			zap.String("device", d.be), zap.Duration("delay", l.cfg.ReattachDelay))
		luns, err := removeForReset(l.st, l.cfg.BackendDom, d.key.dom, d.key.vhost)
		if err != nil {
			l.log.Warn("re-attaching failed", zap.String("device", d.be), zap.Error(err))
		} else {
			k := d.key
			l.reattaching[k] = true
			time.AfterFunc(l.cfg.ReattachDelay, func() {
				l.post(func() {
					delete(l.reattaching, k)
					if l.closing {
						return
					}
					if err := createDevice(l.st, l.cfg.BackendDom, k.dom, k.vhost, luns); err != nil {
						l.log.Warn("re-attaching failed", zap.Uint16("domain", uint16(k.dom)), zap.Int("vhost", k.vhost), zap.Error(err))
					}
				})
			})
		}
		s = l.snapshot(d)
	}
	if s.FrontendExists && s.Frontend == xenbus.Initialised && !s.RingOK && !d.m.Connected() && d.m.State() != xenbus.Closing && d.m.State() != xenbus.Closed {
		if err := l.badRingNodes(d); err != nil {
			// xenbus_dev_fatal in Linux scsiback: a frontend that
			// says Initialised with nodes no ring can have is closed.
			l.log.Warn("device failed", zap.String("device", d.be), zap.Error(err))
			d.m.Fail()
		}
	}
	l.apply(d, d.m.Step(s))
	if !s.Exists && d.ring == nil {
		if d.watched {
			l.st.Unwatch(d.fe, d.token)
		}
		delete(l.devs, d.key)
		l.log.Info("vscsi device removed", zap.String("device", d.be))
	}
}

// badRingNodes explains why an Initialised frontend's ring-ref or
// event-channel cannot be used (nil if they are merely missing).
func (l *Listener) badRingNodes(d *device) error {
	for _, n := range []string{"ring-ref", "event-channel"} {
		v, err := l.st.Read(xenstore.None, d.fe+"/"+n)
		if err != nil {
			continue
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err != nil {
			if len(v) > 32 {
				v = v[:32] + "..."
			}
			return fmt.Errorf("frontend %s %q is not a number", n, v)
		}
	}
	return nil
}

// apply performs a machine's actions in order.
func (l *Listener) apply(d *device, acts []xenbus.Action) {
	var start *ring
	mapChanged := false
	for _, a := range acts {
		switch a.Op {
		case xenbus.Write:
			if err := l.st.Write(xenstore.None, d.be+"/"+a.Path, a.Value); err != nil && !xenstore.IsNotExist(err) {
				l.log.Warn("XenStore write failed", zap.String("path", d.be+"/"+a.Path), zap.Error(err))
			}
		case xenbus.Connect:
			r, err := l.attach(d, a)
			if err != nil {
				l.log.Warn("attaching the ring failed", zap.String("device", d.be), zap.Error(err))
				d.m.Fail()
				// the machine thinks it is connected: detach it
				l.apply(d, d.m.Abandon())
				return
			}
			d.ring, start = r, r
		case xenbus.Disconnect:
			if d.ring != nil {
				d.ring.disconnect()
			}
			if start != nil && start == d.ring {
				start = nil
				d.ring.Released()
			}
		case xenbus.AddLUN:
			l.log.Info("LUN added", zap.String("device", d.be), zap.String("entry", a.Dev.Name),
				zap.String("lu", a.Dev.PDev), zap.String("vdev", a.Dev.VDev))
			if a2, err := ParseAddr(a.Dev.VDev); err == nil {
				n, _ := a2.SAMLUN()
				d.luns[a.Dev.Name] = LUNMap{LUN: n, LU: a.Dev.PDev, Addr: a2}
				// mapped now, before the writes that follow tell the
				// guest: xen-scsifront scans a new address at once,
				// and a failed INQUIRY there loses the LUN for good
				l.publish(d)
			}
		case xenbus.RemoveLUN:
			if d.ring != nil {
				l.log.Info("LUN removed", zap.String("device", d.be), zap.String("entry", a.Dev.Name),
					zap.String("lu", a.Dev.PDev), zap.String("vdev", a.Dev.VDev))
			}
			delete(d.luns, a.Dev.Name)
			mapChanged = true
		}
	}
	if mapChanged {
		l.publish(d)
	}
	if start != nil {
		select {
		case l.accept <- start:
		default:
			l.log.Warn("nobody accepts rings; disconnecting", zap.String("device", d.be))
			start.Released()
			start.fault(errors.New("accept queue full"))
		}
	}
}

func (l *Listener) publish(d *device) {
	var ms []LUNMap
	for _, m := range d.luns {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].LUN < ms[j].LUN })
	l.mmu.Lock()
	if ms == nil {
		delete(l.maps, d.initiator)
	} else {
		l.maps[d.initiator] = ms
	}
	l.mmu.Unlock()
	if l.cfg.OnMap != nil {
		l.cfg.OnMap(d.initiator, ms)
	}
}

// attach maps the ring page, binds the event channel and builds the
// channel of a ring.
func (l *Listener) attach(d *device, a xenbus.Action) (*ring, error) {
	g, err := l.cfg.Hypervisor.Grants()
	if err != nil {
		return nil, err
	}
	page, err := g.Map(d.key.dom, []GrantRef{GrantRef(a.RingRef)}, true)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("mapping ring-ref %d: %w", a.RingRef, err)
	}
	br, err := vscsiif.AttachBackRing(page)
	if err != nil {
		g.Unmap(page)
		g.Close()
		return nil, err
	}
	evt, err := l.cfg.Hypervisor.BindInterdomain(d.key.dom, a.EventChannel)
	if err != nil {
		g.Unmap(page)
		g.Close()
		return nil, fmt.Errorf("binding event-channel %d: %w", a.EventChannel, err)
	}
	r := &ring{
		l: l, dev: d, dom: d.key.dom, grants: g, evt: evt, page: page, br: br,
		log:       l.log.With(zap.Uint16("domain", uint16(d.key.dom)), zap.String("name", d.name), zap.Int("vhost", d.key.vhost)),
		maxSegs:   l.cfg.MaxSegments,
		mapThresh: l.cfg.MapThreshold,
		pool:      bufpool.New(nil),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		released:  make(chan struct{}),
		detach:    make(chan struct{}),
		gone:      make(chan struct{}),
		login: srp.LoginReq{
			Tag:             uint64(d.key.dom)<<16 | uint64(d.key.vhost),
			MaxITIULen:      256,
			BufFmt:          srp.BufFmtDirect | srp.BufFmtIndirect,
			MultiChannel:    srp.MultiChanSingle,
			InitiatorPortID: d.initiator,
			TargetPortID:    l.cfg.TargetPortID,
		},
	}
	r.segs = make([]vscsiif.Segment, 0, l.cfg.MaxSegments)
	r.descs = make([]srp.MemDesc, 0, l.cfg.MaxSegments)
	l.rings.Add(1)
	go r.kicker()
	// Requests pushed before we bound the port notified nobody. (The
	// kicker may have queued a kick already: one is enough.)
	select {
	case r.kick <- struct{}{}:
	default:
	}
	r.log.Info("ring attached", zap.Uint32("ring_ref", a.RingRef), zap.Uint32("event_channel", a.EventChannel),
		zap.Bool("resume", a.Resume), zap.String("initiator", fmt.Sprintf("%x", d.initiator)))
	return r, nil
}

// ringClosed: the session side of the ring ended. Unless the device is
// already on its way down, it goes Closing so the guest removes its
// disks cleanly.
func (l *Listener) ringClosed(d *device, r *ring) {
	if d.ring != r || l.devs[d.key] != d {
		return
	}
	if d.m.Connected() {
		d.m.Fail()
		l.step(d)
	}
}

func (l *Listener) ringFault(d *device, r *ring, err error) {
	if d.ring != r {
		return
	}
	l.log.Warn("device failed", zap.String("device", d.be), zap.Error(err))
	d.m.Fail()
	l.step(d)
}

// ringGone: the ring's grants are unmapped.
func (l *Listener) ringGone(d *device, r *ring) {
	if d.ring == r {
		d.ring = nil
		clear(d.luns)
		l.publish(d)
		r.log.Info("ring detached")
	}
	if l.devs[d.key] == d {
		l.step(d)
	}
}
