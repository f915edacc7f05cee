package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

func humanBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1fGiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1fMiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1fKiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0fB", v)
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// latUnit picks fio's unit for a latency range.
func latUnit(max int64) (string, float64) {
	switch {
	case max >= 10*int64(time.Millisecond):
		return "msec", 1e6
	case max >= 10*int64(time.Microsecond):
		return "usec", 1e3
	}
	return "nsec", 1
}

// WriteText prints the result the way fio does.
func (r *Result) WriteText(w io.Writer) {
	lun := strconv.FormatUint(r.LUN>>48&0x3FFF, 10)
	if r.LUNName != "" {
		lun += " (" + r.LUNName + ")"
	}
	fmt.Fprintf(w, "bench: %s LUN %s, %d x %d-byte blocks: rw=%s, bs=%d, iodepth=%d\n",
		r.Target, lun, r.Blocks, r.BlockSize, r.RW, r.BS, r.IODepth)
	for _, d := range []struct {
		name string
		s    *Stats
	}{{"read", r.Read}, {"write", r.Write}} {
		if d.s == nil {
			continue
		}
		s := d.s
		fmt.Fprintf(w, "  %s: IOPS=%s, BW=%s/s (%.1fMB/s)(%s/%dmsec)\n", d.name, humanCount(s.IOPS),
			humanBytes(s.BW), s.BW/1e6, humanBytes(float64(s.Bytes)), r.RuntimeMS)
		if s.IOs == 0 {
			continue
		}
		unit, div := latUnit(s.Lat.Max)
		fmt.Fprintf(w, "    lat (%s): min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f\n", unit,
			float64(s.Lat.Min)/div, float64(s.Lat.Max)/div, s.Lat.Mean/div, s.Lat.Stdev/div)
		fmt.Fprintf(w, "    lat percentiles (%s):\n", unit)
		var cells []string
		for _, p := range Percentiles {
			k := strconv.FormatFloat(p, 'f', 6, 64)
			cells = append(cells, fmt.Sprintf("%5.2fth=[%5.0f]", p, float64(s.Lat.Percentiles[k])/div))
		}
		for i := 0; i < len(cells); i += 4 {
			end := min(i+4, len(cells))
			fmt.Fprintf(w, "     | %s%s\n", strings.Join(cells[i:end], ", "), map[bool]string{true: ",", false: ""}[end < len(cells)])
		}
	}
	fmt.Fprintf(w, "  errors: %d", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, " (first: %s)", r.FirstError)
	}
	fmt.Fprintln(w)
	if r.Verify {
		fmt.Fprintf(w, "  verify: %d blocks checked, %d mismatches\n", r.Verified, r.Mismatches)
	}
}

// WriteJSON prints the result as JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
