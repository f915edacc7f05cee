package backstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newLoop creates a sparse file of size bytes and attaches it to a free
// loop device with the given logical sector size; it returns the device
// path. The device is detached when the test ends.
func newLoop(t testing.TB, size int64, sector uint32) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "loop-backing")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return attachLoop(t, path, sector)
}

// attachLoop attaches the file at path to a free loop device, with
// LOOP_CTL_GET_FREE and LOOP_CONFIGURE (LOOP_SET_FD on kernels before
// 5.8), and detaches it when the test ends.
func attachLoop(t testing.TB, path string, sector uint32) string {
	t.Helper()
	backing, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer backing.Close() // the loop device holds its own reference
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/loop-control: %v", err)
	}
	defer unix.Close(ctl)

	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatalf("LOOP_CTL_GET_FREE: %v", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		fd, err := openLoopNode(dev)
		if err != nil {
			t.Fatalf("open %s: %v", dev, err)
		}
		err = configureLoop(fd, int(backing.Fd()), sector)
		if errors.Is(err, unix.EBUSY) && attempt < 20 { // another process took it first
			unix.Close(fd)
			continue
		}
		if err != nil {
			unix.Close(fd)
			t.Fatalf("attach %s to %s: %v", path, dev, err)
		}
		t.Cleanup(func() {
			if err := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0); err != nil {
				t.Errorf("LOOP_CLR_FD %s: %v", dev, err)
			}
			unix.Close(fd)
		})
		return dev
	}
}

// openLoopNode opens a loop device node, waiting briefly for devtmpfs to
// create a new one.
func openLoopNode(dev string) (int, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil || !errors.Is(err, unix.ENOENT) || time.Now().After(deadline) {
			return fd, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func configureLoop(fd, backing int, sector uint32) error {
	cfg := unix.LoopConfig{Fd: uint32(backing), Size: sector}
	err := unix.IoctlLoopConfigure(fd, &cfg)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	// Before Linux 5.8: LOOP_SET_FD, then the sector size.
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, backing); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, int(sector)); err != nil {
		unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}
