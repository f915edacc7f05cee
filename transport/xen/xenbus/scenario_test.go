package xenbus

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Scenario scripts (testdata/*.txt), in the manner of
// cockroachdb/datadriven: each case is a command line, "----", and the
// expected output up to a blank line. The script drives a Machine against
// a tiny model of the device's XenStore nodes: the commands play the
// toolstack and the frontend, "step" feeds the machine a snapshot and
// applies its writes. Regenerate the expected output with
//
//	go test ./transport/xen/xenbus -run TestScenarios -rewrite
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenario scripts")

type world struct {
	m     *Machine
	snap  Snapshot
	devs  map[string]*Dev
	known map[string]bool
}

func newWorld() *world {
	w := &world{devs: map[string]*Dev{}, known: map[string]bool{"disk0": true, "disk1": true, "disk2": true}}
	w.m = New(128, w.check)
	return w
}

// check: p-dev must be a configured LUN, v-dev a valid address on channel
// 0, not in use.
func (w *world) check(d Dev, active []Dev) error {
	if !w.known[d.PDev] {
		return fmt.Errorf("no LUN %q", d.PDev)
	}
	f := strings.Split(d.VDev, ":")
	if len(f) != 4 || f[1] != "0" {
		return fmt.Errorf("bad v-dev %q", d.VDev)
	}
	for _, a := range active {
		if a.VDev[strings.IndexByte(a.VDev, ':'):] == d.VDev[strings.IndexByte(d.VDev, ':'):] {
			return fmt.Errorf("v-dev %q in use", d.VDev)
		}
	}
	return nil
}

func (w *world) snapshot() Snapshot {
	s := w.snap
	s.Devs = nil
	for _, d := range w.devs {
		s.Devs = append(s.Devs, *d)
	}
	sort.Slice(s.Devs, func(i, j int) bool { return devLess(s.Devs[i].Name, s.Devs[j].Name) })
	return s
}

// apply performs the machine's writes on the model and prints actions.
func (w *world) apply(acts []Action) string {
	var b strings.Builder
	for _, a := range acts {
		fmt.Fprintln(&b, a)
		if a.Op != Write {
			continue
		}
		switch {
		case a.Path == "state":
			w.snap.State = ParseState(a.Value)
		case strings.HasPrefix(a.Path, "vscsi-devs/") && strings.HasSuffix(a.Path, "/state"):
			name := strings.TrimSuffix(strings.TrimPrefix(a.Path, "vscsi-devs/"), "/state")
			if d := w.devs[name]; d != nil {
				d.State = ParseState(a.Value)
			}
		}
	}
	if b.Len() == 0 {
		return "(nothing)\n"
	}
	return b.String()
}

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (w *world) run(t *testing.T, line string) string {
	f := strings.Fields(line)
	cmd, args := f[0], kv(f[1:])
	switch cmd {
	case "be":
		if _, ok := args["gone"]; ok {
			w.snap.Exists = false
			return "ok\n"
		}
		w.snap.Exists = true
		if v, ok := args["state"]; ok {
			w.snap.State = State(atoi(v))
		}
		if v, ok := args["online"]; ok {
			w.snap.Online = v == "1"
		}
		return "ok\n"
	case "dev":
		d := w.devs[f[1]]
		if d == nil {
			d = &Dev{Name: f[1]}
			w.devs[f[1]] = d
		}
		if v, ok := args["p-dev"]; ok {
			d.PDev = v
		}
		if v, ok := args["v-dev"]; ok {
			d.VDev = v
		}
		if v, ok := args["state"]; ok {
			d.State = State(atoi(v))
		}
		return "ok\n"
	case "rmdev":
		delete(w.devs, f[1])
		return "ok\n"
	case "fe":
		if _, ok := args["gone"]; ok {
			w.snap.FrontendExists, w.snap.Frontend, w.snap.RingOK = false, Unknown, false
			return "ok\n"
		}
		w.snap.FrontendExists = true
		if v, ok := args["state"]; ok {
			w.snap.Frontend = State(atoi(v))
		}
		if v, ok := args["ring-ref"]; ok {
			w.snap.RingRef = uint32(atoi(v))
			w.snap.EventChannel = uint32(atoi(args["event-channel"]))
			w.snap.RingOK = true
		}
		return "ok\n"
	case "step":
		return w.apply(w.m.Step(w.snapshot()))
	case "shutdown":
		w.m.Shutdown()
		return w.apply(w.m.Step(w.snapshot()))
	case "fail":
		w.m.Fail()
		return w.apply(w.m.Step(w.snapshot()))
	case "abandon":
		return w.apply(w.m.Abandon())
	case "reconfigure":
		return w.apply(w.m.Reconfigure())
	case "restart":
		w.m = New(128, w.check)
		return "ok\n"
	case "show":
		s := w.snapshot()
		var b strings.Builder
		fmt.Fprintf(&b, "backend %v, frontend %v, ring attached %v\n", s.State, s.Frontend, w.m.Connected())
		for _, d := range s.Devs {
			fmt.Fprintf(&b, "%s %s %s %v\n", d.Name, d.PDev, d.VDev, d.State)
		}
		for _, d := range w.m.LUNs() {
			fmt.Fprintf(&b, "serving %s %s at %s\n", d.Name, d.PDev, d.VDev)
		}
		return b.String()
	}
	t.Fatalf("unknown command %q", line)
	return ""
}

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	fh.Close()
	w := newWorld()
	var out strings.Builder
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			i++
			continue
		}
		cmd := l
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: %q not followed by ----", file, i, cmd)
		}
		i++
		var want strings.Builder
		for i < len(lines) && lines[i] != "" {
			want.WriteString(lines[i] + "\n")
			i++
		}
		got := w.run(t, cmd)
		if !*rewrite && got != want.String() {
			t.Errorf("%s: %s\ngot:\n%swant:\n%s", file, cmd, got, want.String())
		}
		out.WriteString(cmd + "\n----\n" + got)
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
