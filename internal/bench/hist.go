package bench

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram: 64 sub-buckets per power of two
// (under 1.6% error), fixed size, no allocation per sample.
type hist struct {
	counts   [64 + 58*64]int64
	n        int64
	sum      float64
	sumSq    float64
	min, max int64
}

func bucketOf(v int64) int {
	if v < 64 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 7
	return 64 + shift*64 + int(uint64(v)>>shift) - 64
}

// bucketMid is the middle of bucket i's range.
func bucketMid(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	shift := (i - 64) / 64
	top := int64(i-64)%64 + 64
	lo := top << shift
	return lo + (int64(1)<<shift)/2
}

func (h *hist) add(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	f := float64(v)
	h.sum += f
	h.sumSq += f * f
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	h.sumSq += o.sumSq
}

// percentile returns the latency at p (0 < p <= 100).
func (h *hist) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(p / 100 * float64(h.n)))
	want = max(want, 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			v := bucketMid(i)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

func (h *hist) stdev() time.Duration {
	if h.n < 2 {
		return 0
	}
	m := h.sum / float64(h.n)
	v := h.sumSq/float64(h.n) - m*m
	if v < 0 {
		v = 0
	}
	return time.Duration(math.Sqrt(v))
}
