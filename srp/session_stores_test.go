package srp_test

import (
	"math/rand"
	"sync"
	"time"

	"github.com/srptgt/srptgt/backstore"
)

// gateStore holds every I/O that touches a gated byte range until the gate
// opens, and tells the test when one arrived. It also logs the order in
// which I/Os started.
type gateStore struct {
	backstore.Store
	mu      sync.Mutex
	gates   map[int64]chan struct{} // gated offset -> closed when open
	arrived chan int64
	order   []int64
}

func newGateStore(s backstore.Store) *gateStore {
	return &gateStore{Store: s, gates: map[int64]chan struct{}{}, arrived: make(chan int64, 64)}
}

// gate makes I/O at off block until open(off).
func (g *gateStore) gate(off int64) {
	g.mu.Lock()
	g.gates[off] = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateStore) open(off int64) {
	g.mu.Lock()
	if c, ok := g.gates[off]; ok {
		close(c)
		delete(g.gates, off)
	}
	g.mu.Unlock()
}

func (g *gateStore) enter(off int64) {
	g.mu.Lock()
	g.order = append(g.order, off)
	c := g.gates[off]
	g.mu.Unlock()
	if c != nil {
		g.arrived <- off
		<-c
	}
}

func (g *gateStore) started() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int64(nil), g.order...)
}

// Caps clears Immediate: a gate blocks.
func (g *gateStore) Caps() backstore.Caps {
	c := g.Store.Caps()
	c.Immediate = false
	return c
}

func (g *gateStore) ReadAt(p []byte, off int64) (int, error) {
	g.enter(off)
	return g.Store.ReadAt(p, off)
}

func (g *gateStore) WriteAt(p []byte, off int64) (int, error) {
	g.enter(off)
	return g.Store.WriteAt(p, off)
}

func (g *gateStore) WriteAtSync(p []byte, off int64) (int, error) {
	g.enter(off)
	return g.Store.WriteAtSync(p, off)
}

// jitterStore delays a random share of I/Os a little, so aborts find
// commands inside the backstore.
type jitterStore struct {
	backstore.Store
	mu  sync.Mutex
	rnd *rand.Rand
}

func (j *jitterStore) pause() {
	j.mu.Lock()
	d := time.Duration(0)
	if j.rnd.Intn(4) == 0 {
		d = time.Duration(j.rnd.Intn(300)) * time.Microsecond
	}
	j.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// Caps clears Immediate: the store sleeps.
func (j *jitterStore) Caps() backstore.Caps {
	c := j.Store.Caps()
	c.Immediate = false
	return c
}

func (j *jitterStore) ReadAt(p []byte, off int64) (int, error) {
	j.pause()
	return j.Store.ReadAt(p, off)
}

func (j *jitterStore) WriteAt(p []byte, off int64) (int, error) {
	j.pause()
	return j.Store.WriteAt(p, off)
}
