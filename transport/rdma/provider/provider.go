// Package provider is the small verbs API the RDMA transport is written
// against: RDMA CM event channels and connection identifiers, protection
// domains, registered memory, completion queues with a waitable
// notification, and reliable-connected queue pairs that post SEND, RECV,
// RDMA READ and RDMA WRITE work requests.
//
// Two implementations exist: transport/rdma/internal/verbs (rdma-core
// through cgo, the only code that includes <infiniband/verbs.h> and
// <rdma/rdma_cma.h>) and transport/rdma/fakeverbs (in memory, for tests).
// The transport's Listener, Channel and Conn are written once against this
// package.
//
// The types follow libibverbs and librdmacm closely (a work request is
// ibv_send_wr with one scatter/gather element; an event is an
// rdma_cm_event whose private data has been copied out and acknowledged),
// so that the real implementation is a thin translation. Every method is
// safe for concurrent use unless it says otherwise.
package provider

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Provider is the verbs layer.
type Provider interface {
	// NewEventChannel opens an RDMA CM event channel (rdma_create_event_channel).
	NewEventChannel() (EventChannel, error)
	// Name names the implementation ("verbs", "fake").
	Name() string
}

// EventChannel delivers RDMA CM events for the identifiers created on it.
type EventChannel interface {
	// Listen creates an identifier bound to addr (an unspecified address
	// listens on every RDMA device) and listens on it
	// (rdma_create_id + rdma_bind_addr + rdma_listen, port space TCP).
	Listen(addr netip.AddrPort, backlog int) (ID, error)
	// CreateID creates an identifier for an active connection.
	CreateID() (ID, error)
	// Next returns the next event, already acknowledged: its private data
	// is a copy. It blocks until an event arrives, the deadline passes
	// (ErrTimeout; the zero time means no deadline), Interrupt is called
	// (ErrTimeout) or the channel is closed (ErrClosed).
	Next(deadline time.Time) (Event, error)
	// Interrupt wakes a blocked Next.
	Interrupt()
	// Close closes the channel. Every identifier created on it must have
	// been destroyed.
	Close() error
}

// EventType is an RDMA CM event type (enum rdma_cm_event_type).
type EventType int

const (
	EventAddrResolved EventType = iota
	EventAddrError
	EventRouteResolved
	EventRouteError
	EventConnectRequest
	EventConnectResponse
	EventConnectError
	EventUnreachable
	EventRejected
	EventEstablished
	EventDisconnected
	EventDeviceRemoval
	EventMulticastJoin
	EventMulticastError
	EventAddrChange
	EventTimewaitExit
)

var eventNames = [...]string{"ADDR_RESOLVED", "ADDR_ERROR", "ROUTE_RESOLVED", "ROUTE_ERROR",
	"CONNECT_REQUEST", "CONNECT_RESPONSE", "CONNECT_ERROR", "UNREACHABLE", "REJECTED",
	"ESTABLISHED", "DISCONNECTED", "DEVICE_REMOVAL", "MULTICAST_JOIN", "MULTICAST_ERROR",
	"ADDR_CHANGE", "TIMEWAIT_EXIT"}

func (t EventType) String() string {
	if t >= 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return fmt.Sprintf("RDMA_CM_EVENT(%d)", int(t))
}

// Event is one RDMA CM event.
type Event struct {
	Type EventType
	// ID is the identifier the event is about; for EventConnectRequest a
	// new identifier for the incoming connection.
	ID ID
	// Listen is the listening identifier of an EventConnectRequest.
	Listen ID
	// Status is the event's status: the CM reject reason of an
	// EventRejected (RejectConsumerDefined when the peer rejected with
	// private data), a negative errno for the error events.
	Status int
	// Param holds the connection parameters of EventConnectRequest and
	// EventEstablished and the private data of those and EventRejected.
	// As librdmacm reports them to the receiving side: for a connect
	// request, InitiatorDepth is how many RDMA READs this side may have
	// outstanding towards the peer (the peer's responder resources).
	Param ConnParam
}

// RejectConsumerDefined is the InfiniBand CM reject reason
// IB_CM_REJ_CONSUMER_DEFINED that rdma_reject uses; private data travels
// with it.
const RejectConsumerDefined = 28

// ConnParam is struct rdma_conn_param.
type ConnParam struct {
	PrivateData        []byte
	ResponderResources uint8
	InitiatorDepth     uint8
	RetryCount         uint8
	RNRRetryCount      uint8
}

// ID is an RDMA CM identifier (struct rdma_cm_id).
type ID interface {
	// Device is the RDMA device the identifier is bound to, nil before
	// it is (after address resolution, or for a connect request).
	Device() Device
	// PortNum is the device port.
	PortNum() uint8
	LocalAddr() netip.AddrPort
	RemoteAddr() netip.AddrPort
	// ResolveAddr starts address resolution (EventAddrResolved or
	// EventAddrError follows). src may be the zero Addr.
	ResolveAddr(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error
	// ResolveRoute starts route resolution (EventRouteResolved or
	// EventRouteError follows).
	ResolveRoute(timeout time.Duration) error
	// CreateQP creates the identifier's reliable-connected queue pair,
	// with cq for both send and receive completions (rdma_create_qp).
	CreateQP(pd PD, cq CQ, cap QPCap) (QP, error)
	// Connect sends a connect request (rdma_connect).
	Connect(p *ConnParam) error
	// Accept accepts a connect request (rdma_accept); the queue pair is
	// ready to send when it returns.
	Accept(p *ConnParam) error
	// Reject rejects a connect request with private data (rdma_reject,
	// CM reason RejectConsumerDefined).
	Reject(privateData []byte) error
	// Disconnect moves the queue pair to the error state and disconnects
	// (rdma_disconnect). Outstanding work requests complete with
	// WCFlushErr.
	Disconnect() error
	// Destroy destroys the identifier; its queue pair must have been
	// destroyed.
	Destroy() error
}

// QPCap sizes a queue pair.
type QPCap struct {
	MaxSendWR, MaxRecvWR   int
	MaxSendSGE, MaxRecvSGE int
	MaxInline              int
}

// DeviceAttr is what the transport needs from ibv_query_device.
type DeviceAttr struct {
	MaxQPWR         int
	MaxSGE          int
	MaxCQE          int
	MaxMR           int
	MaxQPRdAtom     int // RDMA READs the device serves per queue pair
	MaxQPInitRdAtom int // RDMA READs a queue pair may have outstanding
	NodeGUID        uint64
}

// PortAttr is what the transport needs from ibv_query_port.
type PortAttr struct {
	MaxMsgSize uint32
	// LinkLayer is "InfiniBand" or "Ethernet".
	LinkLayer string
	// GID is GID index 0 of the port (its port GUID in the low 8 bytes
	// for InfiniBand and RoCE).
	GID    [16]byte
	Active bool
}

// Device is an opened RDMA device (struct ibv_context).
type Device interface {
	Name() string
	Attr() DeviceAttr
	PortAttr(port uint8) (PortAttr, error)
	// AllocPD allocates a protection domain.
	AllocPD() (PD, error)
	// CreateCQ creates a completion queue of at least cqe entries with its
	// own completion channel (a pollable file descriptor).
	CreateCQ(cqe int) (CQ, error)
}

// Access is a set of memory region access flags (enum ibv_access_flags).
type Access uint32

const (
	AccessLocalWrite  Access = 1 << 0
	AccessRemoteWrite Access = 1 << 1
	AccessRemoteRead  Access = 1 << 2
)

// PD is a protection domain.
type PD interface {
	// Register allocates size bytes outside the Go heap (so that device
	// DMA may touch them at any time) and registers them.
	Register(size int, access Access) (MR, error)
	Close() error
}

// MR is a registered memory region that owns its memory.
type MR interface {
	// Bytes is the memory. It stays mapped until Close.
	Bytes() []byte
	// Addr is the address of Bytes()[0] in work requests and remote
	// descriptors.
	Addr() uint64
	LKey() uint32
	RKey() uint32
	Close() error
}

// CQ is a completion queue with a completion channel.
type CQ interface {
	// Poll moves up to len(wc) completions into wc (ibv_poll_cq).
	Poll(wc []WC) (int, error)
	// Arm requests a notification for the next completion
	// (ibv_req_notify_cq). Poll again after arming: a completion that
	// arrived before Arm notifies nothing.
	Arm() error
	// Wait blocks until the armed notification arrives (and consumes it),
	// the deadline passes or Interrupt is called (ErrTimeout), or the CQ
	// is closed (ErrClosed). It never spins.
	Wait(deadline time.Time) error
	// Interrupt wakes a blocked Wait.
	Interrupt()
	Close() error
}

// QP is a reliable-connected queue pair.
type QP interface {
	Num() uint32
	// PostSend posts wrs in order as one list and returns how many were
	// posted; on an error, wrs[n] is the one that failed.
	PostSend(wrs []SendWR) (n int, err error)
	// PostRecv posts receive buffers likewise.
	PostRecv(wrs []RecvWR) (n int, err error)
	// Close destroys the queue pair (no DMA happens after it returns).
	Close() error
}

// Opcode is a send work request opcode (enum ibv_wr_opcode).
type Opcode uint8

const (
	OpSend Opcode = iota
	OpWrite
	OpRead
)

func (o Opcode) String() string {
	switch o {
	case OpSend:
		return "SEND"
	case OpWrite:
		return "RDMA_WRITE"
	case OpRead:
		return "RDMA_READ"
	}
	return fmt.Sprintf("opcode(%d)", uint8(o))
}

// SendFlags are send work request flags.
type SendFlags uint8

const (
	// Signaled asks for a completion on success (errors always complete).
	Signaled SendFlags = 1 << iota
	// Inline copies the data into the work request at post time.
	Inline
)

// SGE is one scatter/gather element in registered memory.
type SGE struct {
	Addr uint64
	Len  uint32
	LKey uint32
}

// SendWR is a send work request with one scatter/gather element.
type SendWR struct {
	ID    uint64
	Op    Opcode
	Flags SendFlags
	Local SGE
	// Remote names initiator memory for OpWrite and OpRead.
	RemoteAddr uint64
	RKey       uint32
}

// RecvWR is a receive work request.
type RecvWR struct {
	ID    uint64
	Local SGE
}

// WCStatus is a work completion status (enum ibv_wc_status).
type WCStatus uint32

const (
	WCSuccess WCStatus = iota
	WCLocLenErr
	WCLocQPOpErr
	WCLocEECOpErr
	WCLocProtErr
	WCFlushErr
	WCMWBindErr
	WCBadRespErr
	WCLocAccessErr
	WCRemInvReqErr
	WCRemAccessErr
	WCRemOpErr
	WCRetryExcErr
	WCRNRRetryExcErr
	WCLocRDDViolErr
	WCRemInvRDReqErr
	WCRemAbortErr
	WCInvEECNErr
	WCInvEECStateErr
	WCFatalErr
	WCRespTimeoutErr
	WCGeneralErr
)

var wcNames = [...]string{"success", "local length error", "local QP operation error",
	"local EE context operation error", "local protection error", "work request flushed error",
	"memory window bind error", "bad response error", "local access error",
	"remote invalid request error", "remote access error", "remote operation error",
	"transport retry counter exceeded", "RNR retry counter exceeded",
	"local RDD violation error", "remote invalid RD request", "aborted error",
	"invalid EE context number", "invalid EE context state", "fatal error",
	"response timeout error", "general error"}

func (s WCStatus) String() string {
	if int(s) < len(wcNames) {
		return wcNames[s]
	}
	return fmt.Sprintf("wc status %d", uint32(s))
}

// WCOpcode is a work completion opcode (enum ibv_wc_opcode).
type WCOpcode uint32

const (
	WCSend  WCOpcode = 0
	WCWrite WCOpcode = 1
	WCRead  WCOpcode = 2
	WCRecv  WCOpcode = 128
)

// WC is a work completion.
type WC struct {
	ID     uint64
	Status WCStatus
	Op     WCOpcode // valid only when Status is WCSuccess
	Len    uint32   // bytes received (WCRecv)
	QPNum  uint32
}

// Sentinel errors. Implementations wrap errno values in *OpError, whose
// Unwrap returns one of these when one matches, so errors.Is works the
// same on both implementations.
var (
	ErrClosed       = errors.New("rdma: closed")
	ErrTimeout      = errors.New("rdma: timed out")
	ErrNoDevice     = errors.New("rdma: no RDMA device for the address")
	ErrAddrInUse    = errors.New("rdma: address already in use")
	ErrAddrNotAvail = errors.New("rdma: address not available")
	ErrNoMemory     = errors.New("rdma: out of memory or device resources")
	ErrInvalid      = errors.New("rdma: invalid argument")
	ErrPermission   = errors.New("rdma: permission denied")
	ErrUnreachable  = errors.New("rdma: destination unreachable")
	ErrQueueFull    = errors.New("rdma: work queue full")
)

// OpError is a failed verbs or RDMA CM call.
type OpError struct {
	Op    string // the C function, e.g. "rdma_bind_addr"
	Errno int    // the errno it failed with (0 if none)
	Err   error  // a sentinel above, or a generic error
}

func (e *OpError) Error() string {
	if e.Errno != 0 {
		return fmt.Sprintf("%s: %v (errno %d)", e.Op, e.Err, e.Errno)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }
