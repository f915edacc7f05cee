package srpring

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// DeviceType is the XenStore device class of the SRP ring.
const DeviceType = "vsrp"

// Guest names a domain that gets an SRP ring device.
type Guest struct {
	// Domain is the domain's name or numeric ID.
	Domain string
	// VHost is the device number (device/vsrp/<VHost>).
	VHost int
}

// Config configures the backend.
type Config struct {
	Hypervisor xen.Hypervisor
	Logger     *zap.Logger
	// TargetPortID is the SRP target port the rings log in to.
	TargetPortID [16]byte
	Guests       []Guest
	// MaxRingPageOrder and MaxSlotOrder are offered to frontends
	// (defaults 4 and 12).
	MaxRingPageOrder, MaxSlotOrder uint
	// LoginTimeout bounds the wait for SRP_LOGIN_REQ after the ring is
	// attached; SendTimeout how long a response may wait for the frontend
	// to free a slot. Both default to 30 s.
	LoginTimeout, SendTimeout time.Duration
	// LUNames, if set, lists the LUs by LUN; the backend publishes it in
	// the device's lus/ directory for frontends that pick a LUN by name.
	LUNames func() map[uint16]string
}

// Listener is the SRP ring backend: it creates the devices of the
// configured guests in XenStore (the toolstack's part), runs the XenBus
// handshake of each, and hands out a Channel per ring whose frontend sent
// its SRP_LOGIN_REQ.
type Listener struct {
	cfg   Config
	log   *zap.Logger
	store xen.Store

	accept chan *Channel
	kick   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	devs    map[devKey]*device
	closed  bool
	watched map[xen.DomID]bool
}

type devKey struct {
	dom   xen.DomID
	vhost int
}

type device struct {
	key     devKey
	name    string
	started bool
	ch      *Channel // attached ring, until it is torn down
	ended   bool     // ch closed: go Closing
}

// Listen starts the backend.
func Listen(cfg Config) (*Listener, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxRingPageOrder == 0 {
		cfg.MaxRingPageOrder = 4
	}
	if cfg.MaxSlotOrder == 0 {
		cfg.MaxSlotOrder = 12
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 30 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	st, err := cfg.Hypervisor.Store()
	if err != nil {
		return nil, err
	}
	l := &Listener{cfg: cfg, log: cfg.Logger, store: st, accept: make(chan *Channel, 16),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), devs: map[devKey]*device{}, watched: map[xen.DomID]bool{}}
	for _, w := range []string{xenstore.IntroduceDomain, xenstore.ReleaseDomain, "/local/domain/0/backend/" + DeviceType} {
		if err := st.Watch(w, "srpring"); err != nil {
			st.Close()
			return nil, err
		}
	}
	l.wg.Add(1)
	go l.loop()
	return l, nil
}

// Accept returns the next logged-in ring.
func (l *Listener) Accept(ctx context.Context) (transport.Channel, error) {
	select {
	case ch := <-l.accept:
		return ch, nil
	case <-l.stop:
		return nil, transport.ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the backend: attached rings are closed and their devices
// left Closing, so that frontends tear down and attach again to the next
// backend.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.stop)
	l.mu.Unlock()
	l.wg.Wait()
	for _, d := range l.devs {
		if d.ch != nil {
			d.ch.Close(errors.New("backend shutting down"))
			<-d.ch.Done()
			l.write(d, "state", strconv.Itoa(int(xenbus.Closing)))
		}
	}
	return l.store.Close()
}

func (l *Listener) loop() {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	l.reconcile()
	for {
		select {
		case <-l.stop:
			return
		case _, ok := <-l.store.Events():
			if !ok {
				return
			}
		case <-l.kick:
		case <-tick.C:
		}
		// Coalesce a burst of events into one pass.
		for drained := false; !drained; {
			select {
			case <-l.store.Events():
			default:
				drained = true
			}
		}
		l.reconcile()
	}
}

func (l *Listener) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Listener) bePath(k devKey) string {
	return fmt.Sprintf("/local/domain/0/backend/%s/%d/%d", DeviceType, k.dom, k.vhost)
}

func fePath(k devKey) string {
	return fmt.Sprintf("/local/domain/%d/device/%s/%d", k.dom, DeviceType, k.vhost)
}

func (l *Listener) write(d *device, node, value string) {
	if err := l.store.Write(0, l.bePath(d.key)+"/"+node, value); err != nil {
		l.log.Warn("xenstore write failed", zap.String("node", node), zap.Error(err))
	}
}

// domains maps the configured guests to running domains.
func (l *Listener) domains() map[devKey]string {
	ids, err := l.store.List(0, "/local/domain")
	if err != nil {
		return nil
	}
	byName := map[string]xen.DomID{}
	present := map[xen.DomID]bool{}
	for _, s := range ids {
		id, err := strconv.ParseUint(s, 10, 16)
		if err != nil || id == 0 {
			continue
		}
		present[xen.DomID(id)] = true
		if name, err := l.store.Read(0, "/local/domain/"+s+"/name"); err == nil {
			byName[name] = xen.DomID(id)
		}
	}
	out := map[devKey]string{}
	for _, g := range l.cfg.Guests {
		id, ok := byName[g.Domain]
		if !ok {
			if n, err := strconv.ParseUint(g.Domain, 10, 16); err == nil && present[xen.DomID(n)] {
				id, ok = xen.DomID(n), true
			}
		}
		if ok {
			out[devKey{id, g.VHost}] = g.Domain
		}
	}
	return out
}

func (l *Listener) reconcile() {
	want := l.domains()
	for k, name := range want {
		if l.devs[k] == nil {
			d := &device{key: k, name: name}
			if err := l.create(d); err != nil {
				l.log.Warn("creating the SRP ring device failed", zap.Uint16("domid", uint16(k.dom)), zap.Error(err))
				continue
			}
			l.devs[k] = d
		}
		if !l.watched[k.dom] {
			if err := l.store.Watch(fePath(devKey{k.dom, 0})[:strings.LastIndexByte(fePath(devKey{k.dom, 0}), '/')], "srpring"); err == nil {
				l.watched[k.dom] = true
			}
		}
	}
	for k, d := range l.devs {
		if _, ok := want[k]; ok && d.started && d.ch == nil {
			if _, err := l.store.Read(0, fePath(k)+"/state"); xenstore.IsNotExist(err) {
				// The domain ID was reused before the old domain's
				// release reached us: its new incarnation has no
				// device yet. Make it again.
				l.log.Info("domain re-created; making its SRP ring device again", zap.Uint16("domid", uint16(k.dom)))
				l.store.Remove(0, l.bePath(k))
				nd := &device{key: k, name: d.name}
				if err := l.create(nd); err != nil {
					l.log.Warn("creating the SRP ring device failed", zap.Uint16("domid", uint16(k.dom)), zap.Error(err))
				}
				l.devs[k] = nd
				delete(l.watched, k.dom)
				continue
			}
		}
		if _, ok := want[k]; !ok {
			l.log.Info("domain gone; removing its SRP ring device", zap.Uint16("domid", uint16(k.dom)))
			if d.ch != nil {
				d.ch.Close(errors.New("domain destroyed"))
			}
			l.store.Remove(0, l.bePath(k))
			delete(l.devs, k)
			delete(l.watched, k.dom)
			continue
		}
		l.step(d)
	}
}

// create writes both device directories, as a toolstack would: the
// backend's readable by the guest, then the frontend's owned by the guest,
// created and chmod'ed before its keys (docs/xen-srp-ring.md).
func (l *Listener) create(d *device) error {
	be, fe := l.bePath(d.key), fePath(d.key)
	dom := uint16(d.key.dom)
	if _, err := l.store.Read(0, be+"/state"); err == nil {
		// Left by an earlier backend: keep its state, the handshake
		// resolves it.
		l.writeFeatures(d)
		return nil
	}
	s := l.store
	if err := s.Mkdir(0, be); err != nil {
		return err
	}
	if err := s.SetPerms(0, be, []xenstore.Perm{{Dom: 0}, {Dom: dom, Read: true}}); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"frontend", fe}, {"frontend-id", strconv.Itoa(int(dom))}, {"online", "1"},
		{"state", strconv.Itoa(int(xenbus.Initialising))}} {
		if err := s.Write(0, be+"/"+kv[0], kv[1]); err != nil {
			return err
		}
	}
	l.writeFeatures(d)
	if err := s.Mkdir(0, fe); err != nil {
		return err
	}
	if err := s.SetPerms(0, fe, []xenstore.Perm{{Dom: dom}, {Dom: 0, Read: true}}); err != nil {
		return err
	}
	for {
		tx, err := s.Begin()
		if err != nil {
			return err
		}
		s.Write(tx, fe+"/backend", be)
		s.Write(tx, fe+"/backend-id", "0")
		s.Write(tx, fe+"/state", strconv.Itoa(int(xenbus.Initialising)))
		err = s.End(tx, true)
		if err == nil || !xenstore.IsAgain(err) {
			return err
		}
	}
}

func (l *Listener) writeFeatures(d *device) {
	l.write(d, "max-ring-page-order", strconv.Itoa(int(l.cfg.MaxRingPageOrder)))
	l.write(d, "max-slot-order", strconv.Itoa(int(l.cfg.MaxSlotOrder)))
	l.write(d, "target-port-id", hex.EncodeToString(l.cfg.TargetPortID[:]))
	iid := l.initiatorID(d.key)
	l.write(d, "initiator-port-id", hex.EncodeToString(iid[:]))
	if l.cfg.LUNames != nil {
		names := l.cfg.LUNames()
		luns := make([]int, 0, len(names))
		for n := range names {
			luns = append(luns, int(n))
		}
		sort.Ints(luns)
		l.store.Remove(0, l.bePath(d.key)+"/lus")
		for _, n := range luns {
			l.write(d, "lus/"+strconv.Itoa(n), names[uint16(n)])
		}
	}
}

// initiatorID is the guest's SRP initiator port ID: bytes 0..13 of the
// domain's UUID (a hash of its name if it has none), then the vhost
// number with bit 15 set (bit 15 clear is the vscsi device's).
func (l *Listener) initiatorID(k devKey) [16]byte {
	var id [16]byte
	base := "/local/domain/" + strconv.Itoa(int(k.dom))
	src := ""
	if vm, err := l.store.Read(0, base+"/vm"); err == nil {
		src = strings.ReplaceAll(strings.TrimPrefix(vm, "/vm/"), "-", "")
	}
	b, err := hex.DecodeString(src)
	if err != nil || len(b) < 14 {
		name, _ := l.store.Read(0, base+"/name")
		h := sha256.Sum256([]byte(name))
		b = h[:]
	}
	copy(id[:14], b)
	id[14] = byte(k.vhost>>8) | 0x80
	id[15] = byte(k.vhost)
	return id
}

func (l *Listener) state(path string) (xenbus.State, bool) {
	v, err := l.store.Read(0, path)
	if err != nil {
		return xenbus.Unknown, false
	}
	return xenbus.ParseState(v), true
}

// step runs the device's handshake (docs/xen-srp-ring.md, "States").
func (l *Listener) step(d *device) {
	be, fe := l.bePath(d.key), fePath(d.key)
	bs, _ := l.state(be + "/state")
	fs, _ := l.state(fe + "/state")
	set := func(s xenbus.State) {
		if bs != s {
			l.write(d, "state", strconv.Itoa(int(s)))
			bs = s
		}
	}
	if d.ch != nil {
		select {
		case <-d.ch.Done():
			// The session or a fault ended the ring.
			d.ch = nil
			set(xenbus.Closing)
		default:
			if fs != xenbus.Initialised && fs != xenbus.Connected {
				d.ch.Close(fmt.Errorf("frontend state %v", fs))
			}
			return
		}
	}
	if !d.started {
		d.started = true
		switch {
		case fs == xenbus.Initialised && bs == xenbus.InitWait:
		case fs == xenbus.Initialised || fs == xenbus.Connected:
			// A frontend attached to an earlier backend: make it start over.
			set(xenbus.Closing)
			return
		default:
			set(xenbus.InitWait)
		}
	}
	switch {
	case bs == xenbus.Closing || bs == xenbus.Closed || bs == xenbus.Initialising || bs == xenbus.Unknown:
		if fs == xenbus.Closed || fs == xenbus.Initialising || fs == xenbus.Unknown {
			set(xenbus.InitWait)
		}
	case bs == xenbus.InitWait && fs == xenbus.Initialised:
		ch, err := l.connect(d)
		if err != nil {
			l.log.Warn("refusing an SRP ring frontend", zap.Uint16("domid", uint16(d.key.dom)),
				zap.Int("vhost", d.key.vhost), zap.Error(err))
			set(xenbus.Closing)
			return
		}
		d.ch = ch
		set(xenbus.Connected)
		go l.await(d, ch)
	}
}

func readUint(s xen.Store, path string, max uint64) (uint64, error) {
	v, err := s.Read(0, path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		if len(v) > 32 {
			v = v[:32] + "..."
		}
		return 0, fmt.Errorf("%s: %q is not a number in 0..%d", path[strings.LastIndexByte(path, '/')+1:], v, max)
	}
	return n, nil
}

// connect maps the ring and binds its event channel.
func (l *Listener) connect(d *device) (*Channel, error) {
	fe := fePath(d.key)
	po, err := readUint(l.store, fe+"/ring-page-order", uint64(l.cfg.MaxRingPageOrder))
	if err != nil {
		return nil, err
	}
	so, err := readUint(l.store, fe+"/slot-order", MaxSlotOrder)
	if err != nil {
		return nil, err
	}
	geo := Geometry{PageOrder: uint(po), SlotOrder: uint(so)}
	if err := geo.Check(l.cfg.MaxRingPageOrder, l.cfg.MaxSlotOrder); err != nil {
		return nil, err
	}
	refs := make([]xen.GrantRef, geo.TotalPages())
	for i := range refs {
		r, err := readUint(l.store, fe+"/ring-ref"+strconv.Itoa(i), 1<<32-1)
		if err != nil {
			return nil, err
		}
		refs[i] = xen.GrantRef(r)
	}
	port, err := readUint(l.store, fe+"/event-channel", 1<<32-1)
	if err != nil {
		return nil, err
	}
	hv := l.cfg.Hypervisor
	g, err := hv.Grants()
	if err != nil {
		return nil, err
	}
	region, err := g.Map(d.key.dom, refs, true)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("mapping the ring: %w", err)
	}
	ev, err := hv.BindInterdomain(d.key.dom, uint32(port))
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("binding event channel %d: %w", port, err)
	}
	log := l.log.With(zap.Uint16("domid", uint16(d.key.dom)), zap.Int("vhost", d.key.vhost))
	ch, err := newChannel(log, d.key.dom, geo, g, region, ev, l.cfg.SendTimeout)
	if err != nil {
		ev.Close()
		g.Close()
		return nil, err
	}
	ch.onClose = func(error) { l.poke() }
	log.Info("SRP ring attached", zap.Int("pages", geo.TotalPages()), zap.Int("slots", geo.Slots()),
		zap.Int("slot_size", geo.SlotSize()), zap.Uint32("event_channel", uint32(port)))
	return ch, nil
}

// ErrImpersonation is a login whose initiator port ID is not the guest's.
var ErrImpersonation = errors.New("srpring: SRP_LOGIN_REQ names another initiator port")

// await waits for the ring's SRP_LOGIN_REQ and hands the channel out.
func (l *Listener) await(d *device, ch *Channel) {
	if err := ch.readLogin(l.cfg.LoginTimeout); err != nil {
		if !errors.Is(err, srp.ErrClosed) {
			ch.fault(err)
		}
		return
	}
	if want := l.initiatorID(d.key); ch.login.InitiatorPortID != want {
		ch.Reject(&srp.LoginRej{Tag: ch.login.Tag, Reason: srp.RejUnableToEstablish, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect})
		ch.fault(fmt.Errorf("%w: %x, the guest's is %x", ErrImpersonation, ch.login.InitiatorPortID, want))
		return
	}
	select {
	case l.accept <- ch:
	case <-l.stop:
		ch.Close(errors.New("backend shutting down"))
	}
}
