package rdma_test

import (
	"context"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
)

// BenchmarkSessionRead4K is srp's BenchmarkSessionRead4K with the RDMA
// channel over fakeverbs instead of the in-memory channel: 4 KiB READ(16)s
// at QD 32 through the RDMA transport (receive ring, RDMA WRITE + SEND,
// completions), the session layer and a memory LU, from a bare SRP driver
// with every IU prepared. The fake fabric's goroutine plays the HCA, so the
// number is the transport's CPU cost, not a network's. Compare with
// go test -bench SessionRead4K -benchmem -cpu 1 ./srp/
func BenchmarkSessionRead4K(b *testing.B) {
	const qd = 32
	e := newEnv(b, envOpt{luSize: 64 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := e.conn()
	rsp, _, err := conn.Login(ctx, &srp.LoginReq{MaxITIULen: 8260, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect,
		InitiatorPortID: initiatorID(1), TargetPortID: targetPort})
	if err != nil {
		b.Fatal(err)
	}
	if rsp.ReqLimDelta < qd {
		b.Fatalf("only %d credits", rsp.ReqLimDelta)
	}
	ius := make([][]byte, qd+1)
	for tag := 1; tag <= qd; tag++ {
		d, _ := conn.Register(make([]byte, 4096), true)
		cmd := srp.Cmd{Tag: uint64(tag), CDB: scsitest.RW16(0x88, 0, uint64(tag*8), 8),
			In: srp.BufDesc{Format: srp.BufDirect, Direct: d}}
		ius[tag] = make([]byte, cmd.Len())
		if _, err := cmd.Encode(ius[tag]); err != nil {
			b.Fatal(err)
		}
	}
	var r srp.Rsp
	if err := conn.Send(ius[1]); err != nil { // the unit attention
		b.Fatal(err)
	}
	if m, err := conn.Recv(); err != nil || r.Decode(m) != nil {
		b.Fatal(err)
	}
	b.SetBytes(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for tag := 1; tag <= qd; tag++ {
		if err := conn.Send(ius[tag]); err != nil {
			b.Fatal(err)
		}
	}
	sent := qd
	for done := 0; done < b.N; done++ {
		m, err := conn.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Decode(m); err != nil || r.Status != 0 {
			b.Fatalf("%v status %#x", err, r.Status)
		}
		if sent < b.N {
			if err := conn.Send(ius[r.Tag]); err != nil {
				b.Fatal(err)
			}
			sent++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
	conn.Close()
}
