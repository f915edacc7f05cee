package vm

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVM boots each profile once per target and runs every selected guest
// suite in that boot. Subtests: TestVM/<profile>/<target>/<suite>/<test>.
//
// Selection: -run as usual (a suite pattern as the 4th element also limits
// what the guest runs), or SRPTGT_VM_PROFILES=rdma,xen and
// SRPTGT_VM_SUITES=identity,data,sbc,tmf,pr,perf.
//
// Results of the reference target (lio) are recorded, not judged: a LIO
// failure is logged as the reference result. srptgt failures fail the
// test; srptgt cells are skipped only as "n/a (target not available)".
func TestVM(t *testing.T) {
	ctx, cfg, srpt := Prepare(t)
	if srpt.Err != nil {
		t.Logf("srptgt: %s: %v", NotAvailable, srpt.Err)
	} else {
		t.Logf("srptgt: %s", strings.ReplaceAll(srpt.Version, "\n", "; "))
	}
	suites := selectedSuites()
	if _, err := SuiteTests(cfg, suites); err != nil {
		t.Fatal(err)
	}
	for _, profile := range selectedProfiles() {
		t.Run(profile, func(t *testing.T) {
			specs, _ := SuiteTests(cfg, ForProfile(profile, suites))
			runs := map[string]*RunResult{}
			for _, target := range Targets {
				t.Run(target, func(t *testing.T) {
					c := cfg
					c.Log = TestLog{T: t}
					rr, err := Run(ctx, c, profile, target, suites, srpt)
					if rr != nil {
						runs[target] = rr
					}
					if err != nil {
						t.Errorf("harness: %v", err)
					}
					if rr == nil {
						return
					}
					if rr.NotAvailable != "" {
						t.Logf("%s: %s", NotAvailable, rr.NotAvailable)
					}
					if rr.NotAvailable == "" && !strings.HasPrefix(rr.Setup, "OK") {
						t.Errorf("%s set-up failed: %s\n%s", target, rr.Setup, rr.SetupLog)
					}
					report(t, rr)
				})
			}
			txt, err := WriteResults(cfg, profile, specs, runs)
			if err != nil {
				t.Errorf("writing results: %v", err)
			}
			t.Logf("results table (%s/results/%s.txt, .md):\n%s", cfg.Cache, profile, txt)
		})
	}
}

// report turns each guest result into a subtest.
func report(t *testing.T, rr *RunResult) {
	bySuite := map[string][]Result{}
	var order []string
	for _, r := range rr.Results {
		if _, ok := bySuite[r.Suite]; !ok {
			order = append(order, r.Suite)
		}
		bySuite[r.Suite] = append(bySuite[r.Suite], r)
	}
	for _, s := range order {
		t.Run(s, func(t *testing.T) {
			for _, r := range bySuite[s] {
				t.Run(r.Name, func(t *testing.T) {
					switch r.Status {
					case NA:
						t.Skip(NotAvailable)
					case Pass:
						t.Logf("PASS %s (%v)", r.Detail, r.Elapsed)
					default:
						if rr.Target == "lio" {
							t.Logf("reference result (LIO): FAIL %s\n%s", r.Detail, LastLines(r.Log, 30))
						} else {
							t.Errorf("FAIL %s\n%s", r.Detail, LastLines(r.Log, 60))
						}
					}
				})
			}
		})
	}
}

func splitEnv(name string, all []string) []string {
	v := os.Getenv(name)
	if v == "" {
		return all
	}
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}

func selectedProfiles() []string { return splitEnv("SRPTGT_VM_PROFILES", Profiles) }

// selectedSuites honours SRPTGT_VM_SUITES, else a suite pattern given as
// the 4th element of -run (TestVM/<profile>/<target>/<suite>).
func selectedSuites() []string {
	suites := splitEnv("SRPTGT_VM_SUITES", AllSuites)
	if os.Getenv("SRPTGT_VM_SUITES") != "" {
		return suites
	}
	f := flag.Lookup("test.run")
	if f == nil {
		return suites
	}
	parts := strings.Split(f.Value.String(), "/")
	if len(parts) < 4 {
		return suites
	}
	re, err := regexp.Compile(parts[3])
	if err != nil {
		return suites
	}
	var out []string
	for _, s := range suites {
		if re.MatchString(s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return suites
	}
	return out
}
