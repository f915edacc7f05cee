package backstore_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/srptgt/srptgt/backstore"
)

func openNull(t *testing.T, spec backstore.Spec) backstore.Store {
	t.Helper()
	spec.Kind = backstore.KindNull
	s, err := backstore.Open(spec)
	if err != nil {
		t.Fatalf("Open(%+v): %v", spec, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNullReadsZeros(t *testing.T) {
	s := openNull(t, backstore.Spec{Size: 1 << 30})
	p := bytes.Repeat([]byte{0xff}, 200<<10)
	if n, err := s.WriteAt(p, 12345); n != len(p) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if n, err := s.ReadAt(p, 12345); n != len(p) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(p, make([]byte, len(p))) {
		t.Fatal("a null store read back what was written")
	}
	want := backstore.Caps{Unmap: true, UnmapZeroes: true, Immediate: true}
	if got := s.Caps(); got != want {
		t.Errorf("Caps() = %+v, want %+v", got, want)
	}
}

// The pattern repeats over the address space, whatever the offset and
// length of the read.
func TestNullPattern(t *testing.T) {
	for _, pat := range []string{"0xa5", "0xdeadbeef", "0x0102030405", "0x" + string(bytes.Repeat([]byte("7f"), 4096))} {
		s := openNull(t, backstore.Spec{Size: 1 << 30, BlockSize: 4096, NullPattern: pat})
		if s.Caps().UnmapZeroes {
			t.Errorf("%s: Caps().UnmapZeroes is set but reads are not zeros", pat)
		}
		plen := (len(pat) - 2) / 2
		at := func(o int64) byte {
			i := int(o % int64(plen))
			var b byte
			for _, c := range pat[2+2*i : 4+2*i] {
				b <<= 4
				if c >= 'a' {
					b |= byte(c-'a') + 10
				} else {
					b |= byte(c - '0')
				}
			}
			return b
		}
		for _, r := range [][2]int64{{0, 1}, {0, 4096}, {1, 3}, {4093, 100}, {1<<30 - 7, 7}, {123457, 300 << 10}} {
			p := make([]byte, r[1])
			if _, err := s.ReadAt(p, r[0]); err != nil {
				t.Fatal(err)
			}
			for i := range p {
				if p[i] != at(r[0]+int64(i)) {
					t.Fatalf("%s: byte %d is %#x, want %#x", pat, r[0]+int64(i), p[i], at(r[0]+int64(i)))
				}
			}
		}
	}
}

func TestNullChecks(t *testing.T) {
	s := openNull(t, backstore.Spec{Size: 1 << 20})
	p := make([]byte, 512)
	if _, err := s.ReadAt(p, 1<<20-256); !errors.Is(err, backstore.ErrOutOfRange) {
		t.Errorf("ReadAt past the end = %v, want ErrOutOfRange", err)
	}
	if _, err := s.WriteAt(p, -1); !errors.Is(err, backstore.ErrOutOfRange) {
		t.Errorf("WriteAt(-1) = %v, want ErrOutOfRange", err)
	}
	if err := s.Unmap(0, 2<<20); !errors.Is(err, backstore.ErrOutOfRange) {
		t.Errorf("Unmap past the end = %v, want ErrOutOfRange", err)
	}
	if err := s.WriteZeroes(0, 512); err != nil {
		t.Errorf("WriteZeroes = %v", err)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush = %v", err)
	}

	ro := openNull(t, backstore.Spec{Size: 1 << 20, ReadOnly: true})
	if _, err := ro.WriteAtSync(p, 0); !errors.Is(err, backstore.ErrReadOnly) {
		t.Errorf("WriteAtSync on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := ro.WriteZeroes(0, 512); !errors.Is(err, backstore.ErrReadOnly) {
		t.Errorf("WriteZeroes on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := ro.ReadAt(p, 0); err != nil {
		t.Errorf("ReadAt on a read-only store = %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.ReadAt(p, 0); !errors.Is(err, backstore.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want ErrClosed", err)
	}
	if _, err := s.WriteAt(p, 0); !errors.Is(err, backstore.ErrClosed) {
		t.Errorf("WriteAt after Close = %v, want ErrClosed", err)
	}
	if err := s.Unmap(0, 512); !errors.Is(err, backstore.ErrClosed) {
		t.Errorf("Unmap after Close = %v, want ErrClosed", err)
	}
}

func TestNullAllocs(t *testing.T) {
	zeros := openNull(t, backstore.Spec{Size: 1 << 30})
	pattern := openNull(t, backstore.Spec{Size: 1 << 30, NullPattern: "0x0102030405"})
	p := make([]byte, 64<<10)
	for name, s := range map[string]backstore.Store{"zeros": zeros, "pattern": pattern} {
		if a := testing.AllocsPerRun(100, func() { s.ReadAt(p, 777) }); a != 0 {
			t.Errorf("%s: ReadAt: %v allocations, want 0", name, a)
		}
		if a := testing.AllocsPerRun(100, func() { s.WriteAt(p, 777) }); a != 0 {
			t.Errorf("%s: WriteAt: %v allocations, want 0", name, a)
		}
	}
}

// A null store lends its bytes (backstore.Viewer): a view holds exactly
// what ReadAt returns, and a read it cannot lend (out of range, closed,
// longer than its tile) is refused so the caller falls back to ReadAt.
func TestNullView(t *testing.T) {
	for _, pat := range []string{"", "0xa5", "0xdeadbeef", "0x0102030405"} {
		s := openNull(t, backstore.Spec{Size: 1 << 30, BlockSize: 512, NullPattern: pat})
		v, ok := s.(backstore.Viewer)
		if !ok {
			t.Fatalf("pattern %q: the null store is not a backstore.Viewer", pat)
		}
		for _, r := range [][2]int64{{0, 512}, {1, 3}, {4093, 100}, {123457, 60 << 10}, {1<<30 - 7, 7}} {
			b, done, ok := v.View(r[0], int(r[1]))
			if !ok {
				t.Fatalf("pattern %q: View(%d, %d) refused", pat, r[0], r[1])
			}
			want := make([]byte, r[1])
			if _, err := s.ReadAt(want, r[0]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) || cap(b) != len(b) {
				t.Fatalf("pattern %q: View(%d, %d) differs from ReadAt (len %d cap %d)", pat, r[0], r[1], len(b), cap(b))
			}
			if done != nil {
				done()
			}
		}
		if _, _, ok := v.View(1<<30-256, 512); ok {
			t.Errorf("pattern %q: a view past the end was lent", pat)
		}
		if _, _, ok := v.View(-1, 512); ok {
			t.Errorf("pattern %q: a view at a negative offset was lent", pat)
		}
	}
	s := openNull(t, backstore.Spec{Size: 1 << 30})
	v := s.(backstore.Viewer)
	if _, _, ok := v.View(0, 32<<20); ok {
		t.Error("a 32 MiB zero view was lent; the largest is 16 MiB")
	}
	p := openNull(t, backstore.Spec{Size: 1 << 30, NullPattern: "0xa5"}).(backstore.Viewer)
	if _, _, ok := p.View(3, 1<<20); ok {
		t.Error("a pattern view longer than the tile was lent")
	}
	s.Close()
	if _, _, ok := v.View(0, 512); ok {
		t.Error("a closed store lent a view")
	}
}
