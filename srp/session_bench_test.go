package srp_test

import (
	"context"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport"
)

// BenchmarkSessionRead4K measures 4 KiB READ(16)s through the in-memory
// channel, the session layer and the SCSI layer on a null LU, keeping 32
// commands outstanding. The driver is a bare SRP initiator with every IU and
// buffer prepared up front, so allocs/op counts the target side (channel,
// session, scsi) alone. Run it on one core: go test -bench SessionRead4K
// -benchmem -cpu 1 ./srp/
func BenchmarkSessionRead4K(b *testing.B) {
	const qd = 32
	st, err := backstore.Open(backstore.Spec{Kind: "null", Size: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, transport.MemConfig{}, srp.Config{}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := e.l.Dial()
	req := goodLogin()
	rsp, _, err := conn.Login(ctx, &req)
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
	// Clear the new nexus's unit attention.
	if err := conn.Send(ius[1]); err != nil {
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
