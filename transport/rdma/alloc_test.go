package rdma_test

import (
	"context"
	"testing"
	"time"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/rdma"
	"github.com/srptgt/srptgt/transport/rdma/fakeverbs"
)

// The per-command path of a channel allocates nothing in steady state:
// receive and decode an SRP_CMD, RDMA READ its data-out, RDMA WRITE its
// data-in, send the SRP_RSP (and, on the initiator end, send and receive).
func TestChannelDataPathAllocs(t *testing.T) {
	fab := fakeverbs.New()
	defer fab.Close()
	fab.AddDevice("rxe0", targetGUID, targetIP)
	tr, err := rdma.New(rdma.Config{Provider: fab, ArenaSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	l, err := tr.Listen(targetAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, rdma.DialConfig{Dst: targetAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	accepted := make(chan *rdma.Channel, 1)
	go func() {
		ch, err := l.Accept(ctx)
		if err != nil {
			return
		}
		c := ch.(*rdma.Channel)
		c.Accept(&srp.LoginRsp{ReqLimDelta: 16, MaxITIULen: 1024, MaxTIIULen: 256})
		accepted <- c
	}()
	if _, _, err := conn.Login(ctx, &srp.LoginReq{MaxITIULen: 1024, TargetPortID: targetPort}); err != nil {
		t.Fatal(err)
	}
	ch := <-accepted
	defer ch.Close(nil)

	in := make([]byte, 8192)
	d, err := conn.Register(in, true)
	if err != nil {
		t.Fatal(err)
	}
	descs := []srp.MemDesc{{Addr: d.Addr, Key: d.Key, Len: 4096}, {Addr: d.Addr + 4096, Key: d.Key, Len: 4096}}
	cmd := srp.Cmd{Tag: 7, CDB: make([]byte, 16), In: srp.BufDesc{Format: srp.BufDirect, Direct: d}}
	raw := make([]byte, cmd.Len())
	if _, err := cmd.Encode(raw); err != nil {
		t.Fatal(err)
	}
	buf, err := ch.Alloc(8192)
	if err != nil {
		t.Fatal(err)
	}
	var iu srp.IU
	iu.Cmd.DescBuf = make([]srp.MemDesc, 0, 16)
	rsp := srp.IU{Op: srp.OpRsp, Rsp: srp.Rsp{Tag: 7, Status: 0, ReqLimDelta: 1}}
	step := func() {
		if err := conn.Send(raw); err != nil {
			t.Fatal(err)
		}
		if err := ch.Recv(&iu); err != nil || iu.Op != srp.OpCmd {
			t.Fatalf("recv: %v %v", err, iu.Op)
		}
		if err := ch.ReadData(buf, descs); err != nil {
			t.Fatal(err)
		}
		if err := ch.WriteData(buf, descs); err != nil {
			t.Fatal(err)
		}
		if err := ch.Send(&rsp); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ { // warm up: slices reach their sizes
		step()
	}
	if n := testing.AllocsPerRun(300, step); n != 0 {
		t.Fatalf("%v allocations per command", n)
	}
	ch.Free(buf)
}
