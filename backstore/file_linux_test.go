package backstore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/backstore/storetest"
)

func openStore(t *testing.T, spec backstore.Spec) backstore.Store {
	t.Helper()
	s, err := backstore.Open(spec)
	if err != nil {
		t.Fatalf("Open(%+v): %v", spec, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileOpener opens stores on fresh sparse files; a read-only one on a file
// made by a writable open first.
func fileOpener(direct, readOnly bool) storetest.Opener {
	return func(t *testing.T, size int64, bs uint32) backstore.Store {
		path := filepath.Join(t.TempDir(), "lun")
		spec := backstore.Spec{Kind: "file", Path: path, Size: size, BlockSize: bs, Direct: direct, Create: true}
		if readOnly {
			if err := openStore(t, spec).Close(); err != nil {
				t.Fatal(err)
			}
			spec.Create, spec.ReadOnly = false, true
		}
		return openStore(t, spec)
	}
}

func TestFileConformance(t *testing.T)         { storetest.Run(t, fileOpener(false, false)) }
func TestFileDirectConformance(t *testing.T)   { storetest.Run(t, fileOpener(true, false)) }
func TestFileReadOnlyConformance(t *testing.T) { storetest.Run(t, fileOpener(false, true)) }
func TestFileDirectReadOnlyConformance(t *testing.T) {
	storetest.Run(t, fileOpener(true, true))
}

func TestFileCaps(t *testing.T) {
	s := fileOpener(false, false)(t, 1<<20, 512)
	want := backstore.Caps{Thin: true, Unmap: true, UnmapZeroes: true, Volatile: true}
	if got := s.Caps(); got != want {
		t.Errorf("Caps() = %+v, want %+v", got, want)
	}
}

func blocks(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

// Create makes a sparse file; Unmap punches holes back into it and
// WriteZeroes leaves no data behind.
func TestFileSparse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun")
	s := openStore(t, backstore.Spec{Kind: "file", Path: path, Size: 1 << 30, Create: true})
	if b := blocks(t, path); b != 0 {
		t.Fatalf("a new 1 GiB store uses %d blocks", b)
	}
	if fi, _ := os.Stat(path); fi.Size() != 1<<30 {
		t.Fatalf("file size %d, want 1 GiB", fi.Size())
	}
	if _, err := s.WriteAt(bytes.Repeat([]byte{7}, 1<<20), 1<<29); err != nil {
		t.Fatal(err)
	}
	if b := blocks(t, path); b < 2048 {
		t.Fatalf("after a 1 MiB write: %d blocks", b)
	}
	if err := s.Unmap(1<<29, 1<<20); err != nil {
		t.Fatal(err)
	}
	if b := blocks(t, path); b != 0 {
		t.Fatalf("after Unmap: %d blocks, want 0", b)
	}
	got := make([]byte, 1<<20)
	if _, err := s.ReadAt(got, 1<<29); err != nil || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatalf("unmapped range does not read zeros (%v)", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 1<<30 {
		t.Fatalf("Unmap changed the file size to %d", fi.Size())
	}
}

// An existing file serves its own size, or a prefix of it.
func TestFileExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 3*4096+100), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, backstore.Spec{Kind: "file", Path: path, BlockSize: 4096})
	if s.Size() != 3*4096 {
		t.Errorf("Size() = %d, want the file rounded down to blocks, %d", s.Size(), 3*4096)
	}
	s = openStore(t, backstore.Spec{Kind: "file", Path: path, Size: 2048})
	if s.Size() != 2048 {
		t.Errorf("Size() = %d, want 2048", s.Size())
	}
	// Create extends a short file, sparse, and keeps its data.
	s = openStore(t, backstore.Spec{Kind: "file", Path: path, Size: 1 << 20, Create: true})
	p := make([]byte, 2)
	if _, err := s.ReadAt(p, 3*4096+99); err != nil || p[0] != 1 || p[1] != 0 {
		t.Errorf("ReadAt across the old end = %v, %v", p, err)
	}
}

// Validation errors name the field at fault; nothing is created.
func TestFileOpenErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, make([]byte, 1000), 0o644)
	tiny := filepath.Join(dir, "tiny")
	os.WriteFile(tiny, make([]byte, 100), 0o644)
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		spec backstore.Spec
		want string
	}{
		{backstore.Spec{Kind: "file", Path: missing, Size: 4096}, "no such file"},
		{backstore.Spec{Kind: "file", Path: small, Size: 4096}, "smaller than size 4096 (set create"},
		{backstore.Spec{Kind: "file", Path: tiny}, "less than one block"},
		{backstore.Spec{Kind: "file", Path: dir, Size: 4096}, "is a directory"},
		{backstore.Spec{Kind: "file", Path: "/dev/null", Size: 4096}, "not a regular file"},
		{backstore.Spec{Kind: "file", Path: small, Size: 1000, Create: true}, "size 1000 is not a multiple of block size 512"},
		{backstore.Spec{Kind: "file", Path: missing, Create: true, ReadOnly: true, Size: 4096}, "create and read-only"},
		{backstore.Spec{Kind: "file", Path: missing, Create: true}, "create needs a size"},
		{backstore.Spec{Kind: "file", Size: 4096}, "path is required"},
	} {
		s, err := backstore.Open(tc.spec)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want %q", tc.spec, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Open left %s behind", missing)
	}
}

// WriteAtSync falls back to pwrite and fdatasync where RWF_DSYNC is not
// supported, and still writes.
func TestFileWriteAtSyncFallback(t *testing.T) {
	for _, direct := range []bool{false, true} {
		s := fileOpener(direct, false)(t, 1<<20, 512)
		if !backstore.UsesDsync(s) {
			t.Fatal("a new store does not use RWF_DSYNC")
		}
		p := bytes.Repeat([]byte("fua!"), 1024)
		if _, err := s.WriteAtSync(p, 4096); err != nil {
			t.Fatal(err)
		}
		if !backstore.UsesDsync(s) {
			t.Fatal("RWF_DSYNC reported unsupported on this kernel")
		}
		backstore.ForceNoDsync(s)
		if n, err := s.WriteAtSync(p[:1000], 8192+3); n != 1000 || err != nil {
			t.Fatalf("WriteAtSync with the fallback = %d, %v", n, err)
		}
		if backstore.UsesDsync(s) {
			t.Fatal("the fallback was not remembered")
		}
		got := make([]byte, 1000)
		if _, err := s.ReadAt(got, 8192+3); err != nil || !bytes.Equal(got, p[:1000]) {
			t.Fatalf("read back after fallback: %v", err)
		}
	}
}

// Direct I/O: aligned buffers go straight through, unaligned ones through
// bounce buffers; neither allocates.
func TestFileDirectAllocs(t *testing.T) {
	s := fileOpener(true, false)(t, 4<<20, 512)
	if a := backstore.DirectAlign(s); a != 4096 {
		t.Fatalf("direct alignment %d, want 4096", a)
	}
	aligned := pageBuf()
	unaligned := make([]byte, 4096+1)[1:]
	s.WriteAt(aligned, 0) // warm the bounce pool
	s.ReadAt(unaligned[:100], 5)
	for _, tc := range []struct {
		name string
		p    []byte
		off  int64
	}{
		{"aligned", aligned, 8192},
		{"unaligned buffer", unaligned, 8192},
		{"unaligned offset", aligned[:512], 8192 + 512},
		{"unaligned everything", unaligned[:100], 8192 + 7},
	} {
		if a := testing.AllocsPerRun(50, func() { s.ReadAt(tc.p, tc.off) }); a != 0 {
			t.Errorf("%s: ReadAt: %v allocations", tc.name, a)
		}
		if a := testing.AllocsPerRun(50, func() { s.WriteAt(tc.p, tc.off) }); a != 0 {
			t.Errorf("%s: WriteAt: %v allocations", tc.name, a)
		}
	}
}

// A full filesystem surfaces as ENOSPC in an *OpError. The test mounts a
// tiny tmpfs, which takes CAP_SYS_ADMIN.
func TestFileENOSPC(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s := openStore(t, backstore.Spec{Kind: "file", Path: filepath.Join(dir, "lun"), Size: 4 << 20, Create: true})
	if !s.Caps().Thin {
		t.Error("a sparse file store is not Thin")
	}
	p := make([]byte, 1<<20)
	for i := range p {
		p[i] = 1
	}
	n, err := s.WriteAt(p, 0)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt of 1 MiB on a 256 KiB filesystem = %d, %v, want ENOSPC", n, err)
	}
	var oe *backstore.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || n >= len(p) {
		t.Fatalf("error %v (n %d) is not a short write's OpError", err, n)
	}
	// Freeing space makes the store writable again.
	if err := s.Unmap(0, 4<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(p[:4096], 0); err != nil {
		t.Fatalf("WriteAt after Unmap freed space: %v", err)
	}
}
