package xenstore

import (
	"testing"

	"github.com/srptgt/srptgt/transport/xen/internal/cabi"
)

const abiProbe = `
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>
#define O(f) printf("xsd_sockmsg.%s %zu\n", #f, offsetof(struct xsd_sockmsg, f))
#define C(c) printf("%s %lld\n", #c, (long long)(c))
int main(void) {
	printf("sizeof.xsd_sockmsg %zu\n", sizeof(struct xsd_sockmsg));
	O(type); O(req_id); O(tx_id); O(len);
	C(XENSTORE_PAYLOAD_MAX); C(XENSTORE_ABS_PATH_MAX);
	C(XS_DIRECTORY); C(XS_READ); C(XS_GET_PERMS); C(XS_WATCH); C(XS_UNWATCH);
	C(XS_TRANSACTION_START); C(XS_TRANSACTION_END); C(XS_INTRODUCE); C(XS_RELEASE);
	C(XS_GET_DOMAIN_PATH); C(XS_WRITE); C(XS_MKDIR); C(XS_RM); C(XS_SET_PERMS);
	C(XS_WATCH_EVENT); C(XS_ERROR); C(XS_IS_DOMAIN_INTRODUCED); C(XS_RESUME);
	C(XS_SET_TARGET); C(XS_RESET_WATCHES); C(XS_DIRECTORY_PART);
	return 0;
}
`

func TestABI(t *testing.T) {
	c := cabi.Run(t, abiProbe)
	want := map[string]uint64{
		"sizeof.xsd_sockmsg": HeaderSize, "xsd_sockmsg.type": offType, "xsd_sockmsg.req_id": offReqID,
		"xsd_sockmsg.tx_id": offTxID, "xsd_sockmsg.len": offLen,
		"XENSTORE_PAYLOAD_MAX": PayloadMax, "XENSTORE_ABS_PATH_MAX": AbsPathMax,
		"XS_DIRECTORY": uint64(Directory), "XS_READ": uint64(Read), "XS_GET_PERMS": uint64(GetPerms),
		"XS_WATCH": uint64(Watch), "XS_UNWATCH": uint64(Unwatch), "XS_TRANSACTION_START": uint64(TransactionStart),
		"XS_TRANSACTION_END": uint64(TransactionEnd), "XS_INTRODUCE": uint64(Introduce), "XS_RELEASE": uint64(Release),
		"XS_GET_DOMAIN_PATH": uint64(GetDomainPath), "XS_WRITE": uint64(Write), "XS_MKDIR": uint64(Mkdir),
		"XS_RM": uint64(Rm), "XS_SET_PERMS": uint64(SetPerms), "XS_WATCH_EVENT": uint64(WatchEventMsg),
		"XS_ERROR": uint64(Error), "XS_IS_DOMAIN_INTRODUCED": uint64(IsDomainIntroduced), "XS_RESUME": uint64(Resume),
		"XS_SET_TARGET": uint64(SetTarget), "XS_RESET_WATCHES": uint64(ResetWatches), "XS_DIRECTORY_PART": uint64(DirectoryPart),
	}
	for name, w := range want {
		if got, ok := c[name]; !ok || got != w {
			t.Errorf("%s: C says %d (printed %v), Go uses %d", name, got, ok, w)
		}
	}
	if len(c) != len(want) {
		t.Errorf("probe printed %d values, %d checked", len(c), len(want))
	}
}
