// Package vscsiif is the wire ABI of Xen PV SCSI (xen/include/public/io/
// vscsiif.h and io/ring.h) as Linux xen-scsifront uses it: the 252-byte
// request and response, the 16-slot shared ring with free-running indexes
// and event suppression, and a decoder that validates a private copy of a
// request. It does no I/O and keeps no state beyond a ring's two private
// indexes; the shared page is a plain []byte (an mmapped grant in
// production, a heap slice in tests).
//
// Everything here is little-endian x86-64 (the only ABI this backend
// serves: "x86_64-abi", identical to "x86_32-abi" for vscsiif). The
// offsets are checked against the C headers by TestABI.
package vscsiif

// Sizes and limits (vscsiif.h).
const (
	RequestSize     = 252  // sizeof(struct vscsiif_request)
	ResponseSize    = 252  // sizeof(struct vscsiif_response)
	SegmentSize     = 8    // sizeof(struct scsiif_request_segment)
	SGTableSize     = 26   // VSCSIIF_SG_TABLESIZE: seg[] entries in a request
	MaxCommandSize  = 16   // VSCSIIF_MAX_COMMAND_SIZE
	SenseBufferSize = 96   // VSCSIIF_SENSE_BUFFERSIZE
	PageSize        = 4096 // VSCSIIF_PAGE_SIZE
	SGPerPage       = 512  // VSCSIIF_SG_PER_PAGE: segments in one indirect page
	SGGrant         = 0x80 // VSCSIIF_SG_GRANT: nr_segments counts indirect pages

	RingHeaderSize = 64 // offsetof(struct vscsiif_sring, ring)
	RingSize       = 16 // __CONST_RING_SIZE(vscsiif, 4096)
)

// Request actions (act).
const (
	ActSCSICDB      = 1 // VSCSIIF_ACT_SCSI_CDB: execute the CDB
	ActSCSIAbort    = 2 // VSCSIIF_ACT_SCSI_ABORT: abort ref_rqid
	ActSCSIReset    = 3 // VSCSIIF_ACT_SCSI_RESET: reset the device
	ActSCSISGPreset = 4 // VSCSIIF_ACT_SCSI_SG_PRESET: deprecated, refused
)

// sc_data_direction values: Linux enum dma_data_direction.
const (
	DirBidirectional = 0 // DMA_BIDIRECTIONAL
	DirToDevice      = 1 // DMA_TO_DEVICE: a write; data-out; grants read-only
	DirFromDevice    = 2 // DMA_FROM_DEVICE: a read; data-in
	DirNone          = 3 // DMA_NONE
)

// Result codes (rslt). For ACT_SCSI_CDB: bits 0..7 the SCSI status, bits
// 16..23 the host byte. For ABORT and RESET one of RsltReset*.
const (
	RsltResetSuccess = 0x2002 // XEN_VSCSIIF_RSLT_RESET_SUCCESS
	RsltResetFailed  = 0x2003 // XEN_VSCSIIF_RSLT_RESET_FAILED
)

// Host byte values (XEN_VSCSIIF_RSLT_HOST_*; Linux maps them to DID_*).
const (
	HostOK                 = 0
	HostNoConnect          = 1
	HostBusBusy            = 2
	HostTimeOut            = 3
	HostBadTarget          = 4
	HostAbort              = 5
	HostParity             = 6
	HostError              = 7
	HostReset              = 8
	HostBadIntr            = 9
	HostPassthrough        = 10
	HostSoftError          = 11
	HostImmRetry           = 12
	HostRequeue            = 13
	HostTransportDisrupted = 14
	HostTransportFailfast  = 15
	HostTargetFailure      = 16
	HostNexusFailure       = 17
	HostAllocFailure       = 18
	HostMediumError        = 19
	HostTransportMarginal  = 20
)

// Rslt builds a result from a host byte and a SCSI status.
func Rslt(host, status uint8) int32 { return int32(host)<<16 | int32(status) }

// Field offsets of struct vscsiif_request.
const (
	ReqRqid          = 0
	ReqAct           = 2
	ReqCmdLen        = 3
	ReqCmnd          = 4
	ReqTimeout       = 20
	ReqChannel       = 22
	ReqID            = 24
	ReqLUN           = 26
	ReqRefRqid       = 28
	ReqDataDirection = 30
	ReqNrSegments    = 31
	ReqSeg           = 32
	ReqReserved      = 240
)

// Field offsets of struct scsiif_request_segment.
const (
	SegGref   = 0
	SegOffset = 4
	SegLength = 6
)

// Field offsets of struct vscsiif_response.
const (
	RspRqid        = 0
	RspAct         = 2
	RspSenseLen    = 3
	RspSenseBuffer = 4
	RspRslt        = 100
	RspResidualLen = 104
	RspReserved    = 108
)

// Field offsets of struct vscsiif_sring (the shared page).
const (
	SringReqProd  = 0
	SringReqEvent = 4
	SringRspProd  = 8
	SringRspEvent = 12
	SringPvt      = 16
	SringPad      = 20
	SringRing     = 64
)
