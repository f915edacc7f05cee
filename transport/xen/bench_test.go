package xen_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen"
)

// BenchmarkRead: READ(10) through the whole stack (Go frontend, simulated
// grants and event channels, ring, session, SCSI, memory LU), with the
// data moved by grant copy or by grant map, at queue depth 16:
//
//	go test ./transport/xen -run XXX -bench Read -benchtime 3s
func BenchmarkRead(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, mode := range []string{"copy", "map"} {
			b.Run(fmt.Sprintf("%dk/%s", size>>10, mode), func(b *testing.B) {
				benchRead(b, size, mode == "map")
			})
		}
	}
}

func benchRead(b *testing.B, size int, mapped bool) {
	e := newEnv(b, func(c *xen.Config) {
		c.Guests = []xen.Guest{{Domain: "g1", LUNs: []xen.LUNSpec{{LU: "disk0"}}}}
		c.MaxSegments = 256
		if mapped {
			c.MapThreshold = 1
		}
	})
	g := e.guest("g1")
	f, err := dialFront(context.Background(), g, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 4; i++ {
		f.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.TestUnitReady()})
	}
	blocks := size / 512
	span := luSize/512 - blocks
	var next atomic.Int64
	b.SetBytes(int64(size))
	b.ResetTimer()
	var wg sync.WaitGroup
	var failed atomic.Value
	const qd = 16
	start := time.Now()
	for w := 0; w < qd; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				lba := uint32((i * 7919 * int64(blocks)) % int64(span))
				r, err := f.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RW10(0x28, 0, lba, uint16(blocks)), InLen: size})
				if err == nil {
					err = r.Err()
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "IOPS")
}
