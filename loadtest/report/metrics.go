package report

import (
	"math"
	"slices"
)

// Metrics is one scrape of the relay's /metrics, reduced to what reports
// use. The measuring side fills it (loadtest parses the scrape); this
// package only reads it, so it needs no Prometheus library.
type Metrics struct {
	// Values holds every sample summed over its label sets, by the name
	// its text-format line carries: a counter or gauge by its own name, a
	// histogram as name_bucket, name_sum and name_count.
	Values map[string]float64
	// Buckets holds each histogram's cumulative buckets (summed over label
	// sets), by the histogram's name, sorted by upper bound, +Inf last.
	Buckets map[string][]Bucket
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 // +Inf for the last
	Count      float64 // observations at or below UpperBound
}

// Value returns the sum of a metric's samples and whether it was present.
// A nil Metrics (no scrape) has nothing.
func (m *Metrics) Value(name string) (float64, bool) {
	if m == nil {
		return 0, false
	}
	v, ok := m.Values[name]
	return v, ok
}

// metricDelta returns a counter's increase from a to b.
func metricDelta(a, b *Metrics, name string) (float64, bool) {
	va, okA := a.Value(name)
	vb, okB := b.Value(name)
	if !okA || !okB {
		return 0, false
	}
	return vb - va, true
}

// bucketDelta returns histogram name's cumulative buckets in b minus a
// (a may be nil: since the process started).
func bucketDelta(a, b *Metrics, name string) []Bucket {
	if b == nil {
		return nil
	}
	out := slices.Clone(b.Buckets[name])
	if a == nil {
		return out
	}
	prev := a.Buckets[name]
	for i := range out {
		for _, p := range prev {
			if p.UpperBound == out[i].UpperBound {
				out[i].Count -= p.Count
			}
		}
	}
	return out
}

// bucketQuantile returns the nearest-rank q-quantile of cumulative
// buckets as the upper bound of the bucket that holds it (seconds), and
// the count. A quantile in the +Inf bucket returns the largest finite
// bound (a lower bound of the truth).
func bucketQuantile(b []Bucket, q float64) (float64, float64) {
	if len(b) == 0 {
		return 0, 0
	}
	total := b[len(b)-1].Count
	if total <= 0 {
		return 0, 0
	}
	rank := math.Ceil(q*total - 1e-9)
	for i, x := range b {
		if x.Count >= rank {
			if math.IsInf(x.UpperBound, 1) && i > 0 {
				return b[i-1].UpperBound, total
			}
			return x.UpperBound, total
		}
	}
	return b[len(b)-1].UpperBound, total
}

// bucketMax returns the upper bound of the highest non-empty bucket (the
// largest finite bound if that is +Inf), 0 for none.
func bucketMax(b []Bucket) float64 {
	// Walk down from the top: the highest bucket whose count exceeds the
	// one below it holds the maximum.
	for i := len(b) - 1; i >= 0; i-- {
		below := 0.0
		if i > 0 {
			below = b[i-1].Count
		}
		if b[i].Count > below {
			if math.IsInf(b[i].UpperBound, 1) && i > 0 {
				return b[i-1].UpperBound
			}
			return b[i].UpperBound
		}
	}
	return 0
}
