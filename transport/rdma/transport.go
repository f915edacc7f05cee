// Package rdma is srptgt's RDMA transport: SRP over RDMA CM, the way Linux
// ib_srp and LIO ib_srpt speak it (InfiniBand, RoCE, iWARP).
//
// A Listener binds an RDMA CM identifier to IP:port (port 5000 by
// default, what LIO users configure as rdma_cm_port). A connect request
// carries the initiator's login in its private data (Linux's 56-byte
// struct srp_login_req_rdma, or the 64-byte SRP_LOGIN_REQ); the listener
// creates a queue pair and completion queue for it, posts the receive
// buffers that back the channel's credits, and hands the Channel to the
// session layer, which answers with Accept (SRP_LOGIN_RSP as the CM accept
// private data) or Reject (SRP_LOGIN_REJ as the CM reject private data).
//
// On an established channel, IUs arrive in registered receive buffers
// (RECV), responses leave from registered send buffers (SEND), data-out
// is fetched with RDMA READ (no more outstanding per queue pair than the
// initiator's responder resources allow) and data-in is pushed with RDMA
// WRITE posted before the response SEND, which the reliable connection
// delivers after it. Data buffers come from one registered arena per
// device (Alloc/Free), so nothing is registered per command.
//
// Completions are polled in batches by one goroutine per channel that
// sleeps on the completion channel's descriptor through Go's poller
// (Config.Polling spins instead, for latency). A work request failing,
// the peer disconnecting (DREQ) or Close ends the channel: posted sends
// get a moment to go out, the queue pair is disconnected and drained, and
// everything is released. The initiator (Linux ib_srp reconnects by
// itself) logs in again on a new channel.
//
// The verbs come from a provider.Provider: rdma-core through cgo
// (Verbs), or fakeverbs in tests. Built with CGO_ENABLED=0, Verbs reports
// ErrNotBuiltIn.
//
// Conn is the initiator side (srptgt bench): it connects over RDMA CM
// with the 56-byte login as private data and implements the Go SRP
// initiator's Conn.
package rdma

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// DefaultPort is the RDMA CM port SRP targets listen on by convention
// (LIO ib_srpt's rdma_cm_port as users configure it).
const DefaultPort = 5000

// Config configures the transport.
type Config struct {
	// Provider is the verbs layer; nil means Verbs().
	Provider provider.Provider
	// Logger receives connection events; nil means none.
	Logger *zap.Logger
	// ArenaSize is the registered memory per RDMA device for data
	// buffers, receive and send buffers (default 128 MiB).
	ArenaSize int
	// Credits is how many request IUs a channel can hold: its posted
	// receive buffers, less a few kept for IUs that take no credit
	// (default 128).
	Credits int
	// MaxITIU is the largest initiator-to-target IU a channel accepts
	// (default 8260 + 4096; Linux ib_srp asks for 8260 with immediate
	// data). Receive buffers are sized from what the login asks.
	MaxITIU int
	// MaxTIIU is the largest IU sent to the initiator (default 256).
	MaxTIIU int
	// Polling makes each channel poll its completion queue instead of
	// sleeping on the completion channel: lower latency, one busy core
	// per active channel.
	Polling bool
	// Backlog is the CM listen backlog (default 64).
	Backlog int
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ArenaSize <= 0 {
		c.ArenaSize = 128 << 20
	}
	if c.Credits <= 0 {
		c.Credits = 128
	}
	if c.MaxITIU <= 0 {
		c.MaxITIU = 8260 + 4096
	}
	if c.MaxTIIU <= 0 {
		c.MaxTIIU = 256
	}
	if c.Backlog <= 0 {
		c.Backlog = 64
	}
}

// recvHeadroom is how many receive buffers a channel posts beyond its
// credits: SRP_CRED_RSP, SRP_AER_RSP and SRP_I_LOGOUT take a receive but
// no credit, and the receiving goroutine returns buffers in batches.
const recvHeadroom = 24

// Transport is the RDMA transport: its provider, and per RDMA device a
// protection domain and registered arena shared by the device's channels.
type Transport struct {
	cfg  Config
	prov provider.Provider
	log  *zap.Logger

	mu     sync.Mutex
	devs   map[provider.Device]*devState
	closed bool
}

// devState is what a device's channels share.
type devState struct {
	dev  provider.Device
	attr provider.DeviceAttr
	pd   provider.PD
	// arena is local memory (target buffers); remote is registered for
	// remote access too (initiator buffers the target reads and writes),
	// made on first use.
	arena  *arena
	remote *arena
}

// New returns a transport.
func New(cfg Config) (*Transport, error) {
	cfg.defaults()
	p := cfg.Provider
	if p == nil {
		var err error
		if p, err = Verbs(); err != nil {
			return nil, err
		}
	}
	return &Transport{cfg: cfg, prov: p, log: cfg.Logger, devs: make(map[provider.Device]*devState)}, nil
}

// Provider returns the verbs layer in use.
func (t *Transport) Provider() provider.Provider { return t.prov }

// device returns the shared state of dev, creating it on first use.
func (t *Transport) device(dev provider.Device, remote bool) (*devState, error) {
	if dev == nil {
		return nil, fmt.Errorf("rdma: identifier not bound to a device: %w", provider.ErrNoDevice)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, provider.ErrClosed
	}
	ds := t.devs[dev]
	if ds == nil {
		pd, err := dev.AllocPD()
		if err != nil {
			return nil, fmt.Errorf("rdma: %s: %w", dev.Name(), err)
		}
		mr, err := pd.Register(t.cfg.ArenaSize, provider.AccessLocalWrite)
		if err != nil {
			pd.Close()
			return nil, fmt.Errorf("rdma: %s: registering %d MiB: %w", dev.Name(), t.cfg.ArenaSize>>20, err)
		}
		ds = &devState{dev: dev, attr: dev.Attr(), pd: pd, arena: newArena(mr)}
		t.devs[dev] = ds
		t.log.Info("RDMA device ready", zap.String("device", dev.Name()),
			zap.Int("arena_mib", t.cfg.ArenaSize>>20))
	}
	if remote && ds.remote == nil {
		mr, err := ds.pd.Register(t.cfg.ArenaSize, provider.AccessLocalWrite|provider.AccessRemoteRead|provider.AccessRemoteWrite)
		if err != nil {
			return nil, fmt.Errorf("rdma: %s: registering %d MiB: %w", dev.Name(), t.cfg.ArenaSize>>20, err)
		}
		ds.remote = newArena(mr)
	}
	return ds, nil
}

// Close releases the devices' memory and protection domains. Listeners
// and connections must be closed first.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, ds := range t.devs {
		for _, a := range []*arena{ds.arena, ds.remote} {
			if a == nil {
				continue
			}
			if n := a.inUse(); n > 0 {
				t.log.Warn("RDMA buffers still in use at close", zap.String("device", ds.dev.Name()), zap.Int("bytes", n))
			}
			errs = append(errs, a.mr.Close())
		}
		errs = append(errs, ds.pd.Close())
	}
	return errors.Join(errs...)
}

// ParseAddr parses a listen or destination address: "IP:port",
// "[IPv6]:port", or a bare IP meaning port DefaultPort. An IPv6 link-local
// address may carry a zone ("[fe80::1%eth0]:5000").
func ParseAddr(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip, DefaultPort), nil
	}
	if ip, err := netip.ParseAddr(trimBrackets(s)); err == nil {
		return netip.AddrPortFrom(ip, DefaultPort), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rdma: address %q: %w", s, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rdma: address %q: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rdma: address %q: bad port", s)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

func trimBrackets(s string) string {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}
