// Package xendev is the real hypervisor for the Xen transport: Linux's
// /dev/xen/gntdev (grant map and batched grant copy), /dev/xen/evtchn
// (interdomain event channels) and XenStore (xenstored's Unix socket, or
// /dev/xen/xenbus), in pure Go on golang.org/x/sys/unix. It implements
// xen.Hypervisor; it needs dom0 (or a driver domain) with the xen-gntdev,
// xen-evtchn and xenfs modules loaded.
package xendev

import "github.com/srptgt/srptgt/transport/xen"

// Device paths.
const (
	GntdevPath    = "/dev/xen/gntdev"
	EvtchnPath    = "/dev/xen/evtchn"
	XenbusPath    = "/dev/xen/xenbus"
	XenstoredPath = "/run/xenstored/socket"
)

// ioctl numbers (Linux include/uapi/xen/gntdev.h, evtchn.h: _IOC(_IOC_NONE,
// 'G' or 'E', nr, size)); checked against the headers by TestABI.
const (
	ioctlGntdevMapGrantRef   = 0x00184700
	ioctlGntdevUnmapGrantRef = 0x00104701
	ioctlGntdevGrantCopy     = 0x00104708

	ioctlEvtchnBindInterdomain = 0x00084501
	ioctlEvtchnUnbind          = 0x00044503
	ioctlEvtchnNotify          = 0x00044504
	ioctlEvtchnReset           = 0x00004505
)

// GNTCOPY_* flags (xen/include/public/grant_table.h).
const (
	gntcopySourceGref = 0x1
	gntcopyDestGref   = 0x2
)

// Layouts (bytes).
const (
	sizeofGrantRef       = 8  // struct ioctl_gntdev_grant_ref
	sizeofMapHeader      = 16 // ioctl_gntdev_map_grant_ref before refs[]
	sizeofUnmap          = 16 // struct ioctl_gntdev_unmap_grant_ref
	sizeofCopySegment    = 24 // struct gntdev_grant_copy_segment
	sizeofGrantCopy      = 16 // struct ioctl_gntdev_grant_copy
	sizeofBindInterdom   = 8  // struct ioctl_evtchn_bind_interdomain
	offCopyDest          = 8
	offCopyLen           = 16
	offCopyFlags         = 18
	offCopyStatus        = 20
	offForeignRef        = 0
	offForeignOffset     = 4
	offForeignDomid      = 6
	offMapIndex          = 8
	offMapRefs           = 16
	offGrantCopySegments = 8
)

var _ xen.Hypervisor = (*Hypervisor)(nil)
