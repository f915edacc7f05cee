// Package transport is the one interface both transports implement, and an
// in-memory implementation of it for tests.
//
// A transport accepts channels (an RDMA connection whose CM request carried
// an SRP_LOGIN_REQ; a Xen ring a frontend attached) and hands each to the
// SRP session layer with its login request. A channel delivers typed IUs,
// sends typed IUs, and moves data between target buffers and initiator
// memory named by SRP memory descriptors (address, key or grant reference,
// length): RDMA READ/WRITE on one transport, grant copy or grant map on the
// other. Transports never see SCSI: the session layer in package srp is the
// only consumer of a Channel.
//
// The Channel interface is declared in package srp (where it is used), so
// the dependency direction stays transport → srp → scsi; Channel here is
// the same type under the transport's name.
package transport

import (
	"context"
	"errors"

	"github.com/srptgt/srptgt/srp"
)

// Channel is one SRP channel. See srp.Channel for the contract.
type Channel = srp.Channel

// Limits describes a channel. See srp.Limits.
type Limits = srp.Limits

// Listener hands out channels as initiators log in.
type Listener interface {
	// Accept waits for the next channel. The channel's LoginRequest is
	// ready; the caller answers it (srp.Server.Serve does).
	Accept(ctx context.Context) (Channel, error)
	// Close stops accepting; Accept then returns ErrListenerClosed.
	Close() error
}

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("transport: listener closed")
