//go:build linux

package xendev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// Hypervisor opens the devices on demand.
type Hypervisor struct {
	// StorePath overrides where XenStore is reached: a Unix socket, or
	// a device (/dev/xen/xenbus). Empty: xenstored's socket if present,
	// else the device.
	StorePath string
}

// Open checks that the devices exist and returns the hypervisor.
func Open() (*Hypervisor, error) {
	for _, p := range []string{GntdevPath, EvtchnPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("xendev: %w (load xen-gntdev and xen-evtchn; run in dom0)", err)
		}
	}
	return &Hypervisor{}, nil
}

// Store connects to XenStore.
func (h *Hypervisor) Store() (xen.Store, error) {
	p := h.StorePath
	if p == "" {
		if _, err := os.Stat(XenstoredPath); err == nil {
			p = XenstoredPath
		} else {
			p = XenbusPath
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("xendev: XenStore: %w", err)
	}
	if fi.Mode()&os.ModeSocket != 0 {
		return xenstore.Dial(p)
	}
	f, err := os.OpenFile(p, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("xendev: XenStore: %w", err)
	}
	return xenstore.NewClient(f), nil
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) (int, error) {
	var r uintptr
	var errno syscall.Errno
	cerr := withFD(f, func(fd uintptr) {
		r, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	})
	if cerr != nil {
		return 0, cerr
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func withFD(f *os.File, fn func(fd uintptr)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(fn)
}

// Grants opens /dev/xen/gntdev.
func (h *Hypervisor) Grants() (xen.Grants, error) {
	f, err := os.OpenFile(GntdevPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("xendev: %w", err)
	}
	return &grants{f: f, maps: map[uintptr]mapping{}}, nil
}

type grants struct {
	f    *os.File
	mu   sync.Mutex
	maps map[uintptr]mapping
}

type mapping struct {
	index uint64
	count int
	mem   []byte
}

var le = binary.LittleEndian

func (g *grants) Map(dom xen.DomID, refs []xen.GrantRef, writable bool) ([]byte, error) {
	if len(refs) == 0 {
		return nil, errors.New("xendev: map of no grants")
	}
	arg := make([]byte, sizeofMapHeader+sizeofGrantRef*len(refs))
	le.PutUint32(arg[0:], uint32(len(refs)))
	for i, r := range refs {
		o := offMapRefs + i*sizeofGrantRef
		le.PutUint32(arg[o:], uint32(dom))
		le.PutUint32(arg[o+4:], uint32(r))
	}
	if _, err := ioctl(g.f, ioctlGntdevMapGrantRef, unsafe.Pointer(&arg[0])); err != nil {
		return nil, fmt.Errorf("xendev: IOCTL_GNTDEV_MAP_GRANT_REF of %d grants of domain %d: %w", len(refs), dom, err)
	}
	index := le.Uint64(arg[offMapIndex:])
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	var mem []byte
	var merr error
	err := withFD(g.f, func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), int64(index), len(refs)*xen.PageSize, prot, unix.MAP_SHARED)
	})
	if err == nil {
		err = merr
	}
	if err != nil {
		g.unmapIndex(index, len(refs))
		return nil, fmt.Errorf("xendev: mmap of %d grants: %w", len(refs), err)
	}
	g.mu.Lock()
	g.maps[uintptr(unsafe.Pointer(&mem[0]))] = mapping{index: index, count: len(refs), mem: mem}
	g.mu.Unlock()
	return mem, nil
}

func (g *grants) unmapIndex(index uint64, count int) error {
	var arg [sizeofUnmap]byte
	le.PutUint64(arg[0:], index)
	le.PutUint32(arg[8:], uint32(count))
	_, err := ioctl(g.f, ioctlGntdevUnmapGrantRef, unsafe.Pointer(&arg[0]))
	return err
}

func (g *grants) Unmap(mem []byte) error {
	if len(mem) == 0 {
		return errors.New("xendev: unmap of nothing")
	}
	g.mu.Lock()
	m, ok := g.maps[uintptr(unsafe.Pointer(&mem[0]))]
	delete(g.maps, uintptr(unsafe.Pointer(&mem[0])))
	g.mu.Unlock()
	if !ok {
		return errors.New("xendev: unmap of memory Map did not return")
	}
	err := unix.Munmap(m.mem)
	if e := g.unmapIndex(m.index, m.count); err == nil && e != nil {
		err = fmt.Errorf("xendev: IOCTL_GNTDEV_UNMAP_GRANT_REF: %w", e)
	}
	return err
}

// copyBatch is the raw segment array of one IOCTL_GNTDEV_GRANT_COPY.
var copyBatches = sync.Pool{New: func() any { b := make([]byte, 0, 128*sizeofCopySegment); return &b }}

// Copy performs one IOCTL_GNTDEV_GRANT_COPY for the whole batch.
func (g *grants) Copy(segs []xen.CopySeg) error {
	if len(segs) == 0 {
		return nil
	}
	bp := copyBatches.Get().(*[]byte)
	defer copyBatches.Put(bp)
	need := len(segs) * sizeofCopySegment
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	raw := (*bp)[:need]
	clear(raw)
	if err := encodeCopy(raw, segs); err != nil {
		return err
	}
	var arg [sizeofGrantCopy]byte
	le.PutUint32(arg[0:], uint32(len(segs)))
	le.PutUint64(arg[offGrantCopySegments:], uint64(uintptr(unsafe.Pointer(&raw[0]))))
	_, err := ioctl(g.f, ioctlGntdevGrantCopy, unsafe.Pointer(&arg[0]))
	// The kernel read the local addresses out of raw: keep the buffers
	// (Go memory, which the collector does not move) alive until here.
	runtime.KeepAlive(segs)
	runtime.KeepAlive(raw)
	if err != nil {
		return fmt.Errorf("xendev: IOCTL_GNTDEV_GRANT_COPY of %d segments: %w", len(segs), err)
	}
	for i := range segs {
		segs[i].Status = xen.GrantStatus(int16(le.Uint16(raw[i*sizeofCopySegment+offCopyStatus:])))
	}
	return nil
}

func (g *grants) Close() error {
	g.mu.Lock()
	ms := g.maps
	g.maps = map[uintptr]mapping{}
	g.mu.Unlock()
	for _, m := range ms {
		unix.Munmap(m.mem)
		g.unmapIndex(m.index, m.count)
	}
	return g.f.Close()
}

// BindInterdomain opens /dev/xen/evtchn (one file per channel, so each
// ring's goroutine waits on its own) and binds the remote port.
func (h *Hypervisor) BindInterdomain(dom xen.DomID, remotePort uint32) (xen.EventChannel, error) {
	f, err := os.OpenFile(EvtchnPath, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("xendev: %w", err)
	}
	var arg [sizeofBindInterdom]byte
	le.PutUint32(arg[0:], uint32(dom))
	le.PutUint32(arg[4:], remotePort)
	port, err := ioctl(f, ioctlEvtchnBindInterdomain, unsafe.Pointer(&arg[0]))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xendev: IOCTL_EVTCHN_BIND_INTERDOMAIN domain %d port %d: %w", dom, remotePort, err)
	}
	return &evtchn{f: f, port: uint32(port)}, nil
}

type evtchn struct {
	f      *os.File
	port   uint32
	closed atomic.Bool
	rbuf   [64]byte
}

func (e *evtchn) LocalPort() uint32 { return e.port }

// Wait reads pending port numbers (the kernel masked the port when it
// fired) and writes the port back to unmask it.
func (e *evtchn) Wait() error {
	for {
		n, err := e.f.Read(e.rbuf[:])
		if err != nil {
			if e.closed.Load() || errors.Is(err, os.ErrClosed) {
				return xen.ErrClosed
			}
			if errors.Is(err, syscall.EFBIG) {
				// the pending ring overflowed: reset, and report a
				// wakeup (the caller re-checks its ring anyway)
				ioctl(e.f, ioctlEvtchnReset, nil)
				e.unmask()
				return nil
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		if n >= 4 {
			e.unmask()
			return nil
		}
	}
}

func (e *evtchn) unmask() {
	var b [4]byte
	le.PutUint32(b[:], e.port)
	e.f.Write(b[:])
}

func (e *evtchn) Notify() error {
	if e.closed.Load() {
		return xen.ErrClosed
	}
	var arg [4]byte
	le.PutUint32(arg[:], e.port)
	_, err := ioctl(e.f, ioctlEvtchnNotify, unsafe.Pointer(&arg[0]))
	return err
}

func (e *evtchn) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	var arg [4]byte
	le.PutUint32(arg[:], e.port)
	ioctl(e.f, ioctlEvtchnUnbind, unsafe.Pointer(&arg[0]))
	return e.f.Close()
}

// encodeCopy lays segs out as struct gntdev_grant_copy_segment entries:
// the guest's side as a foreign {ref, offset, domid} with its GNTCOPY_*
// flag, ours as a virtual address. Data-in (ToGuest): source = local,
// dest = foreign (GNTCOPY_dest_gref); data-out: source = foreign
// (GNTCOPY_source_gref), dest = local.
func encodeCopy(raw []byte, segs []xen.CopySeg) error {
	for i := range segs {
		s := &segs[i]
		if int(s.Offset)+len(s.Local) > xen.PageSize {
			return fmt.Errorf("xendev: grant copy segment offset %d length %d crosses a page", s.Offset, len(s.Local))
		}
		b := raw[i*sizeofCopySegment:]
		src, dst := b[0:8], b[offCopyDest:offCopyDest+8]
		local, foreign, flags := src, dst, uint16(gntcopyDestGref)
		if !s.ToGuest {
			local, foreign, flags = dst, src, gntcopySourceGref
		}
		var p uintptr
		if len(s.Local) > 0 {
			p = uintptr(unsafe.Pointer(&s.Local[0]))
		}
		le.PutUint64(local, uint64(p))
		le.PutUint32(foreign[offForeignRef:], uint32(s.Ref))
		le.PutUint16(foreign[offForeignOffset:], s.Offset)
		le.PutUint16(foreign[offForeignDomid:], uint16(s.Dom))
		le.PutUint16(b[offCopyLen:], uint16(len(s.Local)))
		le.PutUint16(b[offCopyFlags:], flags)
	}
	return nil
}
