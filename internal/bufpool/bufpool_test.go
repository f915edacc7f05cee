package bufpool

import (
	"sync"
	"testing"
)

func TestClassesAndReuse(t *testing.T) {
	made := map[int]int{}
	p := New(func(n int) []byte { made[n]++; return make([]byte, n) })
	for _, tc := range []struct{ n, cap int }{{1, 4096}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}} {
		b := p.Get(tc.n)
		if len(b) != tc.n || cap(b) != tc.cap {
			t.Fatalf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.cap)
		}
		p.Put(b)
		if c := p.Get(tc.n); &c[:1][0] != &b[:1][0] {
			t.Fatalf("Get(%d) after Put: a new buffer, want the one just freed", tc.n)
		}
	}
	// larger than the largest class: made to size, not kept
	big := p.Get(1<<maxShift + 1)
	if cap(big) != 1<<maxShift+1 {
		t.Fatalf("oversize Get: cap %d", cap(big))
	}
	p.Put(big)
	if made[1<<maxShift+1] != 1 || p.Get(1<<maxShift+1) == nil || made[1<<maxShift+1] != 2 {
		t.Fatalf("oversize buffers must not be pooled: made %v", made)
	}
	// a buffer not from the pool (odd capacity) is dropped
	p.Put(make([]byte, 5000))
	if b := p.Get(5000); cap(b) != 8192 {
		t.Fatalf("Get(5000) returned a foreign buffer of cap %d", cap(b))
	}
}

func TestLastFreedFirst(t *testing.T) {
	p := New(nil)
	a, b := p.Get(4096), p.Get(4096)
	p.Put(a)
	p.Put(b)
	if c := p.Get(4096); &c[0] != &b[0] {
		t.Fatal("Get returned an older buffer, want the one freed last (still in cache)")
	}
}

func TestBounded(t *testing.T) {
	n := 0
	p := New(func(sz int) []byte { n++; return make([]byte, sz) })
	var bufs [][]byte
	for range perClass + 10 {
		bufs = append(bufs, p.Get(4096))
	}
	for _, b := range bufs {
		p.Put(b)
	}
	n = 0
	for range perClass + 10 {
		p.Get(4096)
	}
	if n != 10 {
		t.Fatalf("after freeing %d buffers, %d Gets made %d new ones, want 10 (the class keeps %d)", perClass+10, perClass+10, n, perClass)
	}
}

func TestConcurrent(t *testing.T) {
	p := New(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				b := p.Get(4096 << (i % 3))
				b[0], b[len(b)-1] = byte(g), byte(g)
				if b[0] != byte(g) || b[len(b)-1] != byte(g) {
					t.Error("buffer shared between two holders")
					return
				}
				p.Put(b)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkGetPut(b *testing.B) {
	p := New(nil)
	b.ReportAllocs()
	for b.Loop() {
		p.Put(p.Get(4096))
	}
}
