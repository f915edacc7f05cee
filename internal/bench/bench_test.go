package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// direct returns the SCSI layer itself as the initiator: two LUs named
// disk0 and disk1.
func direct(t *testing.T) scsitest.Initiator {
	t.Helper()
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	for i, name := range []string{"disk0", "disk1"} {
		st, err := backstore.Open(backstore.Spec{Kind: "memory", Size: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		lu, err := scsi.NewDisk(scsi.DiskConfig{Name: name, LUN: uint16(i), Store: st})
		if err != nil {
			t.Fatal(err)
		}
		tgt.AddLU(lu)
	}
	port := tgt.AddPort(scsi.PortID{1}, "test")
	n, err := tgt.Attach(scsi.NexusID{Initiator: scsi.PortID{2}, Target: port.ID}, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tgt.Detach(n)
		for _, lu := range tgt.LUs() {
			lu.Close()
		}
	})
	return scsitest.NewDirect(n)
}

func TestRunModes(t *testing.T) {
	in := direct(t)
	for _, m := range []Mode{Read, Write, RandRead, RandWrite, RandRW} {
		t.Run(string(m), func(t *testing.T) {
			res, err := Run(context.Background(), in, Options{LUN: "disk1", RW: m, BS: 4096, IODepth: 4,
				Time: 1200 * time.Millisecond, Verify: true, Label: "direct"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Mismatches != 0 {
				t.Fatalf("errors %d (%s), mismatches %d", res.Errors, res.FirstError, res.Mismatches)
			}
			if res.LUN != scsi.EncodeLUN(1) || res.BlockSize != 512 || res.Blocks != 16384 {
				t.Fatalf("geometry %+v", res)
			}
			var ios int64
			if res.Read != nil {
				ios += res.Read.IOs
			}
			if res.Write != nil {
				ios += res.Write.IOs
			}
			if ios == 0 {
				t.Fatal("no I/O")
			}
			if (m == Write || m == RandWrite || m == RandRW) && res.Verified == 0 {
				t.Fatal("nothing verified")
			}
			var text bytes.Buffer
			res.WriteText(&text)
			for _, want := range []string{"bench: direct LUN 1 (disk1), 16384 x 512-byte blocks: rw=" + string(m), "IOPS=", "percentiles", "errors: 0", "verify: "} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text output lacks %q:\n%s", want, text.String())
				}
			}
			var js bytes.Buffer
			if err := res.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["rw"] != string(m) {
				t.Fatalf("json %v: %s", err, js.String())
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	in := direct(t)
	var prog bytes.Buffer
	if _, err := Run(context.Background(), in, Options{LUN: "0", RW: RandRead, BS: 4096, IODepth: 1,
		Time: 2500 * time.Millisecond, Progress: &prog}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(prog.String(), "Jobs: 1: [randread(1)][") || !strings.Contains(prog.String(), " IOPS][eta ") {
		t.Fatalf("progress %q", prog.String())
	}
}

// A sector that does not hold what was written is reported.
func TestVerifyCatchesCorruption(t *testing.T) {
	r := &run{}
	b := make([]byte, 4096)
	fill(b, 800, 7)
	r.check(b, 800, 7)
	if r.mismatches.Load() != 0 || r.verified.Load() != 1 {
		t.Fatalf("clean block: %d mismatches", r.mismatches.Load())
	}
	for _, tc := range []struct {
		name string
		mut  func([]byte)
		lba  uint64
		gen  uint32
	}{
		{"flipped bit", func(b []byte) { b[3000] ^= 1 }, 800, 7},
		{"older generation", func([]byte) {}, 800, 8},
		{"misplaced block", func([]byte) {}, 808, 7},
	} {
		c := append([]byte(nil), b...)
		tc.mut(c)
		r := &run{}
		r.check(c, tc.lba, tc.gen)
		if r.mismatches.Load() != 1 || r.errors.Load() != 1 {
			t.Errorf("%s: %d mismatches", tc.name, r.mismatches.Load())
		}
	}
}

func TestFindLUNUnknown(t *testing.T) {
	in := direct(t)
	if _, err := FindLUN(context.Background(), in, "nope"); err == nil || !strings.Contains(err.Error(), "disk0, disk1") {
		t.Fatalf("FindLUN: %v", err)
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]int64{"4k": 4096, "4K": 4096, "1m": 1 << 20, "1MiB": 1 << 20, "512": 512, "2g": 2 << 30, "64kb": 64 << 10} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "k", "-4k", "4x", "0"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
	if _, err := ParseMode("randrw"); err != nil {
		t.Error(err)
	}
	if _, err := ParseMode("rw"); err == nil {
		t.Error("ParseMode(rw) accepted")
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for p, want := range map[float64]time.Duration{50: 500 * time.Microsecond, 99: 990 * time.Microsecond, 1: 10 * time.Microsecond} {
		got := h.percentile(p)
		if d := float64(got-want) / float64(want); d > 0.02 || d < -0.02 {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if h.min != int64(time.Microsecond) || h.max != int64(time.Millisecond) {
		t.Errorf("min %d max %d", h.min, h.max)
	}
	if m := h.mean(); m < 500*time.Microsecond || m > 501*time.Microsecond {
		t.Errorf("mean %v", m)
	}
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<62 + 12345} {
		b := bucketOf(v)
		mid := bucketMid(b)
		if v >= 128 && (float64(mid-v)/float64(v) > 0.016 || float64(v-mid)/float64(v) > 0.016) {
			t.Errorf("value %d: bucket %d mid %d", v, b, mid)
		}
		if b >= len(h.counts) {
			t.Errorf("value %d: bucket %d out of range", v, b)
		}
	}
}
