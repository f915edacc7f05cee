package rdma

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// Channel is the target end of one RDMA channel: an RDMA CM connection
// whose connect request carried an SRP login. It implements srp.Channel.
type Channel struct {
	l       *Listener
	e       *endpoint
	log     *zap.Logger
	login   srp.LoginReq
	credits int
	respRes uint8
	depth   uint8
}

var _ transport.Channel = (*Channel)(nil)

// LoginRequest is the login the connect request carried.
func (ch *Channel) LoginRequest() *srp.LoginReq { return &ch.login }

// Limits reports the channel's capacity: Credits is its posted receive
// buffers (less the headroom for IUs that take no credit).
func (ch *Channel) Limits() srp.Limits {
	c := &ch.l.t.cfg
	return srp.Limits{MaxITIU: c.MaxITIU, MaxTIIU: c.MaxTIIU, Credits: ch.credits, ImmData: true}
}

// RDMAReadDepth is how many RDMA READs the channel keeps outstanding at
// most (the initiator's responder resources, within the device's limit).
func (ch *Channel) RDMAReadDepth() int { return int(ch.depth) }

// Accept accepts the connection with rsp as the CM accept private data
// (the 52-byte SRP_LOGIN_RSP Linux ib_srp reads on RDMA_CM_EVENT_ESTABLISHED).
func (ch *Channel) Accept(rsp *srp.LoginRsp) error {
	var b [srp.LoginRspLen]byte
	n, err := rsp.Encode(b[:])
	if err == nil {
		err = ch.e.id.Accept(&provider.ConnParam{PrivateData: b[:n],
			ResponderResources: ch.respRes, InitiatorDepth: ch.depth, RNRRetryCount: 7})
	}
	if err != nil {
		ch.giveUpRecv()
		ch.e.close(fmt.Errorf("rdma: accepting the connection: %w", err))
		return err
	}
	ch.log.Info("channel established", zap.Int("credits", int(rsp.ReqLimDelta)),
		zap.Uint32("max_it_iu", rsp.MaxITIULen), zap.Int("rdma_read_depth", int(ch.depth)))
	return nil
}

// errRejected closes a channel whose login was refused.
var errRejected = errors.New("rdma: login rejected")

// Reject refuses the connection with rej as the CM reject private data
// (CM reason IB_CM_REJ_CONSUMER_DEFINED, so Linux ib_srp logs the
// SRP_LOGIN_REJ reason) and closes the channel.
func (ch *Channel) Reject(rej *srp.LoginRej) error {
	var b [srp.LoginRejLen]byte
	n, err := rej.Encode(b[:])
	if err == nil {
		err = ch.e.id.Reject(b[:n])
	}
	ch.giveUpRecv()
	ch.e.close(errRejected)
	return err
}

// giveUpRecv: the session will not call Recv on a refused channel.
func (ch *Channel) giveUpRecv() { ch.e.releaseRecvSide() }

// Recv receives and decodes the next IU. It aliases the receive buffer,
// which goes back to the queue pair at the next Recv.
func (ch *Channel) Recv(iu *srp.IU) error {
	if ch.e.recvSide.Load() {
		return srp.ErrClosed
	}
	b, err := ch.e.recv()
	if err != nil {
		return err
	}
	return iu.DecodeFromInitiator(b)
}

// Send encodes iu into a registered send buffer and posts it.
func (ch *Channel) Send(iu *srp.IU) error {
	e := ch.e
	if n := iu.Len(); n > e.cfg.sendSize {
		return fmt.Errorf("rdma: %v of %d bytes exceeds the channel's %d", iu.Op, n, e.cfg.sendSize)
	}
	e.life.RLock()
	defer e.life.RUnlock()
	idx, ok := e.getSendBuf()
	if !ok {
		return srp.ErrClosed
	}
	n, err := iu.Encode(e.sbuf(idx))
	if err != nil {
		e.sfree <- idx
		return err
	}
	return e.send(idx, n)
}

// Alloc returns a registered data buffer.
func (ch *Channel) Alloc(n int) ([]byte, error) {
	if ch.e.closed() {
		return nil, srp.ErrClosed
	}
	return ch.e.ar.alloc(n)
}

// Free returns a buffer from Alloc once no RDMA WRITE reads it any more.
func (ch *Channel) Free(b []byte) { ch.e.free(b) }

// ReadData fetches data-out with RDMA READ.
func (ch *Channel) ReadData(dst []byte, descs []srp.MemDesc) error {
	return ch.e.readData(dst, descs)
}

// WriteData posts data-in as RDMA WRITEs; they reach the initiator before
// any IU sent after it.
func (ch *Channel) WriteData(src []byte, descs []srp.MemDesc) error {
	return ch.e.writeData(src, descs)
}

// Close disconnects the channel.
func (ch *Channel) Close(reason error) {
	ch.e.close(reason)
}

// Done is closed once the channel has been torn down.
func (ch *Channel) Done() <-chan struct{} { return ch.e.stopped }

// CloseReason is why the channel closed (nil while open).
func (ch *Channel) CloseReason() error { return ch.e.closeReason() }

// onEvent handles an RDMA CM event for the channel's identifier.
func (ch *Channel) onEvent(ev provider.Event) {
	switch ev.Type {
	case provider.EventDisconnected:
		ch.log.Info("initiator disconnected")
		ch.e.close(ErrDisconnected)
	case provider.EventRejected, provider.EventUnreachable, provider.EventConnectError:
		ch.log.Warn("connection failed", zap.Stringer("event", ev.Type), zap.Int("status", ev.Status))
		ch.e.close(fmt.Errorf("%w: %v (status %d)", ErrDisconnected, ev.Type, ev.Status))
	case provider.EventDeviceRemoval:
		ch.e.close(fmt.Errorf("%w: RDMA device removed", ErrDisconnected))
	}
}
