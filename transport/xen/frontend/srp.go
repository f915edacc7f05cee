package frontend

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/srpring"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
)

// SRPConfig configures an SRP ring frontend.
type SRPConfig struct {
	// VHost is the device number (device/vsrp/<VHost>).
	VHost int
	// PageOrder and SlotOrder shape the ring (capped by what the backend
	// offers); zero takes srpring's defaults.
	PageOrder, SlotOrder uint
}

// PollSpins is how many times Recv yields and looks at the response ring
// again before it sleeps on the event channel.
var PollSpins = 64

// SRPConn is the frontend end of an SRP ring: an initiator.Conn.
type SRPConn struct {
	d       *device
	geo     srpring.Geometry
	frame   uint32
	refs    []xen.GrantRef
	ring    *srpring.Ring
	ringMem []byte
	prod    *srpring.Producer
	cons    *srpring.Consumer
	ev      xen.EventChannel
	iid     [16]byte
	tid     [16]byte
	luns    map[string]uint16
	rbuf    []byte
	sendMu  sync.Mutex

	rspWake, spaceWake chan struct{}
	done               chan struct{}
	closeOnce          sync.Once
	errMu              sync.Mutex
	err                error

	regMu sync.Mutex
	regs  map[uint32]*region
	spare map[int][]*region // finished regions by page count, for reuse
}

var _ initiator.Conn = (*SRPConn)(nil)

type region struct {
	b          []byte
	mem        []byte
	frame      uint32
	refs       []xen.GrantRef
	rframe     uint32
	rref       xen.GrantRef
	writable   bool
	regionPage []byte
	npages     int
}

// DialSRP attaches an SRP ring to the backend: it waits for the device
// and its backend's InitWait, grants the ring, allocates the event
// channel, writes its nodes and waits for Connected. Login follows.
func DialSRP(ctx context.Context, g Guest, cfg SRPConfig) (*SRPConn, error) {
	d, err := openDevice(ctx, g, srpring.DeviceType, cfg.VHost)
	if err != nil {
		return nil, err
	}
	c := &SRPConn{d: d, rspWake: make(chan struct{}, 1), spaceWake: make(chan struct{}, 1),
		done: make(chan struct{}), regs: map[uint32]*region{}, spare: map[int][]*region{}}
	if err := c.attach(ctx, cfg); err != nil {
		c.teardown()
		return nil, err
	}
	go c.events()
	go c.watch()
	return c, nil
}

func (c *SRPConn) attach(ctx context.Context, cfg SRPConfig) error {
	d := c.d
	if err := d.wait(ctx, func() (bool, error) { return d.backendState() == xenbus.InitWait, nil }); err != nil {
		return fmt.Errorf("frontend: waiting for the backend: %w", err)
	}
	maxPO, err := d.readUint("max-ring-page-order")
	if err != nil {
		return err
	}
	maxSO, err := d.readUint("max-slot-order")
	if err != nil {
		return err
	}
	for _, x := range []struct {
		node string
		id   *[16]byte
	}{{"target-port-id", &c.tid}, {"initiator-port-id", &c.iid}} {
		v, err := d.st.Read(0, d.be+"/"+x.node)
		if err != nil {
			return err
		}
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 16 {
			return fmt.Errorf("frontend: %s %q", x.node, v)
		}
		copy(x.id[:], b)
	}
	c.luns = map[string]uint16{}
	if ns, err := d.st.List(0, d.be+"/lus"); err == nil {
		for _, n := range ns {
			lun, err := strconv.ParseUint(n, 10, 16)
			if name, rerr := d.st.Read(0, d.be+"/lus/"+n); err == nil && rerr == nil {
				c.luns[name] = uint16(lun)
			}
		}
	}
	geo := srpring.Geometry{PageOrder: cfg.PageOrder, SlotOrder: cfg.SlotOrder}
	if geo.PageOrder == 0 {
		geo.PageOrder = srpring.DefaultRingPageOrder
	}
	if geo.SlotOrder == 0 {
		geo.SlotOrder = srpring.DefaultSlotOrder
	}
	geo.PageOrder = min(geo.PageOrder, uint(maxPO))
	geo.SlotOrder = min(geo.SlotOrder, uint(maxSO))
	if err := geo.Check(uint(maxPO), uint(maxSO)); err != nil {
		return err
	}
	c.geo = geo
	f, mem, refs, err := d.grantPages(geo.TotalPages(), false)
	if err != nil {
		return err
	}
	c.frame, c.refs, c.ringMem = f, refs, mem
	if c.ring, err = srpring.NewRing(mem, geo); err != nil {
		return err
	}
	c.ring.Init(0)
	c.prod, c.cons = c.ring.Frontend()
	c.rbuf = make([]byte, geo.SlotSize())
	if c.ev, err = d.g.AllocUnbound(d.backendID); err != nil {
		return err
	}
	nodes := [][2]string{{"ring-page-order", strconv.Itoa(int(geo.PageOrder))}, {"slot-order", strconv.Itoa(int(geo.SlotOrder))},
		{"event-channel", strconv.Itoa(int(c.ev.LocalPort()))}}
	for i, r := range refs {
		nodes = append(nodes, [2]string{"ring-ref" + strconv.Itoa(i), strconv.Itoa(int(r))})
	}
	if err := d.writeNodes(nodes, xenbus.Initialised); err != nil {
		return err
	}
	if err := d.wait(ctx, func() (bool, error) {
		switch d.backendState() {
		case xenbus.Connected:
			return true, nil
		case xenbus.Closing, xenbus.Closed:
			return false, fmt.Errorf("frontend: the backend refused the ring: %w", ErrBackendGone)
		}
		return false, nil
	}); err != nil {
		return err
	}
	return d.setState(xenbus.Connected)
}

// InitiatorPortID is the port ID the backend assigned this guest; a login
// must use it.
func (c *SRPConn) InitiatorPortID() [16]byte { return c.iid }

// TargetPortID is the target port the ring logs in to.
func (c *SRPConn) TargetPortID() [16]byte { return c.tid }

// LUN returns the LUN of the LU the backend published under name.
func (c *SRPConn) LUN(name string) (uint16, bool) {
	l, ok := c.luns[name]
	return l, ok
}

// Geometry is the ring's shape.
func (c *SRPConn) Geometry() srpring.Geometry { return c.geo }

// Ring exposes the shared ring (hostile-frontend tests).
func (c *SRPConn) Ring() *srpring.Ring { return c.ring }

// Notify kicks the backend (hostile-frontend tests).
func (c *SRPConn) Notify() error { return c.ev.Notify() }

func (c *SRPConn) events() {
	for {
		if err := c.ev.Wait(); err != nil {
			return
		}
		for _, w := range []chan struct{}{c.rspWake, c.spaceWake} {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}

// watch ends the connection when the backend leaves Connected.
func (c *SRPConn) watch() {
	for {
		select {
		case _, ok := <-c.d.st.Events():
			if !ok {
				c.fail(xen.ErrClosed)
				return
			}
			if s := c.d.backendState(); s != xenbus.Connected {
				c.fail(fmt.Errorf("%w (state %v)", ErrBackendGone, s))
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *SRPConn) fail(err error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
	})
}

// Err is why the connection ended.
func (c *SRPConn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Done is closed when the connection ends.
func (c *SRPConn) Done() <-chan struct{} { return c.done }

// Login sends the SRP_LOGIN_REQ in the first slot and waits for the answer.
func (c *SRPConn) Login(ctx context.Context, req *srp.LoginReq) (*srp.LoginRsp, *srp.LoginRej, error) {
	var buf [srp.LoginReqLen]byte
	n, err := req.Encode(buf[:])
	if err != nil {
		return nil, nil, err
	}
	if err := c.Send(buf[:n]); err != nil {
		return nil, nil, err
	}
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() { b, err := c.Recv(); ch <- res{b, err} }()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		c.Close()
		return nil, nil, ctx.Err()
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	var iu srp.IU
	if err := iu.DecodeFromTarget(r.b); err != nil {
		return nil, nil, err
	}
	switch iu.Op {
	case srp.OpLoginRsp:
		return &iu.LoginRsp, nil, nil
	case srp.OpLoginRej:
		return nil, &iu.LoginRej, errors.New("frontend: login rejected")
	}
	return nil, nil, fmt.Errorf("frontend: %v in answer to SRP_LOGIN_REQ", iu.Op)
}

// Send puts one IU in the next request slot.
func (c *SRPConn) Send(iu []byte) error {
	if len(iu) > c.geo.MaxIU() {
		return fmt.Errorf("frontend: IU of %d bytes exceeds the slot's %d", len(iu), c.geo.MaxIU())
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	for {
		n, err := c.prod.Space()
		if err == nil && n == 0 {
			n, err = c.prod.ArmSpace()
		}
		if err != nil {
			c.fail(err)
			return err
		}
		if n > 0 {
			break
		}
		select {
		case <-c.spaceWake:
		case <-c.done:
			return c.Err()
		}
	}
	c.prod.Put(iu)
	if c.prod.Publish() {
		return c.ev.Notify()
	}
	return nil
}

// PutRaw puts a raw slot (hostile-frontend tests).
func (c *SRPConn) PutRaw(slot []byte) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	copy(c.prod.Slot(), slot)
	c.prod.Advance()
	c.prod.Publish()
	c.ev.Notify()
}

// Recv returns the next IU from the backend, valid until the next Recv.
func (c *SRPConn) Recv() ([]byte, error) {
	for {
		n, err := c.cons.Pending()
		for spin := 0; err == nil && n == 0 && spin < PollSpins; spin++ {
			runtime.Gosched()
			n, err = c.cons.Pending()
		}
		if err == nil && n == 0 {
			n, err = c.cons.Arm()
		}
		if err != nil {
			c.fail(err)
			return nil, err
		}
		if n > 0 {
			break
		}
		select {
		case <-c.rspWake:
		case <-c.done:
			return nil, c.Err()
		}
	}
	c.cons.Copy(c.rbuf)
	if c.cons.Publish() {
		c.ev.Notify()
	}
	b, err := srpring.SlotIU(c.rbuf)
	if err != nil {
		c.fail(err)
		return nil, err
	}
	return b, nil
}

// MaxIU is the largest IU a slot carries.
func (c *SRPConn) MaxIU() int { return c.geo.MaxIU() }

// Register copies b into granted guest pages (bounce buffers: only guest
// memory can be granted) and returns a region descriptor for them; for a
// writable region Unregister copies the backend's data back into b. The
// pages and grant references of finished regions are kept for reuse.
func (c *SRPConn) Register(b []byte, writable bool) (srp.MemDesc, error) {
	n := max(1, (len(b)+srpring.PageSize-1)/srpring.PageSize)
	if n > srpring.RegionMaxPages {
		return srp.MemDesc{}, fmt.Errorf("frontend: a region of %d bytes exceeds 4 MiB", len(b))
	}
	g := c.d.g
	c.regMu.Lock()
	defer c.regMu.Unlock()
	var r *region
	if l := c.spare[n]; len(l) > 0 {
		r = l[len(l)-1]
		c.spare[n] = l[:len(l)-1]
	} else {
		f, mem, err := g.AllocPages(n + 1)
		if err != nil {
			return srp.MemDesc{}, err
		}
		r = &region{mem: mem[srpring.PageSize:], frame: f + 1, rframe: f, regionPage: mem[:srpring.PageSize], npages: n + 1}
		for i := 0; i < n; i++ {
			ref, err := g.AllocRef()
			if err != nil {
				c.free(r)
				return srp.MemDesc{}, err
			}
			r.refs = append(r.refs, ref)
			le32(r.regionPage[4*i:], uint32(ref))
		}
		if r.rref, err = g.AllocRef(); err != nil {
			c.free(r)
			return srp.MemDesc{}, err
		}
	}
	r.b, r.writable = b, writable
	for i, ref := range r.refs {
		g.Grant(ref, c.d.backendID, r.frame+uint32(i), !writable)
	}
	g.Grant(r.rref, c.d.backendID, r.rframe, true)
	if !writable {
		copy(r.mem, b)
	}
	c.regs[uint32(r.rref)] = r
	return srp.MemDesc{Addr: srpring.RegionFlag, Key: uint32(r.rref), Len: uint32(len(b))}, nil
}

func le32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }

func (c *SRPConn) free(r *region) {
	g := c.d.g
	for _, ref := range r.refs {
		g.FreeRef(ref)
	}
	if r.rref != 0 {
		g.FreeRef(r.rref)
	}
	g.FreePages(r.rframe, r.npages)
}

// Unregister withdraws a region (copying data-in back).
func (c *SRPConn) Unregister(d srp.MemDesc) {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	r := c.regs[d.Key]
	if r == nil {
		return
	}
	delete(c.regs, d.Key)
	if r.writable {
		copy(r.b, r.mem)
	}
	g := c.d.g
	for _, ref := range r.refs {
		g.Revoke(ref)
	}
	g.Revoke(r.rref)
	r.b = nil
	n := len(r.refs)
	if len(c.spare[n]) < 256 {
		c.spare[n] = append(c.spare[n], r)
	} else {
		c.free(r)
	}
}

// Close tears the ring down and closes the device (state Closed), so the
// backend makes it ready for the next attach.
func (c *SRPConn) Close() error {
	c.fail(errors.New("frontend: closed"))
	c.teardown()
	return nil
}

func (c *SRPConn) teardown() {
	d := c.d
	if c.ev != nil {
		c.ev.Close()
	}
	d.setState(xenbus.Closing)
	if c.refs != nil {
		// The backend unmaps the ring once it sees Closing; give it the
		// chance before the pages are reused (Xen would refuse to end
		// access to a mapped grant).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.wait(ctx, func() (bool, error) {
			s := d.backendState()
			return s != xenbus.Connected, nil
		})
		cancel()
		d.ungrantPages(c.frame, c.refs)
		c.refs = nil
	}
	d.setState(xenbus.Closed)
	d.st.Close()
	c.regMu.Lock()
	for _, l := range c.spare {
		for _, r := range l {
			c.free(r)
		}
	}
	c.spare = map[int][]*region{}
	c.regMu.Unlock()
}
