package xensim

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Only this file touches shared memory through unsafe: grant table
// entries are read and written with 64-bit atomics, and grant mappings
// are stitched together page by page at fixed addresses.

func entryPtr(gt []byte, ref uint32) *uint64 {
	off := int(ref) * EntrySize
	_ = gt[off+EntrySize-1]
	return (*uint64)(unsafe.Pointer(&gt[off]))
}

func loadEntry(gt []byte, ref uint32) uint64 { return atomic.LoadUint64(entryPtr(gt, ref)) }

func storeEntry(gt []byte, ref uint32, v uint64) { atomic.StoreUint64(entryPtr(gt, ref), v) }

// mapPages maps the given page frames of fd, in order, as one region.
func mapPages(fd int, frames []uint32, prot int) ([]byte, error) {
	n := uintptr(len(frames)) * pageSize
	base, err := unix.MmapPtr(-1, 0, nil, n, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	// one mmap per run of consecutive frames (a guest's buffer is often
	// one), populated at once rather than faulted in page by page
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j] == frames[j-1]+1 {
			j++
		}
		at := unsafe.Add(base, uintptr(i)*pageSize)
		if _, err := unix.MmapPtr(fd, int64(frames[i])*pageSize, at, uintptr(j-i)*pageSize, prot,
			unix.MAP_SHARED|unix.MAP_FIXED|unix.MAP_POPULATE); err != nil {
			unix.MunmapPtr(base, n)
			return nil, err
		}
		i = j
	}
	return unsafe.Slice((*byte)(base), n), nil
}

func unmapRegion(b []byte) error {
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

func regionKey(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
