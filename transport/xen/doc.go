// Package xen is the Xen PV SCSI transport: a user-space backend for the
// vscsiif protocol of Linux xen-scsifront, feeding the one SRP session
// layer (package srp) like every other transport.
//
// # Layers
//
//	vscsiif   the ring ABI: 252-byte requests and responses, the 16-slot
//	          shared ring with free-running indexes and event suppression,
//	          the request decoder (copy once, validate the copy). Pure.
//	xenstore  the xs_wire codec and a client over /dev/xen/xenbus or
//	          xenstored's socket.
//	xenbus    the backend's XenBus protocol as a pure state machine: the
//	          caller feeds it what XenStore says and performs the writes
//	          and ring attaches/detaches it returns.
//	xendev    the real hypervisor (Linux /dev/xen/*), a Hypervisor.
//	xen       this package: Hypervisor (the seam a simulator also
//	          implements), the Backend that runs the state machines of
//	          every guest device, the toolstack part (writing both XenStore
//	          directories, since upstream xl has no PV SCSI), and the
//	          srp.Channel of one ring.
//
// # Mapping onto SRP
//
// One ring (one guest "vhost", device/vscsi/<vhost>) is one srp.Channel
// and one I_T nexus. Its SRP_LOGIN_REQ is synthesized: the initiator port
// ID is bytes 0..13 of the domain's UUID (or of a hash of its name when it
// has none) followed by the vhost number big-endian; the target port ID is
// the one the backend is configured with; credits are the ring's 16 slots.
//
// A VSCSIIF_ACT_SCSI_CDB request becomes an SRP_CMD whose tag is the
// request's rqid and whose LUN is the SAM LUN of id<<8|lun (peripheral
// addressing below 256, flat space above, as scsi.EncodeLUN). Each data
// segment (gref, offset, length), after indirect pages are resolved,
// becomes srp.MemDesc{Addr: offset, Key: gref, Len: length}; ReadData and
// WriteData turn a descriptor list into one batched grant copy (or, for
// large transfers when configured, a grant map). VSCSIIF_ACT_SCSI_ABORT
// becomes SRP_TSK_MGMT ABORT TASK of tag ref_rqid, VSCSIIF_ACT_SCSI_RESET
// LOGICAL UNIT RESET; both are answered with rslt 0x2002 (SUCCESS) or
// 0x2003 (FAILED). An SRP_RSP becomes a vscsiif response: status in rslt,
// sense (at most 96 bytes), residual_len = data-in or data-out residual.
// SRP_CRED_REQ and SRP_AER_REQ have no vscsiif form and are dropped;
// SRP_T_LOGOUT disconnects the ring cleanly.
package xen
