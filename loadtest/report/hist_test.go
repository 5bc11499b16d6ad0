package report

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		q      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []float64{7}, 0.99, 7},
		{"median of odd", []float64{5, 1, 3}, 0.5, 3},
		{"median of even is the lower", []float64{4, 1, 3, 2}, 0.5, 2},
		{"p99 of 100 is the 99th", seq(1, 100), 0.99, 99},
		{"p95 of 100", seq(1, 100), 0.95, 95},
		{"p99 of 1000", seq(1, 1000), 0.99, 990},
		{"max", []float64{3, 9, 1}, 1, 9},
		{"p50 of 10 rounds up the rank", seq(1, 10), 0.5, 5},
		{"p51 of 10", seq(1, 10), 0.51, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.values, tt.q); got != tt.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", tt.values, tt.q, got, tt.want)
			}
		})
	}
}

func TestDistOf(t *testing.T) {
	d := DistOf(seq(1, 200))
	want := Dist{Count: 200, Mean: 100.5, P50: 100, P95: 190, P99: 198, Max: 200}
	if d != want {
		t.Fatalf("DistOf(1..200) = %+v, want %+v", d, want)
	}
	if (DistOf(nil) != Dist{}) {
		t.Fatal("DistOf(nil) is not zero")
	}
}

func TestHistQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration // exact value; the histogram may overstate by one bucket
	}{
		{"one value", []time.Duration{1500 * time.Microsecond}, 0.5, 1500 * time.Microsecond},
		{"sub-microsecond", []time.Duration{300, 400, 500}, 0.99, 500},
		{"linear range", durations(1, 60, time.Microsecond), 0.5, 30 * time.Microsecond},
		{"p99 of 1..1000 ms", durations(1, 1000, time.Millisecond), 0.99, 990 * time.Millisecond},
		{"p50 of 1..1000 ms", durations(1, 1000, time.Millisecond), 0.50, 500 * time.Millisecond},
		{"max", durations(1, 1000, time.Millisecond), 1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Hist
			for _, v := range tt.values {
				h.Add(int64(v))
			}
			got := time.Duration(h.Quantile(tt.q))
			// Upper edge of the value's bucket: at most 1/32 above, plus
			// the 1 µs of the linear buckets.
			hi := tt.want + tt.want/32 + time.Microsecond
			if got < tt.want || got > hi {
				t.Fatalf("Quantile(%v) = %v, want %v..%v", tt.q, got, tt.want, hi)
			}
		})
	}
}

func TestHistBuckets(t *testing.T) {
	prev := int64(0)
	for i := 0; i < histBuckets; i++ {
		up := histUpper(i)
		if up <= prev {
			t.Fatalf("bucket %d upper edge %d not above %d", i, up, prev)
		}
		if i < histBuckets-1 {
			if got := histIndex(up - 1); got != i {
				t.Fatalf("value %d (just under bucket %d's edge) maps to bucket %d", up-1, i, got)
			}
			if got := histIndex(up); got != i+1 {
				t.Fatalf("value %d (bucket %d's edge) maps to bucket %d", up, i, got)
			}
		}
		prev = up
	}
	if histIndex(math.MaxInt64) != histBuckets-1 || histIndex(-5) != 0 {
		t.Fatal("out-of-range values are not clamped")
	}
}

func TestHistMergeAndCDF(t *testing.T) {
	var a, b Hist
	for _, v := range durations(1, 100, time.Millisecond) {
		a.Add(int64(v))
	}
	for _, v := range durations(101, 200, time.Millisecond) {
		b.Add(int64(v))
	}
	a.Merge(&b)
	if a.Count() != 200 || a.Max() != int64(200*time.Millisecond) {
		t.Fatalf("merged count %d max %d", a.Count(), a.Max())
	}
	cdf := a.CDF(20)
	if len(cdf) > 20 || cdf[len(cdf)-1][1] != 1 || cdf[len(cdf)-1][0] != 200 {
		t.Fatalf("CDF ends at %v (%d points)", cdf[len(cdf)-1], len(cdf))
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i][0] < cdf[i-1][0] || cdf[i][1] < cdf[i-1][1] {
			t.Fatalf("CDF not monotonic at %d: %v then %v", i, cdf[i-1], cdf[i])
		}
	}
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func durations(from, to int, unit time.Duration) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i)*unit)
	}
	return out
}
