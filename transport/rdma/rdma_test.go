package rdma_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
	"github.com/srptgt/srptgt/transport/rdma"
	"github.com/srptgt/srptgt/transport/rdma/fakeverbs"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Every descriptor shape the session accepts moves data both ways: direct,
// indirect with the whole table in the IU, indirect with only part of it
// (the table fetched by RDMA READ, which LIO and SCST refuse), with and
// without SRP-2 immediate data.
func TestDataPathDescriptorModes(t *testing.T) {
	e := newEnv(t, envOpt{})
	modes := []struct {
		name string
		cfg  initiator.Config
	}{
		{"direct", initiator.Config{Mode: initiator.Direct}},
		{"direct+imm", initiator.Config{Mode: initiator.Direct, ImmData: true}},
		{"indirect", initiator.Config{Mode: initiator.Indirect, Segments: 5}},
		{"indirect-partial", initiator.Config{Mode: initiator.IndirectPartial, Segments: 9, InIU: 2}},
		{"indirect-partial-none-in-iu", initiator.Config{Mode: initiator.IndirectPartial, Segments: 6, InIU: 0}},
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.cfg.InitiatorPortID = initiatorID(byte(10 + i))
			in := e.mustDial(m.cfg)
			if m.cfg.ImmData && !in.ImmData() {
				t.Fatal("immediate data not negotiated")
			}
			c := client(in, 0)
			if err := c.ClearUA(); err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 8, 16, 128} {
				lba := uint64(i*512 + n)
				data := pattern(n*512, uint64(n+i))
				if err := c.Write(lba, data, 512); err != nil {
					t.Fatalf("write %d blocks: %v", n, err)
				}
				got, err := c.Read(lba, uint32(n), 512)
				if err != nil {
					t.Fatalf("read %d blocks: %v", n, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("read back %d blocks differs", n)
				}
			}
		})
	}
}

// The Linux ib_srp login seen on the wire in the VM (vm-rdma.md): 56 bytes
// of CM private data. The listener decodes it, the session accepts, and
// the accept private data is the 52-byte SRP_LOGIN_RSP.
func TestLinuxLoginPrivateData(t *testing.T) {
	e := newEnv(t, envOpt{})
	wire := []byte{
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x80, 0x00, 0x00, 0x00, 0x20, 0x44,
		0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01,
		0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	}
	ev, id := rawConnect(t, e, wire, 4, 4)
	defer id.Destroy()
	if ev.Type != provider.EventEstablished {
		t.Fatalf("got %v (status %d), want ESTABLISHED", ev.Type, ev.Status)
	}
	var rsp srp.LoginRsp
	if err := rsp.Decode(ev.Param.PrivateData); err != nil {
		t.Fatalf("accept private data: %v", err)
	}
	if rsp.MaxITIULen != 8260 || rsp.ReqLimDelta != 128 || rsp.Flags&srp.LoginRspFlagImmData == 0 || rsp.MaxTIIULen != 256 {
		t.Fatalf("login response %+v", rsp)
	}
	// The passive side saw initiator depth 4 (the initiator's responder
	// resources) and answers with it.
	if ev.Param.ResponderResources != 4 {
		t.Fatalf("accept initiator depth %d, want 4", ev.Param.ResponderResources)
	}
}

// rawConnect connects with private data pd and returns the answer event.
func rawConnect(t *testing.T, e *env, pd []byte, rr, depth uint8) (provider.Event, provider.ID) {
	t.Helper()
	ec, err := e.fab.NewEventChannel()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ec.CreateID()
	id.ResolveAddr(initIP, targetAddr, time.Second)
	next(t, ec, provider.EventAddrResolved)
	id.ResolveRoute(time.Second)
	next(t, ec, provider.EventRouteResolved)
	pdom, _ := id.Device().AllocPD()
	cq, _ := id.Device().CreateCQ(64)
	qp, err := id.CreateQP(pdom, cq, provider.QPCap{MaxSendWR: 16, MaxRecvWR: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Connect(&provider.ConnParam{PrivateData: pd, ResponderResources: rr, InitiatorDepth: depth, RetryCount: 7, RNRRetryCount: 7}); err != nil {
		t.Fatal(err)
	}
	ev, err := ec.Next(time.Now().Add(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		qp.Close()
		id.Destroy()
		cq.Close()
		ec.Close()
	})
	return ev, id
}

func next(t *testing.T, ec provider.EventChannel, want provider.EventType) provider.Event {
	t.Helper()
	ev, err := ec.Next(time.Now().Add(5 * time.Second))
	if err != nil || ev.Type != want {
		t.Fatalf("event %v %v, want %v", ev.Type, err, want)
	}
	return ev
}

// Rejections travel as SRP_LOGIN_REJ in the CM reject private data with
// reason IB_CM_REJ_CONSUMER_DEFINED, which is what Linux ib_srp decodes.
// Reference: SRP r16a 6.4 table 8.
func TestLoginRejectsOverCM(t *testing.T) {
	deny := initiatorID(66)
	e := newEnv(t, envOpt{access: func(id scsi.NexusID, port *scsi.Port) ([]scsi.Mapping, error) {
		if id.Initiator == scsi.PortID(deny) {
			return nil, scsi.ErrAccessDenied
		}
		var m []scsi.Mapping
		return m, nil
	}})
	base := srp.LoginReq{Tag: 0x55, MaxITIULen: 8260, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect,
		InitiatorPortID: initiatorID(3), TargetPortID: targetPort}
	cases := []struct {
		name   string
		mutate func(*srp.LoginReq)
		reason uint32
	}{
		{"IU length too small", func(r *srp.LoginReq) { r.MaxITIULen = 60 }, srp.RejUnableToEstablish},
		{"IU length too large", func(r *srp.LoginReq) { r.MaxITIULen = 1 << 20 }, srp.RejITIULenTooLarge},
		{"bad target port ID", func(r *srp.LoginReq) { r.TargetPortID[15] ^= 0x40 }, srp.RejUnableToAssociate},
		{"initiator not in the ACL", func(r *srp.LoginReq) { r.InitiatorPortID = deny }, srp.RejUnableToEstablish},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			tc.mutate(&req)
			var pd [srp.LoginReqRDMALen]byte
			req.EncodeRDMA(pd[:])
			ev, _ := rawConnect(t, e, pd[:], 4, 4)
			if ev.Type != provider.EventRejected || ev.Status != provider.RejectConsumerDefined {
				t.Fatalf("got %v status %d, want REJECTED status 28", ev.Type, ev.Status)
			}
			var rej srp.LoginRej
			if err := rej.Decode(ev.Param.PrivateData); err != nil {
				t.Fatalf("reject private data: %v", err)
			}
			if rej.Reason != tc.reason || rej.Tag != 0x55 {
				t.Fatalf("reject %+v, want reason %#x", rej, tc.reason)
			}
		})
	}
	t.Run("undecodable private data", func(t *testing.T) {
		ev, _ := rawConnect(t, e, bytes.Repeat([]byte{0xff}, 56), 4, 4)
		var rej srp.LoginRej
		if ev.Type != provider.EventRejected || rej.Decode(ev.Param.PrivateData) != nil || rej.Reason != srp.RejUnableToEstablish {
			t.Fatalf("got %v %x", ev.Type, ev.Param.PrivateData)
		}
	})
	// The Go initiator reports the reason too.
	_, err := e.dial(initiator.Config{TargetPortID: [16]byte{1}})
	if rejectReason(err) != srp.RejUnableToAssociate {
		t.Fatalf("dial with a wrong port ID: %v", err)
	}
	waitFor(t, "rejected channels torn down", func() bool { return e.fab.Stats().Errors == 0 && len(e.fab.QPs()) == 0 })
}

// The 64-byte SRP_LOGIN_REQ IU form is accepted where the CM carries
// private data as sent (iWARP).
func TestLogin64ByteForm(t *testing.T) {
	e := newEnv(t, envOpt{setup: func(f *fakeverbs.Fabric, _, _ *fakeverbs.Device) { f.NoPad = true }})
	req := srp.LoginReq{Tag: 9, MaxITIULen: 4096, BufFmt: srp.BufFmtDirect, InitiatorPortID: initiatorID(4), TargetPortID: targetPort}
	var b [srp.LoginReqLen]byte
	req.Encode(b[:])
	ev, _ := rawConnect(t, e, b[:], 4, 4)
	var rsp srp.LoginRsp
	if ev.Type != provider.EventEstablished || rsp.Decode(ev.Param.PrivateData) != nil || rsp.Tag != 9 || rsp.MaxITIULen != 4096 {
		t.Fatalf("got %v %x", ev.Type, ev.Param.PrivateData)
	}
}

// RDMA READs never exceed the depth the initiator offered (its responder
// resources, as the passive side sees them) nor the device's limit, and
// descriptors larger than the port's largest message are split.
func TestReadDepthAndSplitting(t *testing.T) {
	e := newEnv(t, envOpt{setup: func(f *fakeverbs.Fabric, tdev, _ *fakeverbs.Device) {
		f.Latency = 200 * time.Microsecond
		tdev.SetMaxQPInitRdAtom(3)
		tdev.SetMaxMsgSize(4096)
	}})
	in := e.mustDial(initiator.Config{Mode: initiator.IndirectPartial, Segments: 16, InIU: 1})
	c := client(in, 0)
	c.ClearUA()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := pattern(256<<10, uint64(g))
			lba := uint64(g * 1024)
			if err := c.Write(lba, data, 512); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			got, err := c.Read(lba, uint32(len(data)/512), 512)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read back: %v", err)
			}
		}()
	}
	wg.Wait()
	st := e.fab.Stats()
	if st.ReadDepthExceeded != 0 || st.MaxReadsOutstanding > 3 {
		t.Fatalf("RDMA READs outstanding: max %d (limit 3), %d posts over the connected depth", st.MaxReadsOutstanding, st.ReadDepthExceeded)
	}
	if st.MaxReadsOutstanding < 2 {
		t.Fatalf("RDMA READs never overlapped (max %d outstanding)", st.MaxReadsOutstanding)
	}
	// 256 KiB in 4 KiB messages, four times over, plus the tables
	if st.Reads < 4*64 || st.Writes < 4*64 {
		t.Fatalf("reads %d writes %d: descriptors were not split at the 4 KiB message size", st.Reads, st.Writes)
	}
}

// Registered memory is reused: commands register nothing.
func TestNoRegistrationPerCommand(t *testing.T) {
	e := newEnv(t, envOpt{})
	in := e.mustDial(initiator.Config{Mode: initiator.Indirect, ImmData: true})
	c := client(in, 0)
	c.ClearUA()
	before := e.fab.Stats().Registrations
	for i := 0; i < 200; i++ {
		if _, err := c.Read(uint64(i), 8, 512); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(uint64(i), make([]byte, 64<<10), 512); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fab.Stats().Registrations - before; n != 0 {
		t.Fatalf("%d memory registrations for 400 commands", n)
	}
}

// Linux ib_srp opens one channel per CPU (ch_count): the first with the
// single-channel action, the rest maintained alongside.
func TestMultichannel(t *testing.T) {
	e := newEnv(t, envOpt{})
	a := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(5), MultiChannel: srp.MultiChanSingle})
	b := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(5), MultiChannel: srp.MultiChanMulti})
	if r := b.LoginResponse().MultiChannel; r != srp.MultiChanMaintained {
		t.Fatalf("multi-channel result %d, want maintained", r)
	}
	if n := e.srv.Channels(); n != 2 {
		t.Fatalf("%d channels, want 2", n)
	}
	for i, in := range []*initiator.Initiator{a, b} {
		c := client(in, 0)
		c.ClearUA()
		data := pattern(4096, uint64(i))
		if err := c.Write(uint64(100+i*8), data, 512); err != nil {
			t.Fatal(err)
		}
	}
	// each channel reads what the other wrote
	for i, in := range []*initiator.Initiator{b, a} {
		got, err := client(in, 0).Read(uint64(100+i*8), 8, 512)
		if err != nil || !bytes.Equal(got, pattern(4096, uint64(i))) {
			t.Fatalf("channel %d: %v", i, err)
		}
	}
}

// Many commands in flight on one channel, random sizes, verified.
func TestConcurrentVerified(t *testing.T) {
	e := newEnv(t, envOpt{luSize: 16 << 20})
	in := e.mustDial(initiator.Config{ImmData: true, Mode: initiator.Direct})
	c := client(in, 0)
	c.ClearUA()
	const workers = 32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			region := uint64(w) * 1024 // 512 KiB per worker
			for i := 0; i < 40; i++ {
				n := 1 + r.IntN(64)
				lba := region + uint64(r.IntN(1024-n))
				data := pattern(n*512, r.Uint64())
				if err := c.Write(lba, data, 512); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				got, err := c.Read(lba, uint32(n), 512)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("read back: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if in.ReqLim() <= 0 {
		t.Fatalf("request limit %d after the run", in.ReqLim())
	}
}

// A disconnect request from the initiator (DREQ) ends the channel; the
// session detaches it and the initiator logs in again on a new channel.
func TestDisconnectAndRelogin(t *testing.T) {
	e := newEnv(t, envOpt{})
	in := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(8)})
	client(in, 0).ClearUA()
	for _, q := range e.fab.QPs() {
		e.fab.Disconnect(q)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("initiator did not see the disconnect")
	}
	waitFor(t, "session to drop the channel", func() bool { return e.srv.Channels() == 0 })
	in2 := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(8)})
	c := client(in2, 0)
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(0, 1, 512); err != nil {
		t.Fatal(err)
	}
}

// A work request failing (here an RDMA WRITE completing with a remote
// access error, as a bad rkey from the initiator would) moves the queue
// pair to the error state: the channel ends, its resources are released,
// and other channels and new logins carry on.
func TestQPErrorRecovery(t *testing.T) {
	var fail sync.Mutex
	failWrites := false
	e := newEnv(t, envOpt{setup: func(f *fakeverbs.Fabric, _, _ *fakeverbs.Device) {
		f.Fault = func(qp uint32, wr provider.SendWR) provider.WCStatus {
			fail.Lock()
			defer fail.Unlock()
			if failWrites && wr.Op == provider.OpWrite {
				return provider.WCRemAccessErr
			}
			return provider.WCSuccess
		}
	}})
	other := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(20)})
	client(other, 0).ClearUA()
	victim := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(21)})
	client(victim, 0).ClearUA()
	fail.Lock()
	failWrites = true
	fail.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := victim.Do(ctx, &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RW16(0x88, 0, 0, 8), InLen: 4096})
	if err == nil {
		t.Fatal("read through a failing RDMA WRITE succeeded")
	}
	fail.Lock()
	failWrites = false
	fail.Unlock()
	select {
	case <-victim.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("channel with a failed queue pair stayed up")
	}
	// The other initiator was only stopped while the fault was armed.
	waitFor(t, "one channel left", func() bool { return e.srv.Channels() <= 1 })
	again := e.mustDial(initiator.Config{InitiatorPortID: initiatorID(21)})
	if err := client(again, 0).ClearUA(); err != nil {
		t.Fatal(err)
	}
}

// Session shutdown sends SRP_T_LOGOUT before the channel disconnects: the
// teardown lets posted sends go out first.
func TestShutdownSendsLogout(t *testing.T) {
	e := newEnv(t, envOpt{})
	in := e.mustDial(initiator.Config{})
	client(in, 0).ClearUA()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("initiator not logged out")
	}
	if in.TargetLogout() == nil {
		t.Fatalf("no SRP_T_LOGOUT before the disconnect (%v)", in.Err())
	}
}

// Listener.Close refuses new logins and tears every channel down.
func TestListenerClose(t *testing.T) {
	e := newEnv(t, envOpt{})
	in := e.mustDial(initiator.Config{})
	client(in, 0).ClearUA()
	if err := e.l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("channel survived the listener")
	}
	if _, err := e.l.Accept(context.Background()); !errors.Is(err, transport.ErrListenerClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := e.tr.Dial(ctx, rdma.DialConfig{Dst: targetAddr, Src: initIP})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	// nobody listens: the CM rejects with no SRP_LOGIN_REJ
	_, rej, err := c.Login(ctx, &srp.LoginReq{MaxITIULen: 1024, TargetPortID: targetPort})
	if !errors.Is(err, transport.ErrRejected) || rej != nil {
		t.Fatalf("login with no listener: %v %+v", err, rej)
	}
}

func TestDefaultPortIDFromGID(t *testing.T) {
	e := newEnv(t, envOpt{})
	id, err := e.l.DefaultPortID()
	if err != nil {
		t.Fatal(err)
	}
	// vm-rdma.md: MAC 02:00:00:00:00:01 -> add_target
	// id_ext=000000fffe000001,ioc_guid=000000fffe000001
	if got := rdma.FormatPortID(id); got != "id_ext=000000fffe000001,ioc_guid=000000fffe000001" {
		t.Fatalf("port ID %s", got)
	}
	if e.l.Device() != "rxe_dum0" {
		t.Fatalf("device %q", e.l.Device())
	}
}

func TestParsePortID(t *testing.T) {
	want := rdma.PortIDFromGUID(targetGUID)
	for _, s := range []string{
		"000000fffe000001000000fffe000001",
		"0x000000fffe000001,0x000000fffe000001",
		"0000:00ff:fe00:0001:0000:00ff:fe00:0001",
		" 000000FFFE000001000000FFFE000001 ",
	} {
		got, err := rdma.ParsePortID(s)
		if err != nil || got != want {
			t.Errorf("ParsePortID(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "xyz", "000000fffe000001", "000000fffe000001000000fffe00000100"} {
		if _, err := rdma.ParsePortID(s); err == nil {
			t.Errorf("ParsePortID(%q) accepted", s)
		}
	}
}

func TestParseAddr(t *testing.T) {
	for s, want := range map[string]string{
		"169.254.10.1":          "169.254.10.1:5000",
		"169.254.10.1:4420":     "169.254.10.1:4420",
		"[fe80::1%dum0]:5000":   "[fe80::1%dum0]:5000",
		"fe80::1":               "[fe80::1]:5000",
		"[::]":                  "[::]:5000",
		"0.0.0.0:5001":          "0.0.0.0:5001",
		"[2001:db8::7]:1234":    "[2001:db8::7]:1234",
		"2001:db8::7":           "[2001:db8::7]:5000",
		"[2001:db8::7]":         "[2001:db8::7]:5000",
		"169.254.10.1:5000 ":    "",
		"host.example.com:5000": "",
	} {
		got, err := rdma.ParseAddr(s)
		if want == "" {
			if err == nil {
				t.Errorf("ParseAddr(%q) = %v, want an error", s, got)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", s, got, err, want)
		}
	}
}

// IPv6 listeners work the same.
func TestIPv6(t *testing.T) {
	fab := fakeverbs.New()
	defer fab.Close()
	v6 := netip.MustParseAddr("fd00::1")
	fab.AddDevice("rxe6", 0x1234, v6)
	tr, err := rdma.New(rdma.Config{Provider: fab, ArenaSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	l, err := tr.Listen(netip.AddrPortFrom(v6, 5000))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, rdma.DialConfig{Dst: netip.AddrPortFrom(v6, 5000)})
	if err != nil {
		t.Fatal(err)
	}
	req := srp.LoginReq{MaxITIULen: 1024, InitiatorPortID: initiatorID(1)}
	go func() {
		ch, err := l.Accept(ctx)
		if err != nil {
			return
		}
		ch.Reject(&srp.LoginRej{Tag: 0, Reason: srp.RejChannelLimit})
	}()
	_, rej, err := c.Login(ctx, &req)
	if !errors.Is(err, transport.ErrRejected) || rej == nil || rej.Reason != srp.RejChannelLimit {
		t.Fatalf("login: %v %+v", err, rej)
	}
	c.Close()
}

func TestNotBuiltInMessage(t *testing.T) {
	if rdma.BuiltIn {
		t.Skip("cgo build")
	}
	if _, err := rdma.New(rdma.Config{}); !errors.Is(err, rdma.ErrNotBuiltIn) || err.Error() != "RDMA transport not built in (CGO_ENABLED=0)" {
		t.Fatalf("New without cgo: %v", err)
	}
}

func ExampleFormatPortID() {
	fmt.Println(rdma.FormatPortID(rdma.PortIDFromGUID(0x000000fffe000001)))
	// Output: id_ext=000000fffe000001,ioc_guid=000000fffe000001
}

func TestWriteDevices(t *testing.T) {
	var b bytes.Buffer
	rdma.WriteDevices(&b, nil)
	if !bytes.Contains(b.Bytes(), []byte("no RDMA devices")) {
		t.Fatalf("%s", b.String())
	}
	b.Reset()
	rdma.WriteDevices(&b, []rdma.DeviceInfo{{Name: "rxe_dum0", NodeGUID: "0000:00ff:fe00:0001",
		Ports: []rdma.PortInfo{{Num: 1, State: "ACTIVE", LinkLayer: "Ethernet", PortID: targetPort,
			GIDs: []rdma.GIDInfo{{Index: 0, GID: "fe80:0000:0000:0000:0000:00ff:fe00:0001", Type: "RoCE v2", Netdev: "dum0", Addrs: []string{"169.254.10.1/16"}}}}}}})
	want := `rxe_dum0  node_guid 0000:00ff:fe00:0001
  port 1: ACTIVE, Ethernet
    gid 0   fe80:0000:0000:0000:0000:00ff:fe00:0001  RoCE v2    dum0
    netdev dum0: 169.254.10.1/16
    SRP target port: id_ext=000000fffe000001,ioc_guid=000000fffe000001
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	// On a machine without RDMA devices, Devices lists none.
	if _, err := rdma.Devices(); err != nil {
		t.Fatal(err)
	}
}
