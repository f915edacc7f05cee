package srp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/scsi"
)

// Config configures the session layer.
type Config struct {
	// Target executes the commands.
	Target *scsi.Target
	// Logger receives login, logout and protocol violation events.
	Logger *zap.Logger
	// Credits caps the request limit granted per channel; the channel's own
	// capacity caps it too. Zero means 128.
	Credits int
	// MaxTransfer caps one command's data buffer in bytes. Zero means
	// 16 MiB.
	MaxTransfer int
	// MaxIndirect caps the descriptors of an indirect table fetched from
	// initiator memory. Zero means 4096.
	MaxIndirect int
}

// Server is the one SRP session layer both transports feed: it validates
// logins, keeps one I_T nexus per (initiator port, target port) shared by
// the nexus's channels, accounts credits, and runs commands and task
// management functions through the SCSI target.
type Server struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	nexuses  map[scsi.NexusID]*nexus
	channels map[*channel]struct{}
	closing  bool
	wg       sync.WaitGroup
}

// NewServer returns a session layer over cfg.Target.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Credits <= 0 {
		cfg.Credits = 128
	}
	if cfg.MaxTransfer <= 0 {
		cfg.MaxTransfer = 16 << 20
	}
	if cfg.MaxIndirect <= 0 {
		cfg.MaxIndirect = 4096
	}
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		nexuses:  make(map[scsi.NexusID]*nexus),
		channels: make(map[*channel]struct{}),
	}
}

// nexus is the session-level half of an I_T nexus: its channels and the
// tags of its outstanding tasks, which must be unique across channels.
type nexus struct {
	id    scsi.NexusID
	sn    *scsi.Nexus
	chans map[*channel]struct{}
	// gone is closed once the nexus is detached from the target.
	gone chan struct{}
	dead bool

	tmu  sync.Mutex
	tags map[uint64]*slot
}

// Minimum IU length an initiator may ask for: an SRP_CMD with one direct
// descriptor (SRP r16a 6.8: 48 bytes of header and CDB, 16 of descriptor).
const minITIULen = 64

// LoginError is a refused login: the SRP_LOGIN_REJ reason and why.
type LoginError struct {
	Reason uint32
	Why    string
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("srp: login rejected (reason %#08x): %s", e.Reason, e.Why)
}

// Serve runs one channel of target port port: it answers the login, then
// serves IUs until the channel closes, the initiator logs out or the server
// shuts down. It returns the reason the channel ended (a *LoginError if the
// login was refused).
func (s *Server) Serve(ch Channel, port *scsi.Port) error {
	c, err := s.login(ch, port)
	if err != nil {
		return err
	}
	err = c.run()
	s.closeChannel(c, err)
	return err
}

func (s *Server) reject(ch Channel, req *LoginReq, reason uint32, why string) error {
	err := &LoginError{Reason: reason, Why: why}
	s.log.Warn("login rejected",
		zap.String("initiator", fmt.Sprintf("%x", req.InitiatorPortID)),
		zap.String("target", fmt.Sprintf("%x", req.TargetPortID)),
		zap.Uint32("reason", reason), zap.String("why", why))
	rej := &LoginRej{Tag: req.Tag, Reason: reason, BufFmt: BufFmtDirect | BufFmtIndirect}
	if rerr := ch.Reject(rej); rerr != nil {
		s.log.Debug("sending login reject failed", zap.Error(rerr))
	}
	return err
}

// login validates the SRP_LOGIN_REQ (SRP r16a 6.2, 5.4), attaches the
// channel to its I_T nexus and answers SRP_LOGIN_RSP or SRP_LOGIN_REJ.
func (s *Server) login(ch Channel, port *scsi.Port) (*channel, error) {
	req := ch.LoginRequest()
	lim := ch.Limits()
	switch {
	case req.TargetPortID != [16]byte(port.ID):
		return nil, s.reject(ch, req, RejUnableToAssociate,
			fmt.Sprintf("target port identifier %x is not this port (%x)", req.TargetPortID, port.ID))
	case req.MaxITIULen < minITIULen:
		return nil, s.reject(ch, req, RejUnableToEstablish,
			fmt.Sprintf("requested maximum initiator to target IU length %d is below %d", req.MaxITIULen, minITIULen))
	case int64(req.MaxITIULen) > int64(lim.MaxITIU):
		return nil, s.reject(ch, req, RejITIULenTooLarge,
			fmt.Sprintf("requested maximum initiator to target IU length %d exceeds %d", req.MaxITIULen, lim.MaxITIU))
	case req.BufFmt&^(BufFmtDirect|BufFmtIndirect) != 0:
		return nil, s.reject(ch, req, RejBufFmtUnsupported,
			fmt.Sprintf("required buffer formats %#04x include unsupported ones", req.BufFmt))
	case req.MultiChannel > MultiChanMulti:
		return nil, s.reject(ch, req, RejUnableToEstablish,
			fmt.Sprintf("reserved multi-channel action %d", req.MultiChannel))
	}
	immOff := uint16(0)
	if req.Flags&LoginFlagImmData != 0 && lim.ImmData &&
		req.ImmDataOffset >= CmdMinLen && uint32(req.ImmDataOffset) < req.MaxITIULen {
		immOff = req.ImmDataOffset
	}
	credits := s.cfg.Credits
	if lim.Credits < credits {
		credits = lim.Credits
	}
	if credits < 2 {
		return nil, s.reject(ch, req, RejInsufficientResources, "the channel holds fewer than two requests")
	}

	id := scsi.NexusID{Initiator: scsi.PortID(req.InitiatorPortID), Target: port.ID}
	c := newChannel(s, ch, port, credits, immOff)

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, s.reject(ch, req, RejUnableToEstablish, "the target is shutting down")
	}
	// A nexus being torn down must finish before a new one with the same
	// identity starts.
	for {
		nx := s.nexuses[id]
		if nx == nil || !nx.dead {
			break
		}
		s.mu.Unlock()
		<-nx.gone
		s.mu.Lock()
	}
	nx := s.nexuses[id]
	result := MultiChanNoExisting
	var terminate []*channel
	if nx == nil {
		sn, err := s.cfg.Target.Attach(id, port)
		if err != nil {
			s.mu.Unlock()
			if errors.Is(err, scsi.ErrAccessDenied) {
				return nil, s.reject(ch, req, RejUnableToEstablish, "initiator not allowed by the access list")
			}
			return nil, s.reject(ch, req, RejUnableToEstablish, err.Error())
		}
		nx = &nexus{id: id, sn: sn, chans: make(map[*channel]struct{}), gone: make(chan struct{}), tags: make(map[uint64]*slot)}
		s.nexuses[id] = nx
	} else if len(nx.chans) > 0 {
		// A channel joining a nexus is a login too: the access list may
		// have changed since the nexus attached (the initiator is being
		// logged out).
		if err := s.cfg.Target.CheckAccess(id, port); errors.Is(err, scsi.ErrAccessDenied) {
			s.mu.Unlock()
			return nil, s.reject(ch, req, RejUnableToEstablish, "initiator not allowed by the access list")
		}
		if req.MultiChannel == MultiChanSingle {
			result = MultiChanTerminated
			for o := range nx.chans {
				terminate = append(terminate, o)
			}
		} else {
			result = MultiChanMaintained
		}
	}
	c.nx = nx
	nx.chans[c] = struct{}{}
	s.channels[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	rsp := &LoginRsp{
		Tag:          req.Tag,
		ReqLimDelta:  int32(credits),
		MaxITIULen:   req.MaxITIULen,
		MaxTIIULen:   uint32(lim.MaxTIIU),
		BufFmt:       BufFmtDirect | BufFmtIndirect,
		MultiChannel: result,
	}
	if immOff != 0 {
		rsp.Flags |= LoginRspFlagImmData
	}
	c.granted.Store(int64(credits))
	if err := ch.Accept(rsp); err != nil {
		s.closeChannel(c, err)
		return nil, fmt.Errorf("srp: sending login response: %w", err)
	}
	for _, o := range terminate {
		o.logout(TLogoutMultiChannelAction, errors.New("terminated by a single-channel login of the same I_T nexus"))
	}
	s.log.Info("login",
		zap.String("initiator", fmt.Sprintf("%x", req.InitiatorPortID)),
		zap.String("target", fmt.Sprintf("%x", req.TargetPortID)),
		zap.Int("credits", credits), zap.Uint32("max_it_iu", req.MaxITIULen),
		zap.Bool("immediate_data", immOff != 0), zap.Uint8("multichannel_result", result))
	return c, nil
}

// closeChannel takes a finished channel out of its nexus; the last channel
// of a nexus ends the nexus (SAM-5 I_T nexus loss: its tasks are aborted).
func (s *Server) closeChannel(c *channel, reason error) {
	c.shutdown(reason)
	c.cleanup()
	if r, ok := c.ch.(Releaser); ok {
		r.Released()
	}
	s.mu.Lock()
	if _, ok := s.channels[c]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.channels, c)
	nx := c.nx
	delete(nx.chans, c)
	last := len(nx.chans) == 0 && !nx.dead
	if last {
		nx.dead = true
	}
	s.mu.Unlock()
	if last {
		s.cfg.Target.Detach(nx.sn)
		s.mu.Lock()
		if s.nexuses[nx.id] == nx {
			delete(s.nexuses, nx.id)
		}
		s.mu.Unlock()
		close(nx.gone)
		s.log.Info("I_T nexus ended", zap.String("initiator", fmt.Sprintf("%x", nx.id.Initiator)))
	}
	s.wg.Done()
}

// Shutdown stops the session layer: new logins are refused, every channel
// stops taking commands, finishes the ones it has, sends SRP_T_LOGOUT and
// closes. If ctx ends first, the remaining channels are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	chans := make([]*channel, 0, len(s.channels))
	for c := range s.channels {
		chans = append(chans, c)
	}
	s.mu.Unlock()
	for _, c := range chans {
		go c.drain(ctx)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range chans {
			c.shutdown(ctx.Err())
		}
		<-done
		return ctx.Err()
	}
}

// LogoutInitiator ends every channel of the initiator port with
// SRP_T_LOGOUT (after an access list change took its access away).
func (s *Server) LogoutInitiator(id scsi.PortID) {
	s.mu.Lock()
	var chans []*channel
	for c := range s.channels {
		if c.nx.id.Initiator == id {
			chans = append(chans, c)
		}
	}
	s.mu.Unlock()
	for _, c := range chans {
		c.logout(TLogoutNoReason, errors.New("access withdrawn"))
	}
}

// Channels returns how many channels are logged in.
func (s *Server) Channels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.channels)
}
