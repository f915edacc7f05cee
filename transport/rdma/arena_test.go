package rdma

import (
	"math/rand/v2"
	"testing"
)

type heapMR struct{ b []byte }

func (m heapMR) Bytes() []byte { return m.b }
func (m heapMR) Addr() uint64  { return 0x10000000 }
func (m heapMR) LKey() uint32  { return 1 }
func (m heapMR) RKey() uint32  { return 2 }
func (m heapMR) Close() error  { return nil }

func newTestArena(size int) *arena { return newArena(heapMR{make([]byte, size)}) }

// freeBytes walks the free lists.
func (a *arena) freeBytes() int {
	n := 0
	for k, h := range a.head {
		for b := h; b >= 0; b = a.next[b] {
			n += 1 << (k + arenaShift)
		}
	}
	return n
}

func TestArenaCoalesces(t *testing.T) {
	a := newTestArena(1 << 20)
	var bufs [][]byte
	for {
		b, err := a.alloc(4096)
		if err != nil {
			break
		}
		bufs = append(bufs, b)
	}
	if len(bufs) != 256 {
		t.Fatalf("%d 4 KiB blocks in 1 MiB", len(bufs))
	}
	if _, err := a.alloc(1); err != ErrNoBuffer {
		t.Fatalf("alloc from a full arena: %v", err)
	}
	for _, i := range rand.Perm(len(bufs)) {
		if !a.free(bufs[i]) {
			t.Fatal("free refused a block")
		}
	}
	// a 4 KiB phase must not strand a 1 MiB request
	b, err := a.alloc(1 << 20)
	if err != nil {
		t.Fatalf("1 MiB after freeing 256 x 4 KiB: %v", err)
	}
	if len(b) != 1<<20 || a.inUse() != 1<<20 {
		t.Fatalf("len %d in use %d", len(b), a.inUse())
	}
	a.free(b)
	if a.inUse() != 0 || a.freeBytes() != 1<<20 {
		t.Fatalf("in use %d free %d", a.inUse(), a.freeBytes())
	}
}

func TestArenaRejectsForeignAndDoubleFree(t *testing.T) {
	a := newTestArena(64 << 10)
	b, _ := a.alloc(100)
	if a.free(make([]byte, 10)) {
		t.Fatal("freed heap memory")
	}
	if a.free(b[1:]) {
		t.Fatal("freed an interior slice")
	}
	if !a.free(b) || a.free(b) {
		t.Fatal("double free accepted")
	}
	if a.freeBytes() != 64<<10 {
		t.Fatalf("free %d", a.freeBytes())
	}
}

// Non-power-of-two arenas are covered by aligned blocks; random traffic
// never hands out overlapping blocks and always returns to fully free.
func TestArenaRandom(t *testing.T) {
	const size = 3<<20 + 5<<12
	a := newTestArena(size)
	if a.freeBytes() != size {
		t.Fatalf("free %d of %d", a.freeBytes(), size)
	}
	r := rand.New(rand.NewPCG(1, 2))
	owner := make([]int, size>>arenaShift)
	live := map[int][]byte{}
	id := 0
	for i := 0; i < 20000; i++ {
		if len(live) > 0 && r.IntN(2) == 0 {
			for k, b := range live {
				off, _ := a.offset(b)
				for j := int(off) >> arenaShift; j < int(off)>>arenaShift+1<<orderOf(len(b)); j++ {
					owner[j] = 0
				}
				a.free(b)
				delete(live, k)
				break
			}
			continue
		}
		n := 1 + r.IntN(300<<10)
		b, err := a.alloc(n)
		if err != nil {
			continue
		}
		id++
		off, _ := a.offset(b)
		blocks := 1 << orderOf(n)
		for j := int(off) >> arenaShift; j < int(off)>>arenaShift+blocks; j++ {
			if owner[j] != 0 {
				t.Fatalf("block %d handed out twice", j)
			}
			owner[j] = id
		}
		live[id] = b
	}
	for _, b := range live {
		a.free(b)
	}
	if a.inUse() != 0 || a.freeBytes() != size {
		t.Fatalf("in use %d, free %d of %d", a.inUse(), a.freeBytes(), size)
	}
}

func TestArenaAllocFreeNoAllocs(t *testing.T) {
	a := newTestArena(8 << 20)
	if n := testing.AllocsPerRun(1000, func() {
		b, _ := a.alloc(4096)
		c, _ := a.alloc(128 << 10)
		a.free(b)
		a.free(c)
	}); n != 0 {
		t.Fatalf("%v allocations per alloc/free pair", n)
	}
}
