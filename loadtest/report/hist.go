package report

import (
	"math"
	"math/bits"
	"slices"
)

// Hist is a log-linear histogram of non-negative durations in nanoseconds,
// for figures with too many samples to keep (one-way latency of every
// packet). Below 64 µs each bucket is 1 µs wide; above, every power of two
// is split into 32 buckets, so a bucket's width is at most 1/32 (3%) of its
// lower edge. It covers up to about 9 hours; longer values land in the
// last bucket. The zero value is empty and ready. Not safe for concurrent
// use: each reader goroutine owns its own and they are merged at the end.
type Hist struct {
	counts [histBuckets]uint32
	n      uint64
	max    int64
	sum    float64 // nanoseconds, for the mean
}

const (
	histLinear  = 64 // µs values below this have their own bucket
	histSub     = 32 // buckets per power of two above that
	histOctaves = 30 // 2^6 .. 2^35 µs
	histBuckets = histLinear + histOctaves*histSub
)

// histIndex returns the bucket of a value in nanoseconds.
func histIndex(ns int64) int {
	if ns < 0 {
		ns = 0
	}
	us := uint64(ns) / 1000
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1)), e >= 6
	sub := int(us>>(e-5)) & (histSub - 1)
	i := histLinear + (e-6)*histSub + sub
	return min(i, histBuckets-1)
}

// histUpper returns the exclusive upper edge of bucket i in nanoseconds.
func histUpper(i int) int64 {
	if i < histLinear {
		return int64(i+1) * 1000
	}
	e := (i-histLinear)/histSub + 6
	sub := (i - histLinear) % histSub
	width := int64(1) << (e - 5)
	return (int64(1)<<e + int64(sub+1)*width) * 1000
}

// Add records one value in nanoseconds.
func (h *Hist) Add(ns int64) {
	h.counts[histIndex(ns)]++
	h.n++
	h.sum += float64(ns)
	if ns > h.max {
		h.max = ns
	}
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest value recorded, exactly.
func (h *Hist) Max() int64 { return h.max }

// Quantile returns the nearest-rank q-quantile (0 < q <= 1): the upper
// edge of the bucket holding the ceil(q*n)-th smallest value, capped at
// the exact maximum. It overstates by at most one bucket width (3%).
func (h *Hist) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(q, int(h.n))
	var cum uint64
	for i, c := range h.counts {
		cum += uint64(c)
		if cum >= uint64(rank) {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// CDF returns up to points (value ms, cumulative fraction) pairs for a
// chart: one per non-empty bucket, thinned evenly if there are more.
func (h *Hist) CDF(points int) [][2]float64 {
	if h.n == 0 {
		return [][2]float64{}
	}
	var out [][2]float64
	var cum uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		cum += uint64(c)
		v := min(histUpper(i), h.max)
		out = append(out, [2]float64{float64(v) / 1e6, float64(cum) / float64(h.n)})
	}
	return thin(out, points)
}

// Dist summarizes a distribution; every value is in milliseconds.
type Dist struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Dist summarizes h in milliseconds.
func (h *Hist) Dist() Dist {
	if h.n == 0 {
		return Dist{}
	}
	return Dist{
		Count: h.n,
		Mean:  round3(h.sum / float64(h.n) / 1e6),
		P50:   round3(float64(h.Quantile(0.50)) / 1e6),
		P95:   round3(float64(h.Quantile(0.95)) / 1e6),
		P99:   round3(float64(h.Quantile(0.99)) / 1e6),
		Max:   round3(float64(h.max) / 1e6),
	}
}

// nearestRank is the 1-based rank of the q-quantile of n values:
// ceil(q*n), at least 1.
func nearestRank(q float64, n int) int {
	r := int(math.Ceil(q*float64(n) - 1e-9))
	return min(max(r, 1), n)
}

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of values,
// exactly; 0 for none. values is not modified.
func Percentile(values []float64, q float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return s[nearestRank(q, len(s))-1]
}

// DistOf summarizes exact samples, in milliseconds.
func DistOf(ms []float64) Dist {
	if len(ms) == 0 {
		return Dist{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	at := func(q float64) float64 { return round3(s[nearestRank(q, len(s))-1]) }
	return Dist{
		Count: uint64(len(s)),
		Mean:  round3(sum / float64(len(s))),
		P50:   at(0.50),
		P95:   at(0.95),
		P99:   at(0.99),
		Max:   round3(s[len(s)-1]),
	}
}

// CDFOf returns (value, cumulative fraction) pairs of exact samples,
// thinned to at most points.
func CDFOf(ms []float64, points int) [][2]float64 {
	s := slices.Clone(ms)
	slices.Sort(s)
	out := make([][2]float64, 0, len(s))
	for i, v := range s {
		if i+1 < len(s) && s[i+1] == v {
			continue // one point per distinct value, at its highest rank
		}
		out = append(out, [2]float64{v, float64(i+1) / float64(len(s))})
	}
	return thin(out, points)
}

// thin keeps at most n points of a CDF, evenly spread, always keeping the
// last (fraction 1).
func thin(pts [][2]float64, n int) [][2]float64 {
	if n < 2 || len(pts) <= n {
		return pts
	}
	out := make([][2]float64, 0, n)
	for i := 0; i < n-1; i++ {
		out = append(out, pts[i*(len(pts)-1)/(n-1)])
	}
	return append(out, pts[len(pts)-1])
}

// round3 rounds to three decimals, for readable JSON.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
