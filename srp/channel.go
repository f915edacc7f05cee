package srp

import "errors"

// Channel is what the session layer needs from a transport: one SRP channel
// (an RDMA connection, a Xen ring) that carries IUs and moves data between
// target buffers and initiator memory. The transport package names this
// interface transport.Channel; it is declared here, where it is consumed,
// so that the dependency runs transport → srp and never back.
//
// A transport whose wire carries SRP bytes decodes them with this package's
// codec in Recv and encodes in Send. A transport whose wire is not SRP (the
// vscsiif ring) builds the same typed IUs directly.
type Channel interface {
	// LoginRequest is the SRP_LOGIN_REQ that opened the channel.
	LoginRequest() *LoginReq
	// Limits reports what the channel can carry.
	Limits() Limits
	// Accept answers the login with rsp; IUs flow after it.
	Accept(rsp *LoginRsp) error
	// Reject answers the login with rej and closes the channel.
	Reject(rej *LoginRej) error

	// Recv blocks for the next IU from the initiator and decodes it into
	// iu. Slices iu aliases (CDB, immediate data, partial descriptors)
	// stay valid until the next Recv. Recv returns ErrClosed once the
	// channel is closed. A decode error is returned as it is (a
	// *DecodeError) and the channel stays usable.
	Recv(iu *IU) error
	// Send sends one IU to the initiator: SRP_RSP, SRP_CRED_REQ,
	// SRP_AER_REQ or SRP_T_LOGOUT. Safe for concurrent use; IUs from one
	// goroutine go out in order, after any data WriteData moved before.
	Send(iu *IU) error

	// Alloc returns a buffer of n bytes that ReadData and WriteData can
	// use (registered memory on RDMA); Free gives it back.
	Alloc(n int) ([]byte, error)
	Free(b []byte)
	// ReadData fills dst from initiator memory described by descs (the
	// data-out transfer). Safe for concurrent use.
	ReadData(dst []byte, descs []MemDesc) error
	// WriteData moves src into initiator memory described by descs (the
	// data-in transfer), in descriptor order, stopping after len(src)
	// bytes. It may return before the transfer lands, but the transfer is
	// ordered before any IU this goroutine sends next.
	WriteData(src []byte, descs []MemDesc) error

	// Close closes the channel. reason is for the transport's log.
	Close(reason error)
}

// Releaser is implemented by a channel that needs to know when the session
// layer is done with it. After Close, the session's goroutines may still
// finish commands and Send their responses; Released is called once none
// is left: no Send, ReadData, WriteData, Alloc or Free follows it. (The
// Xen ring answers the requests the session dropped and unmaps its grants
// then; an RDMA channel has no use for it.)
type Releaser interface {
	Released()
}

// Dropper is implemented by a channel whose wire needs an answer to every
// request. On the vscsiif ring the guest frees a request slot only when
// that request is answered, so a command the session ends without a
// response (aborted by a task management function or by I_T nexus loss,
// SAM-5 5.6) would leak the slot. The session calls Dropped with the
// command's tag after the tag is free again; the channel answers the
// request in its own way (vscsiif: host byte DID_RESET, which Linux
// retries). SRP initiators need no such answer.
type Dropper interface {
	Dropped(tag uint64)
}

// Limits describes a channel.
type Limits struct {
	// MaxITIU is the largest IU the channel can receive from the
	// initiator.
	MaxITIU int
	// MaxTIIU is the largest IU it can send.
	MaxTIIU int
	// Credits is how many request IUs the channel can hold at once (RDMA
	// receive buffers, ring slots).
	Credits int
	// ImmData is set when the channel can carry SRP-2 immediate data.
	ImmData bool
	// SyncData is set when ReadData completes without waiting for the
	// initiator (a memory or grant copy, not an RDMA READ). The session
	// then runs a command whose backstore never blocks on its receive
	// goroutine, data-out included, with no hand-off to a slot goroutine.
	SyncData bool
	// AnyData is set when WriteData copies data-in from any memory, not
	// only from Alloc's buffers (a memory or grant copy; RDMA sends from
	// registered buffers). A read may then send a backstore's own bytes
	// (backstore.Viewer) without filling a buffer first.
	AnyData bool
}

// ErrClosed is returned by a closed channel.
var ErrClosed = errors.New("srp: channel closed")
