package frontend_test

// In-process benchmarks of both rings at full ring depth on a null LU,
// driven by lean drivers that allocate nothing per command, so that
// allocs/op is the target side's (transport, session, SCSI). The
// cross-process numbers come from srptgt bench (docs/performance.md).

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/srpring"
)

const nulLUN = 2

func BenchmarkVSCSIRead4K(b *testing.B) {
	e := newEnv(b, "g1")
	f, err := frontend.DialVSCSI(ctxT(b), e.guest("g1"), frontend.VSCSIConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lun := scsi.EncodeLUN(nulLUN)
	clearUA(b, f, nulLUN)
	const depth = 16
	reqs := make([]frontend.Request, depth)
	ins := make([][]byte, depth)
	for i := range reqs {
		reqs[i] = frontend.Request{LUN: lun, CDB: scsitest.RW16(0x88, 0, uint64(i)*8, 8), InLen: 4096}
		ins[i] = make([]byte, 0, 4096)
	}
	var q [depth]frontend.Pending
	var res frontend.Result
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	sent, done := 0, 0
	for ; sent < depth && sent < b.N; sent++ {
		if q[sent], err = f.Submit(ctx, &reqs[sent]); err != nil {
			b.Fatal(err)
		}
	}
	for done < b.N {
		i := done % depth
		if ins[i], err = q[i].Wait(ctx, &res, ins[i]); err != nil || res.Rslt != 0 {
			b.Fatalf("%v rslt %#x", err, res.Rslt)
		}
		done++
		if sent < b.N {
			if q[i], err = f.Submit(ctx, &reqs[i]); err != nil {
				b.Fatal(err)
			}
			sent++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
}

func BenchmarkSRPRingRead4K(b *testing.B) {
	e := newEnv(b, "g1")
	g := e.guest("g1")
	conn, err := frontend.DialSRP(ctxT(b), g, frontend.SRPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rsp, _, err := conn.Login(ctxT(b), &srp.LoginReq{Tag: 1, MaxITIULen: uint32(conn.MaxIU()),
		BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect, InitiatorPortID: conn.InitiatorPortID(), TargetPortID: conn.TargetPortID()})
	if err != nil {
		b.Fatal(err)
	}
	depth := int(rsp.ReqLimDelta)
	cmds := make([][]byte, depth)
	for i := range cmds {
		fr, _, err := g.AllocPages(1)
		if err != nil {
			b.Fatal(err)
		}
		ref, _ := g.AllocRef()
		g.Grant(ref, 0, fr, false)
		iu := srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: uint64(i), LUN: scsi.EncodeLUN(nulLUN), CDB: scsitest.RW16(0x88, 0, uint64(i)*8, 8),
			In: srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Addr: 0, Key: uint32(ref), Len: 4096}}}}
		cmds[i] = make([]byte, iu.Len())
		if _, err := iu.Encode(cmds[i]); err != nil {
			b.Fatal(err)
		}
	}
	var iu srp.IU
	roundTrip := func(i int) (uint64, uint8) {
		if err := conn.Send(cmds[i]); err != nil {
			b.Fatal(err)
		}
		return 0, 0
	}
	_ = roundTrip
	// the new nexus's unit attentions
	for i := 0; i < 4; i++ {
		conn.Send(cmds[0])
		r, err := conn.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if err := iu.DecodeFromTarget(r); err != nil || iu.Op != srp.OpRsp {
			b.Fatalf("%v %v", err, iu.Op)
		}
		if iu.Rsp.Status == 0 {
			break
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent, done := 0, 0
	for ; sent < depth && sent < b.N; sent++ {
		if err := conn.Send(cmds[sent]); err != nil {
			b.Fatal(err)
		}
	}
	for done < b.N {
		r, err := conn.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if r[0] != byte(srp.OpRsp) {
			continue // SRP_CRED_REQ: the credits ride on responses here
		}
		tag := binary.BigEndian.Uint64(r[8:16])
		if st := r[19]; st != 0 || tag >= uint64(depth) {
			b.Fatalf("tag %d status %#x", tag, st)
		}
		done++
		if sent < b.N {
			if err := conn.Send(cmds[tag]); err != nil {
				b.Fatal(err)
			}
			sent++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
}

var _ = srpring.SlotHeader

// BenchmarkSRPRingInitiator4K drives the ring with the Go SRP initiator
// (what srptgt bench --ring srp uses) from 63 goroutines.
func BenchmarkSRPRingInitiator4K(b *testing.B) {
	e := newEnv(b, "g1")
	_, in := e.loginSRP(e.guest("g1"), initiator.Config{Mode: initiator.Direct})
	clearUA(b, in, nulLUN)
	b.SetParallelism(63)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &scsitest.Request{LUN: scsi.EncodeLUN(nulLUN), CDB: scsitest.RW16(0x88, 0, 0, 8), InLen: 4096}
		for pb.Next() {
			r, err := in.Do(context.Background(), req)
			if err != nil || r.Status != 0 {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
}
