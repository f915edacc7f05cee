package vscsiif

import (
	"sort"
	"testing"

	"github.com/srptgt/srptgt/transport/xen/internal/cabi"
)

// abiProbe prints the layout of every vscsiif and shared-ring field and
// every constant this package uses, as gcc sees them in Debian's
// libxen-dev headers.
const abiProbe = `
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/vscsiif.h>

#define S(t) printf("sizeof.%s %zu\n", #t, sizeof(struct t))
#define O(t, f) printf("%s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define Z(t, f) printf("sizeof.%s.%s %zu\n", #t, #f, sizeof(((struct t *)0)->f))
#define C(c) printf("%s %lld\n", #c, (long long)(c))

int main(void) {
	S(scsiif_request_segment);
	O(scsiif_request_segment, gref); Z(scsiif_request_segment, gref);
	O(scsiif_request_segment, offset); Z(scsiif_request_segment, offset);
	O(scsiif_request_segment, length); Z(scsiif_request_segment, length);

	S(vscsiif_request);
	O(vscsiif_request, rqid); Z(vscsiif_request, rqid);
	O(vscsiif_request, act); Z(vscsiif_request, act);
	O(vscsiif_request, cmd_len); Z(vscsiif_request, cmd_len);
	O(vscsiif_request, cmnd); Z(vscsiif_request, cmnd);
	O(vscsiif_request, timeout_per_command); Z(vscsiif_request, timeout_per_command);
	O(vscsiif_request, channel); Z(vscsiif_request, channel);
	O(vscsiif_request, id); Z(vscsiif_request, id);
	O(vscsiif_request, lun); Z(vscsiif_request, lun);
	O(vscsiif_request, ref_rqid); Z(vscsiif_request, ref_rqid);
	O(vscsiif_request, sc_data_direction); Z(vscsiif_request, sc_data_direction);
	O(vscsiif_request, nr_segments); Z(vscsiif_request, nr_segments);
	O(vscsiif_request, seg); Z(vscsiif_request, seg);
	O(vscsiif_request, reserved); Z(vscsiif_request, reserved);

	S(vscsiif_response);
	O(vscsiif_response, rqid); Z(vscsiif_response, rqid);
	O(vscsiif_response, act); Z(vscsiif_response, act);
	O(vscsiif_response, sense_len); Z(vscsiif_response, sense_len);
	O(vscsiif_response, sense_buffer); Z(vscsiif_response, sense_buffer);
	O(vscsiif_response, rslt); Z(vscsiif_response, rslt);
	O(vscsiif_response, residual_len); Z(vscsiif_response, residual_len);
	O(vscsiif_response, reserved); Z(vscsiif_response, reserved);

	printf("sizeof.vscsiif_sring_entry %zu\n", sizeof(union vscsiif_sring_entry));
	O(vscsiif_sring, req_prod); Z(vscsiif_sring, req_prod);
	O(vscsiif_sring, req_event); Z(vscsiif_sring, req_event);
	O(vscsiif_sring, rsp_prod); Z(vscsiif_sring, rsp_prod);
	O(vscsiif_sring, rsp_event); Z(vscsiif_sring, rsp_event);
	O(vscsiif_sring, pvt); Z(vscsiif_sring, pvt);
	O(vscsiif_sring, __pad); Z(vscsiif_sring, __pad);
	O(vscsiif_sring, ring);
	printf("ring_size %lu\n", (unsigned long)__CONST_RING_SIZE(vscsiif, 4096));
	printf("sizeof.RING_IDX %zu\n", sizeof(RING_IDX));

	C(VSCSIIF_ACT_SCSI_CDB); C(VSCSIIF_ACT_SCSI_ABORT); C(VSCSIIF_ACT_SCSI_RESET); C(VSCSIIF_ACT_SCSI_SG_PRESET);
	C(VSCSIIF_SG_TABLESIZE); C(VSCSIIF_MAX_COMMAND_SIZE); C(VSCSIIF_SENSE_BUFFERSIZE);
	C(VSCSIIF_PAGE_SIZE); C(VSCSIIF_SG_PER_PAGE); C(VSCSIIF_SG_GRANT);
	C(XEN_VSCSIIF_RSLT_RESET_SUCCESS); C(XEN_VSCSIIF_RSLT_RESET_FAILED);
	C(XEN_VSCSIIF_RSLT_STATUS(0x00ab0002)); C(XEN_VSCSIIF_RSLT_HOST(0x00ab0002));
	C(XEN_VSCSIIF_RSLT_HOST_OK); C(XEN_VSCSIIF_RSLT_HOST_NO_CONNECT); C(XEN_VSCSIIF_RSLT_HOST_BUS_BUSY);
	C(XEN_VSCSIIF_RSLT_HOST_TIME_OUT); C(XEN_VSCSIIF_RSLT_HOST_BAD_TARGET); C(XEN_VSCSIIF_RSLT_HOST_ABORT);
	C(XEN_VSCSIIF_RSLT_HOST_PARITY); C(XEN_VSCSIIF_RSLT_HOST_ERROR); C(XEN_VSCSIIF_RSLT_HOST_RESET);
	C(XEN_VSCSIIF_RSLT_HOST_BAD_INTR); C(XEN_VSCSIIF_RSLT_HOST_PASSTHROUGH); C(XEN_VSCSIIF_RSLT_HOST_SOFT_ERROR);
	C(XEN_VSCSIIF_RSLT_HOST_IMM_RETRY); C(XEN_VSCSIIF_RSLT_HOST_REQUEUE); C(XEN_VSCSIIF_RSLT_HOST_TRANSPORT_DISRUPTED);
	C(XEN_VSCSIIF_RSLT_HOST_TRANSPORT_FAILFAST); C(XEN_VSCSIIF_RSLT_HOST_TARGET_FAILURE);
	C(XEN_VSCSIIF_RSLT_HOST_NEXUS_FAILURE); C(XEN_VSCSIIF_RSLT_HOST_ALLOC_FAILURE);
	C(XEN_VSCSIIF_RSLT_HOST_MEDIUM_ERROR); C(XEN_VSCSIIF_RSLT_HOST_TRANSPORT_MARGINAL);
	return 0;
}
`

// TestABI checks every field offset and size, the ring geometry and every
// constant against gcc's view of Debian's headers (the test installs or
// downloads libxen-dev if needed; it never skips).
func TestABI(t *testing.T) {
	c := cabi.Run(t, abiProbe)
	want := map[string]uint64{
		"sizeof.scsiif_request_segment":        SegmentSize,
		"scsiif_request_segment.gref":          SegGref,
		"sizeof.scsiif_request_segment.gref":   4,
		"scsiif_request_segment.offset":        SegOffset,
		"sizeof.scsiif_request_segment.offset": 2,
		"scsiif_request_segment.length":        SegLength,
		"sizeof.scsiif_request_segment.length": 2,

		"sizeof.vscsiif_request":                     RequestSize,
		"vscsiif_request.rqid":                       ReqRqid,
		"sizeof.vscsiif_request.rqid":                2,
		"vscsiif_request.act":                        ReqAct,
		"sizeof.vscsiif_request.act":                 1,
		"vscsiif_request.cmd_len":                    ReqCmdLen,
		"sizeof.vscsiif_request.cmd_len":             1,
		"vscsiif_request.cmnd":                       ReqCmnd,
		"sizeof.vscsiif_request.cmnd":                MaxCommandSize,
		"vscsiif_request.timeout_per_command":        ReqTimeout,
		"sizeof.vscsiif_request.timeout_per_command": 2,
		"vscsiif_request.channel":                    ReqChannel,
		"sizeof.vscsiif_request.channel":             2,
		"vscsiif_request.id":                         ReqID,
		"sizeof.vscsiif_request.id":                  2,
		"vscsiif_request.lun":                        ReqLUN,
		"sizeof.vscsiif_request.lun":                 2,
		"vscsiif_request.ref_rqid":                   ReqRefRqid,
		"sizeof.vscsiif_request.ref_rqid":            2,
		"vscsiif_request.sc_data_direction":          ReqDataDirection,
		"sizeof.vscsiif_request.sc_data_direction":   1,
		"vscsiif_request.nr_segments":                ReqNrSegments,
		"sizeof.vscsiif_request.nr_segments":         1,
		"vscsiif_request.seg":                        ReqSeg,
		"sizeof.vscsiif_request.seg":                 SGTableSize * SegmentSize,
		"vscsiif_request.reserved":                   ReqReserved,
		"sizeof.vscsiif_request.reserved":            RequestSize - ReqReserved,

		"sizeof.vscsiif_response":              ResponseSize,
		"vscsiif_response.rqid":                RspRqid,
		"sizeof.vscsiif_response.rqid":         2,
		"vscsiif_response.act":                 RspAct,
		"sizeof.vscsiif_response.act":          1,
		"vscsiif_response.sense_len":           RspSenseLen,
		"sizeof.vscsiif_response.sense_len":    1,
		"vscsiif_response.sense_buffer":        RspSenseBuffer,
		"sizeof.vscsiif_response.sense_buffer": SenseBufferSize,
		"vscsiif_response.rslt":                RspRslt,
		"sizeof.vscsiif_response.rslt":         4,
		"vscsiif_response.residual_len":        RspResidualLen,
		"sizeof.vscsiif_response.residual_len": 4,
		"vscsiif_response.reserved":            RspReserved,
		"sizeof.vscsiif_response.reserved":     ResponseSize - RspReserved,

		"sizeof.vscsiif_sring_entry":     RequestSize,
		"vscsiif_sring.req_prod":         SringReqProd,
		"sizeof.vscsiif_sring.req_prod":  4,
		"vscsiif_sring.req_event":        SringReqEvent,
		"sizeof.vscsiif_sring.req_event": 4,
		"vscsiif_sring.rsp_prod":         SringRspProd,
		"sizeof.vscsiif_sring.rsp_prod":  4,
		"vscsiif_sring.rsp_event":        SringRspEvent,
		"sizeof.vscsiif_sring.rsp_event": 4,
		"vscsiif_sring.pvt":              SringPvt,
		"sizeof.vscsiif_sring.pvt":       SringPad - SringPvt,
		"vscsiif_sring.__pad":            SringPad,
		"sizeof.vscsiif_sring.__pad":     SringRing - SringPad,
		"vscsiif_sring.ring":             RingHeaderSize,
		"ring_size":                      RingSize,
		"sizeof.RING_IDX":                4,

		"VSCSIIF_ACT_SCSI_CDB":                ActSCSICDB,
		"VSCSIIF_ACT_SCSI_ABORT":              ActSCSIAbort,
		"VSCSIIF_ACT_SCSI_RESET":              ActSCSIReset,
		"VSCSIIF_ACT_SCSI_SG_PRESET":          ActSCSISGPreset,
		"VSCSIIF_SG_TABLESIZE":                SGTableSize,
		"VSCSIIF_MAX_COMMAND_SIZE":            MaxCommandSize,
		"VSCSIIF_SENSE_BUFFERSIZE":            SenseBufferSize,
		"VSCSIIF_PAGE_SIZE":                   PageSize,
		"VSCSIIF_SG_PER_PAGE":                 SGPerPage,
		"VSCSIIF_SG_GRANT":                    SGGrant,
		"XEN_VSCSIIF_RSLT_RESET_SUCCESS":      RsltResetSuccess,
		"XEN_VSCSIIF_RSLT_RESET_FAILED":       RsltResetFailed,
		"XEN_VSCSIIF_RSLT_STATUS(0x00ab0002)": uint64(Rslt(0xab, 2) & 0xff),
		"XEN_VSCSIIF_RSLT_HOST(0x00ab0002)":   uint64(Rslt(0xab, 2) >> 16 & 0xff),

		"XEN_VSCSIIF_RSLT_HOST_OK":                  HostOK,
		"XEN_VSCSIIF_RSLT_HOST_NO_CONNECT":          HostNoConnect,
		"XEN_VSCSIIF_RSLT_HOST_BUS_BUSY":            HostBusBusy,
		"XEN_VSCSIIF_RSLT_HOST_TIME_OUT":            HostTimeOut,
		"XEN_VSCSIIF_RSLT_HOST_BAD_TARGET":          HostBadTarget,
		"XEN_VSCSIIF_RSLT_HOST_ABORT":               HostAbort,
		"XEN_VSCSIIF_RSLT_HOST_PARITY":              HostParity,
		"XEN_VSCSIIF_RSLT_HOST_ERROR":               HostError,
		"XEN_VSCSIIF_RSLT_HOST_RESET":               HostReset,
		"XEN_VSCSIIF_RSLT_HOST_BAD_INTR":            HostBadIntr,
		"XEN_VSCSIIF_RSLT_HOST_PASSTHROUGH":         HostPassthrough,
		"XEN_VSCSIIF_RSLT_HOST_SOFT_ERROR":          HostSoftError,
		"XEN_VSCSIIF_RSLT_HOST_IMM_RETRY":           HostImmRetry,
		"XEN_VSCSIIF_RSLT_HOST_REQUEUE":             HostRequeue,
		"XEN_VSCSIIF_RSLT_HOST_TRANSPORT_DISRUPTED": HostTransportDisrupted,
		"XEN_VSCSIIF_RSLT_HOST_TRANSPORT_FAILFAST":  HostTransportFailfast,
		"XEN_VSCSIIF_RSLT_HOST_TARGET_FAILURE":      HostTargetFailure,
		"XEN_VSCSIIF_RSLT_HOST_NEXUS_FAILURE":       HostNexusFailure,
		"XEN_VSCSIIF_RSLT_HOST_ALLOC_FAILURE":       HostAllocFailure,
		"XEN_VSCSIIF_RSLT_HOST_MEDIUM_ERROR":        HostMediumError,
		"XEN_VSCSIIF_RSLT_HOST_TRANSPORT_MARGINAL":  HostTransportMarginal,
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := want[name]
		got, ok := c[name]
		switch {
		case !ok:
			t.Errorf("%s: not printed by the C probe", name)
		case got != w:
			t.Errorf("%s: C says %d, Go uses %d", name, got, w)
		default:
			t.Logf("%-45s %5d ok", name, got)
		}
	}
	for name := range c {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: printed by the C probe but not checked", name)
		}
	}
	// The page is used completely: 64 + 16 * 252 = 4096.
	if RingHeaderSize+RingSize*RequestSize != PageSize {
		t.Errorf("ring geometry: %d + %d*%d != %d", RingHeaderSize, RingSize, RequestSize, PageSize)
	}
}
