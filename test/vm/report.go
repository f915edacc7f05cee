package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cell renders one result for the table.
func cell(r Result, ok bool, markdown bool) string {
	if !ok {
		return "not run"
	}
	d := r.Detail
	switch r.Status {
	case Pass:
		if r.Suite == "perf" {
			return d
		}
		return "PASS"
	case NA:
		return NotAvailable
	}
	limit := 110
	if markdown {
		limit = 220
	}
	if len(d) > limit {
		d = d[:limit-3] + "..."
	}
	if markdown {
		d = strings.ReplaceAll(d, "|", "\\|")
	}
	return "FAIL: " + d
}

// Table renders the results of one profile as test × target, as plain
// text or markdown, with a header naming the versions and run times.
func Table(profile string, specs []TestSpec, runs map[string]*RunResult, markdown bool) string {
	var b strings.Builder
	title := fmt.Sprintf("srptgt VM results: profile %s (%s)", profile, time.Now().UTC().Format(time.RFC3339))
	if markdown {
		fmt.Fprintf(&b, "# %s\n\n", title)
	} else {
		fmt.Fprintf(&b, "%s\n\n", title)
	}
	bullet := "  "
	if markdown {
		bullet = "- "
	}
	for _, t := range Targets {
		rr := runs[t]
		if rr == nil {
			fmt.Fprintf(&b, "%s%s: not run\n", bullet, t)
			continue
		}
		if rr.NotAvailable != "" {
			fmt.Fprintf(&b, "%s%s: %s: %s\n", bullet, t, NotAvailable, rr.NotAvailable)
			continue
		}
		pass, fail := 0, 0
		for _, r := range rr.Results {
			switch r.Status {
			case Pass:
				pass++
			case Fail:
				fail++
			}
		}
		fmt.Fprintf(&b, "%s%s: %d passed, %d failed; boot+suites %s; setup %s; log %s\n",
			bullet, t, pass, fail, rr.Duration.Round(time.Second), rr.Setup, rr.LogPath)
		if v := rr.Info["kernel"]; v != "" {
			fmt.Fprintf(&b, "%s%s: guest kernel %s\n", bullet, t, v)
		}
		if v := rr.Info["xen"]; v != "" {
			fmt.Fprintf(&b, "%s%s: xen %s\n", bullet, t, v)
		}
		for _, e := range rr.Events {
			if len(e) > 160 {
				e = e[:160]
			}
			fmt.Fprintf(&b, "%s%s console: %s\n", bullet, t, e)
		}
	}
	for _, t := range Targets {
		if rr := runs[t]; rr != nil && rr.Info["packages"] != "" {
			fmt.Fprintf(&b, "%spackages: %s\n", bullet, rr.Info["packages"])
			break
		}
	}
	b.WriteString("\n")
	rows := [][]string{append([]string{"test"}, Targets...)}
	for _, s := range specs {
		row := []string{s.Suite + "/" + s.Name}
		for _, t := range Targets {
			r, err := runs[t].Lookup(s.Suite + "/" + s.Name)
			row = append(row, cell(r, err == nil, markdown))
		}
		rows = append(rows, row)
	}
	if markdown {
		for i, row := range rows {
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			if i == 0 {
				b.WriteString("|" + strings.Repeat(" --- |", len(row)) + "\n")
			}
		}
		return b.String()
	}
	w := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			if len(c) > w[i] {
				w[i] = len(c)
			}
		}
	}
	for _, row := range rows {
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", w[i], c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// WriteResults writes $CACHE/results/<profile>.txt and .md and returns the
// text table.
func WriteResults(c Config, profile string, specs []TestSpec, runs map[string]*RunResult) (string, error) {
	dir := filepath.Join(c.Cache, "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	txt := Table(profile, specs, runs, false)
	md := Table(profile, specs, runs, true)
	if err := os.WriteFile(filepath.Join(dir, profile+".txt"), []byte(txt), 0o644); err != nil {
		return txt, err
	}
	return txt, os.WriteFile(filepath.Join(dir, profile+".md"), []byte(md), 0o644)
}
