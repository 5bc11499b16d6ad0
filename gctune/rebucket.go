package gctune

import "math"

// rebucketer maps a runtime/metrics histogram onto fixed Prometheus buckets.
// The runtime's buckets are finer (a few percent wide), so the error from
// assigning each whole runtime bucket to one Prometheus bucket is small.
type rebucketer struct {
	target []int     // per runtime bucket: index into bounds, len(bounds) for +Inf only
	mid    []float64 // per runtime bucket: the value used to estimate the sum
	bounds []float64 // Prometheus upper bounds, increasing
	per    []uint64  // scratch: count per Prometheus bucket
}

// newRebucketer precomputes the mapping for runtime bucket edges (len(edges)
// = len(counts)+1; the first may be -Inf, the last +Inf).
func newRebucketer(edges, bounds []float64) *rebucketer {
	n := max(len(edges)-1, 0)
	r := &rebucketer{
		target: make([]int, n),
		mid:    make([]float64, n),
		bounds: bounds,
		per:    make([]uint64, len(bounds)),
	}
	for i := range n {
		lo, hi := edges[i], edges[i+1]
		// A runtime bucket [lo, hi) goes to the first bound >= hi, so a
		// bucket never claims values above its bound ("le" stays true).
		j := 0
		for j < len(bounds) && bounds[j] < hi {
			j++
		}
		r.target[i] = j
		r.mid[i] = midpoint(lo, hi)
	}
	return r
}

// midpoint of [lo, hi); with an infinite edge, the finite one stands in.
func midpoint(lo, hi float64) float64 {
	switch {
	case math.IsInf(lo, -1) && math.IsInf(hi, 1):
		return 0
	case math.IsInf(lo, -1):
		return hi
	case math.IsInf(hi, 1):
		return lo
	}
	return lo + (hi-lo)/2
}

// apply returns the total count, the estimated sum, and cumulative counts per
// upper bound as prometheus.MustNewConstHistogram wants them. The map is new
// each call because the const histogram keeps it.
func (r *rebucketer) apply(counts []uint64) (uint64, float64, map[float64]uint64) {
	clear(r.per)
	var count uint64
	var sum float64
	for i, n := range counts {
		if n == 0 || i >= len(r.target) {
			continue
		}
		count += n
		sum += float64(n) * r.mid[i]
		if j := r.target[i]; j < len(r.per) {
			r.per[j] += n
		}
	}
	cum := make(map[float64]uint64, len(r.bounds))
	var run uint64
	for j, b := range r.bounds {
		run += r.per[j]
		cum[b] = run
	}
	return count, sum, cum
}
