package srpring

import (
	"errors"
	"fmt"

	"github.com/srptgt/srptgt/transport/xen/internal/shm"
)

// ErrOverflow: the peer's index claims more slots in use than the ring
// has (a producer index past the consumer by more than the ring, or a
// consumer index past the producer). The peer is disconnected.
var ErrOverflow = errors.New("srpring: ring index overflows the ring")

// Ring is a view of the shared area; it does no I/O. Production passes
// the mapped grant pages, tests a heap slice.
type Ring struct {
	g      Geometry
	hdr    []byte
	req    []byte
	rsp    []byte
	nslots uint32
	size   int
}

// NewRing returns a view of region, which holds g.TotalPages() pages.
func NewRing(region []byte, g Geometry) (*Ring, error) {
	if err := g.Check(MaxRingPageOrder, MaxSlotOrder); err != nil {
		return nil, err
	}
	need := g.TotalPages() * PageSize
	if len(region) < need {
		return nil, fmt.Errorf("srpring: ring of %d bytes, need %d", len(region), need)
	}
	if !shm.Aligned(region, 64) {
		return nil, errors.New("srpring: ring is not cache-line aligned")
	}
	p := g.Pages() * PageSize
	return &Ring{g: g, hdr: region[:PageSize:PageSize], req: region[PageSize : PageSize+p : PageSize+p],
		rsp: region[PageSize+p : PageSize+2*p : PageSize+2*p], nslots: uint32(g.Slots()), size: g.SlotSize()}, nil
}

// Geometry is the ring's shape.
func (r *Ring) Geometry() Geometry { return r.g }

// Init initialises the header as a frontend does before granting it:
// every index start, every event start+1 (tests use values near 2^32).
func (r *Ring) Init(start uint32) {
	clear(r.hdr)
	le.PutUint32(r.hdr[OffMagic:], Magic)
	le.PutUint32(r.hdr[OffVersion:], Version)
	for _, off := range []int{OffReqProd, OffRspCons, OffRspProd, OffReqCons} {
		shm.Store32(r.hdr, off, start)
	}
	for _, off := range []int{OffReqConsEvent, OffRspEvent, OffRspConsEvent, OffReqEvent} {
		shm.Store32(r.hdr, off, start+1)
	}
}

// Load reads a header index (diagnostics and tests).
func (r *Ring) Load(off int) uint32 { return shm.Load32(r.hdr, off) }

// Store writes a header index (hostile-peer tests).
func (r *Ring) Store(off int, v uint32) { shm.Store32(r.hdr, off, v) }

type dir struct {
	slots                            []byte
	prod, cons, prodEvent, consEvent int
}

func (r *Ring) reqDir() dir { return dir{r.req, OffReqProd, OffReqCons, OffReqEvent, OffReqConsEvent} }
func (r *Ring) rspDir() dir { return dir{r.rsp, OffRspProd, OffRspCons, OffRspEvent, OffRspConsEvent} }

func (r *Ring) slot(d dir, i uint32) []byte {
	off := int(i%r.nslots) * r.size
	return d.slots[off : off+r.size : off+r.size]
}

// Producer is one end's producing half. Its index is private and only
// ever written to the shared header, never read back from it.
type Producer struct {
	r    *Ring
	d    dir
	Pvt  uint32 // next slot to fill
	pub  uint32 // last index published
	seen uint32 // the peer's consumer index when last read
}

// Consumer is one end's consuming half.
type Consumer struct {
	r    *Ring
	d    dir
	Cons uint32 // next slot to read
	pub  uint32
	seen uint32 // the peer's producer index when last read
}

// Backend returns the backend's halves: it consumes requests and
// produces responses, starting at the indexes the frontend initialised.
func (r *Ring) Backend() (*Consumer, *Producer) {
	c := shm.Load32(r.hdr, OffReqCons)
	p := shm.Load32(r.hdr, OffRspProd)
	return &Consumer{r: r, d: r.reqDir(), Cons: c, pub: c, seen: c}, &Producer{r: r, d: r.rspDir(), Pvt: p, pub: p, seen: p}
}

// Frontend returns the frontend's halves.
func (r *Ring) Frontend() (*Producer, *Consumer) {
	p := shm.Load32(r.hdr, OffReqProd)
	c := shm.Load32(r.hdr, OffRspCons)
	return &Producer{r: r, d: r.reqDir(), Pvt: p, pub: p, seen: p}, &Consumer{r: r, d: r.rspDir(), Cons: c, pub: c, seen: c}
}

// Slots is the number of slots.
func (p *Producer) Slots() int { return int(p.r.nslots) }

// Space returns how many slots are free. It reads the peer's consumer
// index only when the index it read last leaves no free slot: the peer's
// index is a cache line the peer writes, so every read of it is a miss.
func (p *Producer) Space() (int, error) {
	if used := p.Pvt - p.seen; used < p.r.nslots {
		return int(p.r.nslots - used), nil
	}
	return p.Refresh()
}

// Refresh reads the peer's consumer index, checks it and returns how many
// slots are free.
func (p *Producer) Refresh() (int, error) {
	c := shm.Load32(p.r.hdr, p.d.cons)
	used := p.Pvt - c
	if used > p.r.nslots {
		return 0, fmt.Errorf("%w: consumer index %d, producer %d, %d slots", ErrOverflow, c, p.Pvt, p.r.nslots)
	}
	p.seen = c
	return int(p.r.nslots - used), nil
}

// ArmSpace asks the consumer to notify when it frees a slot, and reads
// the space once more (so a slot freed meanwhile is not missed).
func (p *Producer) ArmSpace() (int, error) {
	shm.Store32(p.r.hdr, p.d.consEvent, shm.Load32(p.r.hdr, p.d.cons)+1)
	return p.Refresh()
}

// Slot is the next slot to fill (private until Publish).
func (p *Producer) Slot() []byte { return p.r.slot(p.d, p.Pvt) }

// Put writes iu into the next slot and advances (private until Publish).
func (p *Producer) Put(iu []byte) {
	s := p.Slot()
	n := copy(s[SlotHeader:], iu)
	PutSlot(s, n)
	p.Pvt++
}

// Advance moves past a slot filled through Slot.
func (p *Producer) Advance() { p.Pvt++ }

// Publish makes the filled slots visible and reports whether the consumer
// asked to be notified of one of them.
func (p *Producer) Publish() bool {
	old, nw := p.pub, p.Pvt
	if old == nw {
		return false
	}
	shm.Store32(p.r.hdr, p.d.prod, nw)
	p.pub = nw
	ev := shm.Load32(p.r.hdr, p.d.prodEvent)
	return nw-ev < nw-old
}

// Pending reads the peer's producer index once and returns how many slots
// wait to be consumed.
func (c *Consumer) Pending() (int, error) {
	p := shm.Load32(c.r.hdr, c.d.prod)
	n := p - c.Cons
	if n > c.r.nslots {
		return 0, fmt.Errorf("%w: producer index %d, consumer %d, %d slots", ErrOverflow, p, c.Cons, c.r.nslots)
	}
	c.seen = p
	return int(n), nil
}

// Seen returns how many slots the producer index read last says wait to
// be consumed, without reading it again.
func (c *Consumer) Seen() int { return int(c.seen - c.Cons) }

// Arm asks the producer to notify on the next slot and reads the producer
// index once more (RING_FINAL_CHECK).
func (c *Consumer) Arm() (int, error) {
	shm.Store32(c.r.hdr, c.d.prodEvent, c.Cons+1)
	return c.Pending()
}

// Copy copies the next slot into dst (a whole slot) and consumes it. The
// caller decodes dst, never the shared slot.
func (c *Consumer) Copy(dst []byte) {
	copy(dst[:c.r.size], c.r.slot(c.d, c.Cons))
	c.Cons++
}

// Publish makes the consumed slots free and reports whether the producer
// asked to be notified.
func (c *Consumer) Publish() bool {
	old, nw := c.pub, c.Cons
	if old == nw {
		return false
	}
	shm.Store32(c.r.hdr, c.d.cons, nw)
	c.pub = nw
	ev := shm.Load32(c.r.hdr, c.d.consEvent)
	return nw-ev < nw-old
}

// SlotSize is the slot size.
func (c *Consumer) SlotSize() int { return c.r.size }
