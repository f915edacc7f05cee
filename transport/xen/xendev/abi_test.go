package xendev

import (
	"testing"

	"github.com/srptgt/srptgt/transport/xen/internal/cabi"
)

const abiProbe = `
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <xen/grant_table.h> /* libxen-dev: grant_ref_t, domid_t, GNTCOPY_* */
#include <xen/gntdev.h>
#include <xen/evtchn.h>
#define C(c) printf("%s %llu\n", #c, (unsigned long long)(c))
#define S(t) printf("sizeof.%s %zu\n", #t, sizeof(struct t))
#define O(t, f) printf("%s.%s %zu\n", #t, #f, offsetof(struct t, f))
int main(void) {
	C(IOCTL_GNTDEV_MAP_GRANT_REF); C(IOCTL_GNTDEV_UNMAP_GRANT_REF); C(IOCTL_GNTDEV_GRANT_COPY);
	C(IOCTL_EVTCHN_BIND_INTERDOMAIN); C(IOCTL_EVTCHN_UNBIND); C(IOCTL_EVTCHN_NOTIFY); C(IOCTL_EVTCHN_RESET);
	C(GNTCOPY_source_gref); C(GNTCOPY_dest_gref);
	S(ioctl_gntdev_grant_ref); O(ioctl_gntdev_grant_ref, domid); O(ioctl_gntdev_grant_ref, ref);
	O(ioctl_gntdev_map_grant_ref, count); O(ioctl_gntdev_map_grant_ref, index); O(ioctl_gntdev_map_grant_ref, refs);
	S(ioctl_gntdev_unmap_grant_ref); O(ioctl_gntdev_unmap_grant_ref, index); O(ioctl_gntdev_unmap_grant_ref, count);
	S(gntdev_grant_copy_segment); O(gntdev_grant_copy_segment, source); O(gntdev_grant_copy_segment, dest);
	O(gntdev_grant_copy_segment, len); O(gntdev_grant_copy_segment, flags); O(gntdev_grant_copy_segment, status);
	printf("foreign.ref %zu\n", offsetof(struct gntdev_grant_copy_segment, source.foreign.ref));
	printf("foreign.offset %zu\n", offsetof(struct gntdev_grant_copy_segment, source.foreign.offset));
	printf("foreign.domid %zu\n", offsetof(struct gntdev_grant_copy_segment, source.foreign.domid));
	S(ioctl_gntdev_grant_copy); O(ioctl_gntdev_grant_copy, count); O(ioctl_gntdev_grant_copy, segments);
	S(ioctl_evtchn_bind_interdomain); O(ioctl_evtchn_bind_interdomain, remote_domain); O(ioctl_evtchn_bind_interdomain, remote_port);
	return 0;
}
`

// TestABI checks the ioctl numbers and structure layouts the devices are
// driven with against Debian's linux-libc-dev headers.
func TestABI(t *testing.T) {
	c := cabi.Run(t, abiProbe)
	want := map[string]uint64{
		"IOCTL_GNTDEV_MAP_GRANT_REF": ioctlGntdevMapGrantRef, "IOCTL_GNTDEV_UNMAP_GRANT_REF": ioctlGntdevUnmapGrantRef,
		"IOCTL_GNTDEV_GRANT_COPY": ioctlGntdevGrantCopy, "IOCTL_EVTCHN_BIND_INTERDOMAIN": ioctlEvtchnBindInterdomain,
		"IOCTL_EVTCHN_UNBIND": ioctlEvtchnUnbind, "IOCTL_EVTCHN_NOTIFY": ioctlEvtchnNotify, "IOCTL_EVTCHN_RESET": ioctlEvtchnReset,
		"GNTCOPY_source_gref": gntcopySourceGref, "GNTCOPY_dest_gref": gntcopyDestGref,
		"sizeof.ioctl_gntdev_grant_ref": sizeofGrantRef, "ioctl_gntdev_grant_ref.domid": 0, "ioctl_gntdev_grant_ref.ref": 4,
		"ioctl_gntdev_map_grant_ref.count": 0, "ioctl_gntdev_map_grant_ref.index": offMapIndex, "ioctl_gntdev_map_grant_ref.refs": offMapRefs,
		"sizeof.ioctl_gntdev_unmap_grant_ref": sizeofUnmap, "ioctl_gntdev_unmap_grant_ref.index": 0, "ioctl_gntdev_unmap_grant_ref.count": 8,
		"sizeof.gntdev_grant_copy_segment": sizeofCopySegment, "gntdev_grant_copy_segment.source": 0,
		"gntdev_grant_copy_segment.dest": offCopyDest, "gntdev_grant_copy_segment.len": offCopyLen,
		"gntdev_grant_copy_segment.flags": offCopyFlags, "gntdev_grant_copy_segment.status": offCopyStatus,
		"foreign.ref": offForeignRef, "foreign.offset": offForeignOffset, "foreign.domid": offForeignDomid,
		"sizeof.ioctl_gntdev_grant_copy": sizeofGrantCopy, "ioctl_gntdev_grant_copy.count": 0,
		"ioctl_gntdev_grant_copy.segments":     offGrantCopySegments,
		"sizeof.ioctl_evtchn_bind_interdomain": sizeofBindInterdom, "ioctl_evtchn_bind_interdomain.remote_domain": 0,
		"ioctl_evtchn_bind_interdomain.remote_port": 4,
	}
	for name, w := range want {
		if got, ok := c[name]; !ok || got != w {
			t.Errorf("%s: C says %#x (printed %v), Go uses %#x", name, got, ok, w)
		}
	}
	if len(c) != len(want) {
		t.Errorf("probe printed %d values, %d checked", len(c), len(want))
	}
}
