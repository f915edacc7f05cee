//go:build !race

package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/test/vm"
)

var suites = []string{"srp_login", "srp_restart", "srp_bench", "pr_fence"}

func TestRDMAKernelInitiator(t *testing.T) {
	ctx, cfg, srpt := vm.Prepare(t, "rdma")
	var table strings.Builder
	fmt.Fprintf(&table, "%-34s %-50s %s\n", "test", "lio", "srptgt")
	results := map[string]map[string]vm.Result{}
	for _, target := range []string{"lio", "srptgt"} {
		t.Run(target, func(t *testing.T) {
			c := cfg
			c.Log = vm.TestLog{T: t}
			rr, err := vm.Run(ctx, c, "rdma", target, suites, srpt)
			if err != nil {
				t.Errorf("harness: %v", err)
			}
			if rr == nil {
				return
			}
			if !strings.HasPrefix(rr.Setup, "OK") {
				t.Errorf("%s set-up failed: %s\n%s", target, rr.Setup, rr.SetupLog)
			}
			results[target] = map[string]vm.Result{}
			for _, r := range rr.Results {
				results[target][r.ID()] = r
				t.Run(r.Suite+"/"+r.Name, func(t *testing.T) {
					switch {
					case r.Status == vm.Pass:
						t.Logf("PASS %s", r.Detail)
					case r.Status == vm.NA:
						t.Skipf("%s", r.Detail)
					case target == "lio":
						t.Logf("reference result (LIO): FAIL %s\n%s", r.Detail, vm.LastLines(r.Log, 30))
					default:
						t.Errorf("FAIL %s\n%s", r.Detail, vm.LastLines(r.Log, 80))
					}
				})
			}
			if rr.LogPath != "" {
				t.Logf("console log: %s", rr.LogPath)
			}
		})
	}
	specs, _ := vm.SuiteTests(cfg, suites)
	for _, s := range specs {
		id := s.Suite + "/" + s.Name
		fmt.Fprintf(&table, "%-34s %-50s %s\n", id, cell(results["lio"], id), cell(results["srptgt"], id))
	}
	out := filepath.Join(cfg.Cache, "results", "rdma-srp.txt")
	os.MkdirAll(filepath.Dir(out), 0o755)
	os.WriteFile(out, []byte(table.String()), 0o644)
	t.Logf("results (%s):\n%s", out, table.String())
}

func cell(m map[string]vm.Result, id string) string {
	r, ok := m[id]
	if !ok {
		return "not run"
	}
	d := r.Detail
	if len(d) > 160 {
		d = d[:157] + "..."
	}
	return string(r.Status) + " " + d
}

// TestDemo is test/demo.sh: one boot of the rdma profile with srptgt as
// the target, printing what the kernel initiator sees. It runs only with
// SRPTGT_DEMO=1.
func TestDemo(t *testing.T) {
	if os.Getenv("SRPTGT_DEMO") != "1" {
		t.Skip("test/demo.sh runs this (SRPTGT_DEMO=1)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the demo needs root (it installs packages and boots a VM)")
	}
	cfg, err := vm.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log = os.Stderr
	ctx := context.Background()
	if err := vm.Setup(ctx, cfg); err != nil {
		t.Fatalf("host set-up: %v", err)
	}
	srpt := vm.BuildSrptgt(ctx, cfg)
	if srpt.Err != nil {
		t.Fatalf("srptgt: %v", srpt.Err)
	}
	fmt.Fprintf(os.Stderr, "demo: %s\n", strings.ReplaceAll(srpt.Version, "\n", "; "))
	rr, err := vm.Run(ctx, cfg, "rdma", "srptgt", []string{"srp_demo"}, srpt)
	if rr != nil {
		fmt.Printf("\n%s\n", strings.TrimSpace(rr.SetupLog))
		for _, r := range rr.Results {
			fmt.Printf("\n%s\n", r.Log)
			if r.Status != vm.Pass {
				t.Errorf("demo: %s %s", r.Status, r.Detail)
			}
		}
		fmt.Printf("(full console log: %s)\n", rr.LogPath)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestPerfRatios measures srptgt against LIO ib_srpt on the harness's perf
// suite (fio in the guest through ib_srp: 4 KiB random reads at QD32 and
// 1 MiB sequential reads at QD4, on LUN 0: srptgt's memory LU, LIO's
// ramdisk), alternating the targets for SRPTGT_VM_PERF_ROUNDS rounds, and
// reports the median of each and their ratio. Software emulation on a
// shared machine makes single runs vary by a factor of two; alternating
// exposes both targets to the same drift.
func TestPerfRatios(t *testing.T) {
	rounds := 0
	fmt.Sscan(os.Getenv("SRPTGT_VM_PERF_ROUNDS"), &rounds)
	if rounds <= 0 {
		t.Skip("set SRPTGT_VM_PERF_ROUNDS=N to run")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the VM harness needs root")
	}
	cfg, err := vm.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log = vm.TestLog{T: t}
	ctx := context.Background()
	if err := vm.Setup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	srpt := vm.BuildSrptgt(ctx, cfg)
	if srpt.Err != nil || !srpt.Has("rdma") {
		t.Fatalf("srptgt: %v %v", srpt.Err, srpt.Transports)
	}
	type sample struct{ rr, seq float64 }
	got := map[string][]sample{}
	var log strings.Builder
	for i := 0; i < rounds; i++ {
		for _, target := range []string{"lio", "srptgt"} {
			rr, err := vm.Run(ctx, cfg, "rdma", target, []string{"perf"}, srpt)
			if err != nil || rr == nil {
				t.Fatalf("%s: %v", target, err)
			}
			var s sample
			for _, r := range rr.Results {
				var iops, bw float64
				switch r.Name {
				case "randread_4k_qd32":
					fmt.Sscanf(r.Detail, "iops=%g bw_kib=%g", &iops, &bw)
					s.rr = iops
				case "seqread_1m":
					fmt.Sscanf(r.Detail, "iops=%g bw_mib=%g", &iops, &bw)
					s.seq = bw
				}
			}
			got[target] = append(got[target], s)
			fmt.Fprintf(&log, "round %d %-6s randread 4k QD32 %6.0f IOPS   seqread 1M QD4 %4.0f MiB/s\n", i+1, target, s.rr, s.seq)
		}
	}
	median := func(v []float64) float64 {
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	var rrL, rrS, sqL, sqS, rrR, sqR []float64
	for i := range got["lio"] {
		l, s := got["lio"][i], got["srptgt"][i]
		rrL, rrS, sqL, sqS = append(rrL, l.rr), append(rrS, s.rr), append(sqL, l.seq), append(sqS, s.seq)
		if l.rr > 0 && l.seq > 0 {
			rrR, sqR = append(rrR, s.rr/l.rr), append(sqR, s.seq/l.seq)
			fmt.Fprintf(&log, "round %d ratio srptgt/lio: randread %.2f seqread %.2f\n", i+1, s.rr/l.rr, s.seq/l.seq)
		}
	}
	fmt.Fprintf(&log, "median   lio    randread 4k QD32 %6.0f IOPS   seqread 1M QD4 %4.0f MiB/s\n", median(rrL), median(sqL))
	fmt.Fprintf(&log, "median   srptgt randread 4k QD32 %6.0f IOPS   seqread 1M QD4 %4.0f MiB/s\n", median(rrS), median(sqS))
	fmt.Fprintf(&log, "median of the rounds' ratios srptgt/lio: randread 4k QD32 %.2f, seqread 1M QD4 %.2f\n", median(rrR), median(sqR))
	out := filepath.Join(cfg.Cache, "results", "rdma-perf.txt")
	os.WriteFile(out, []byte(log.String()), 0o644)
	t.Logf("%s(%s)", log.String(), out)
}
