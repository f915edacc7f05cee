package backstore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/backstore/storetest"
)

// The block store is tested on real loop devices over sparse files.

func blockOpener(sector uint32, direct, readOnly bool) storetest.Opener {
	return func(t *testing.T, size int64, bs uint32) backstore.Store {
		if bs < sector {
			t.Skipf("a device of %d-byte sectors cannot serve %d-byte blocks (TestBlockOpenErrors checks it refuses)", sector, bs)
		}
		dev := newLoop(t, size, sector)
		return openStore(t, backstore.Spec{Kind: "block", Path: dev, BlockSize: bs, Direct: direct, ReadOnly: readOnly})
	}
}

func TestBlockConformance(t *testing.T)         { storetest.Run(t, blockOpener(512, false, false)) }
func TestBlock4KConformance(t *testing.T)       { storetest.Run(t, blockOpener(4096, false, false)) }
func TestBlockDirectConformance(t *testing.T)   { storetest.Run(t, blockOpener(512, true, false)) }
func TestBlock4KDirectConformance(t *testing.T) { storetest.Run(t, blockOpener(4096, true, false)) }
func TestBlockReadOnlyConformance(t *testing.T) { storetest.Run(t, blockOpener(512, false, true)) }

func TestBlockGeometry(t *testing.T) {
	dev := newLoop(t, 8<<20, 4096)
	s := openStore(t, backstore.Spec{Kind: "block", Path: dev})
	if s.Size() != 8<<20 || s.BlockSize() != 4096 {
		t.Errorf("Size, BlockSize = %d, %d, want the device's %d, 4096", s.Size(), s.BlockSize(), 8<<20)
	}
	c := s.Caps()
	if !c.Unmap || c.UnmapZeroes || c.Thin || c.ReadOnly {
		t.Errorf("Caps() = %+v, want Unmap only (and maybe Volatile)", c)
	}
	s.Close()
	s = openStore(t, backstore.Spec{Kind: "block", Path: dev, Size: 1 << 20})
	if s.Size() != 1<<20 {
		t.Errorf("Size() = %d, want the configured 1 MiB", s.Size())
	}
}

func TestBlockOpenErrors(t *testing.T) {
	dev := newLoop(t, 8<<20, 4096)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, make([]byte, 4096), 0o644)
	for _, tc := range []struct {
		spec backstore.Spec
		want string
	}{
		{backstore.Spec{Kind: "block", Path: dev, BlockSize: 512}, "block size 512 is smaller than the logical sector size 4096"},
		{backstore.Spec{Kind: "block", Path: dev, Size: 16 << 20}, "is larger than " + dev},
		{backstore.Spec{Kind: "block", Path: dev, Size: 4096 + 512}, "not a multiple of block size 4096"},
		{backstore.Spec{Kind: "block", Path: file}, "not a block device"},
		{backstore.Spec{Kind: "block", Path: "/dev/null"}, "not a block device"},
		{backstore.Spec{Kind: "block", Path: dev, Create: true, Size: 4096}, "create does not apply to kind block"},
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
}

// A writable block store holds its device exclusively, so two LUNs cannot
// write one device by mistake.
func TestBlockExclusive(t *testing.T) {
	dev := newLoop(t, 1<<20, 512)
	openStore(t, backstore.Spec{Kind: "block", Path: dev})
	s, err := backstore.Open(backstore.Spec{Kind: "block", Path: dev})
	if err == nil {
		s.Close()
		t.Fatal("a second writable Open of the device succeeded")
	}
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("second Open = %v, want EBUSY", err)
	}
	ro := openStore(t, backstore.Spec{Kind: "block", Path: dev, ReadOnly: true})
	ro.Close()
}

// Discard reaches the backing file: the loop device punches holes in it.
func TestBlockDiscardReachesFile(t *testing.T) {
	dev := newLoop(t, 8<<20, 512)
	s := openStore(t, backstore.Spec{Kind: "block", Path: dev, Direct: true})
	p := bytes.Repeat([]byte{9}, 1<<20)
	if _, err := s.WriteAt(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmap(1<<20, 1<<20); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	got := make([]byte, 1<<20)
	if _, err := s.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	// A loop device over a file punches holes, so this one does read zeros,
	// though the store does not promise it.
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Log("discarded range does not read zeros on this kernel")
	}
	if err := s.WriteZeroes(3<<20, 1<<20+7); err != nil {
		t.Fatalf("WriteZeroes: %v", err)
	}
}
