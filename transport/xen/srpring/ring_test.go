package srpring

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
	"unsafe"
)

// newHeapRing builds a ring on a cache-line aligned heap slice.
func newHeapRing(t testing.TB, g Geometry) (*Ring, []byte) {
	t.Helper()
	raw := make([]byte, g.TotalPages()*PageSize+64)
	off := int(64-uintptr(unsafe.Pointer(&raw[0]))%64) % 64
	mem := raw[off : off+g.TotalPages()*PageSize]
	r, err := NewRing(mem, g)
	if err != nil {
		t.Fatal(err)
	}
	return r, mem
}

// Both directions carry IUs in order across the 2^32 wrap, with random
// interleavings of producing, consuming and publishing, and a consumer
// that armed its event is always notified of the next slot.
func TestRingRandomized(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4} {
		rnd := rand.New(rand.NewSource(seed))
		g := Geometry{PageOrder: uint(rnd.Intn(2)), SlotOrder: 7 + uint(rnd.Intn(3))}
		r, _ := newHeapRing(t, g)
		r.Init(^uint32(0) - 40)
		fp, fc := r.Frontend()
		bc, bp := r.Backend()
		var sent, got, rsent, rgot int
		slot := make([]byte, g.SlotSize())
		armed := false
		for step := 0; step < 20000; step++ {
			switch rnd.Intn(6) {
			case 0: // frontend produces a request
				n, err := fp.Space()
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					iu := bytes.Repeat([]byte{byte(sent)}, 1+sent%(g.MaxIU()))
					fp.Put(iu)
					sent++
				}
			case 1: // frontend publishes; a consumer that armed hears of it
				had := fp.Pvt != r.Load(OffReqProd)
				if fp.Publish() {
					armed = false
				} else if armed && had {
					t.Fatalf("seed %d: an armed consumer was not notified", seed)
				}
			case 2: // backend consumes
				n, err := bc.Pending()
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					if n, _ = bc.Arm(); n == 0 {
						armed = true
					}
					continue
				}
				bc.Copy(slot)
				iu, err := SlotIU(slot)
				if err != nil || len(iu) != 1+got%g.MaxIU() || iu[0] != byte(got) {
					t.Fatalf("seed %d: request %d: %v %d bytes", seed, got, err, len(iu))
				}
				got++
				bc.Publish()
			case 3: // backend answers
				if n, _ := bp.Space(); n > 0 && rsent < got {
					bp.Put([]byte{byte(rsent)})
					rsent++
				}
			case 4:
				bp.Publish()
			case 5: // frontend reads responses
				if n, _ := fc.Pending(); n > 0 {
					fc.Copy(slot)
					iu, _ := SlotIU(slot)
					if iu[0] != byte(rgot) {
						t.Fatalf("seed %d: response %d out of order", seed, rgot)
					}
					rgot++
					fc.Publish()
				}
			}
		}
		if got == 0 || rgot == 0 || fp.Pvt-(^uint32(0)-40) < 64 {
			t.Fatalf("seed %d: too little traffic (%d requests, %d responses)", seed, got, rgot)
		}
	}
}

func TestRingOverflow(t *testing.T) {
	g := Geometry{PageOrder: 0, SlotOrder: 8}
	r, _ := newHeapRing(t, g)
	r.Init(0)
	_, bp := r.Backend()
	bc, _ := r.Backend()
	r.Store(OffReqProd, uint32(g.Slots())+1)
	if _, err := bc.Pending(); !errors.Is(err, ErrOverflow) {
		t.Errorf("producer past the ring: %v", err)
	}
	r.Store(OffReqProd, ^uint32(0)) // moved backwards
	if _, err := bc.Pending(); !errors.Is(err, ErrOverflow) {
		t.Errorf("producer moved back: %v", err)
	}
	if n, err := bp.Space(); n != g.Slots() || err != nil {
		t.Fatalf("empty response ring: Space %d, %v", n, err)
	}
	r.Store(OffRspCons, 5) // consumed responses never produced
	if _, err := bp.Refresh(); !errors.Is(err, ErrOverflow) {
		t.Errorf("consumer past the producer: %v", err)
	}
}

func TestGeometryCheck(t *testing.T) {
	for _, c := range []struct {
		g  Geometry
		ok bool
	}{
		{Geometry{0, 7}, true}, {Geometry{4, 12}, true}, {Geometry{5, 8}, false}, {Geometry{0, 6}, false},
		{Geometry{0, 13}, false}, {Geometry{2, 15}, false},
	} {
		if err := c.g.Check(4, 12); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.g, err)
		}
	}
}

func TestCheckDesc(t *testing.T) {
	for _, c := range []struct {
		addr uint64
		n    uint32
		ok   bool
	}{
		{0, 4096, true}, {4095, 1, true}, {4000, 200, false}, {4096, 0, false}, {1 << 40, 1, false},
		{RegionFlag, RegionMax, true}, {RegionFlag | 1, RegionMax, false}, {RegionFlag | RegionMax, 0, false},
		{RegionFlag | 1<<40, 1, false},
	} {
		if err := CheckDesc(srpDesc(c.addr, c.n)); (err == nil) != c.ok {
			t.Errorf("addr %#x len %d: %v", c.addr, c.n, err)
		}
	}
}
