package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather scrapes reg and returns the families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector())

	before := gather(t, reg)["relay_gc_pause_seconds"].GetMetric()[0].GetHistogram().GetSampleCount()
	const forced = 5
	for range forced {
		runtime.GC()
	}
	got := gather(t, reg)

	t.Run("pause histogram", func(t *testing.T) {
		h := got["relay_gc_pause_seconds"].GetMetric()[0].GetHistogram()
		count := h.GetSampleCount()
		if count == 0 || count-before < forced {
			t.Fatalf("pause count = %d (was %d), want >= %d more", count, before, forced)
		}
		if len(h.GetBucket()) != len(pauseBuckets) {
			t.Fatalf("got %d buckets, want %d", len(h.GetBucket()), len(pauseBuckets))
		}
		var prev uint64
		for i, b := range h.GetBucket() {
			if b.GetUpperBound() != pauseBuckets[i] {
				t.Errorf("bucket %d bound = %g, want %g", i, b.GetUpperBound(), pauseBuckets[i])
			}
			if c := b.GetCumulativeCount(); c < prev || c > count {
				t.Errorf("bucket le=%g count %d not cumulative (prev %d, total %d)", b.GetUpperBound(), c, prev, count)
			}
			prev = b.GetCumulativeCount()
		}
		if s := h.GetSampleSum(); s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			t.Errorf("pause sum = %g, want finite > 0", s)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		gc := got["relay_gc_cpu_seconds_total"].GetMetric()[0].GetCounter().GetValue()
		total := got["relay_cpu_seconds_total"].GetMetric()[0].GetCounter().GetValue()
		frac := got["relay_gc_cpu_fraction"].GetMetric()[0].GetGauge().GetValue()
		if gc <= 0 || total <= 0 {
			t.Errorf("gc cpu = %g, total cpu = %g, want both > 0", gc, total)
		}
		if frac < 0 || frac > 1 {
			t.Errorf("gc cpu fraction = %g, want in [0,1]", frac)
		}
	})
	t.Run("live heap", func(t *testing.T) {
		// A live allocation of 8 MiB kept across a GC must show.
		keep := make([]byte, 8<<20)
		runtime.GC()
		live := gather(t, reg)["relay_gc_heap_live_bytes"].GetMetric()[0].GetGauge().GetValue()
		runtime.KeepAlive(keep)
		if live < 8<<20 {
			t.Errorf("relay_gc_heap_live_bytes = %g with 8 MiB kept live, want at least that", live)
		}
	})
	t.Run("settings", func(t *testing.T) {
		keepRuntimeSettings(t)
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(300 << 20)
		s := gather(t, reg)
		if g := s["relay_gogc"].GetMetric()[0].GetGauge().GetValue(); g != -1 {
			t.Errorf("relay_gogc = %g, want -1", g)
		}
		if l := s["relay_gomemlimit_bytes"].GetMetric()[0].GetGauge().GetValue(); l != 300<<20 {
			t.Errorf("relay_gomemlimit_bytes = %g, want %d", l, 300<<20)
		}
	})
}

// TestCollectorConcurrent lets the race detector check the shared samples.
func TestCollectorConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			runtime.GC()
		}
	})
	wg.Wait()
}

func TestRebucket(t *testing.T) {
	inf := math.Inf(1)
	bounds := []float64{1, 2, 4}
	tests := []struct {
		name    string
		edges   []float64
		counts  []uint64
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}{
		{
			name:    "infinite edges",
			edges:   []float64{-inf, 0, 1, 1.5, 3, 4, inf},
			counts:  []uint64{1, 2, 3, 4, 5, 6},
			count:   21,
			sum:     1*0 + 2*0.5 + 3*1.25 + 4*2.25 + 5*3.5 + 6*4,
			buckets: map[float64]uint64{1: 3, 2: 6, 4: 15},
		},
		{
			name:    "edge straddling a bound goes up",
			edges:   []float64{0.5, 1.5, 2.5},
			counts:  []uint64{10, 1},
			count:   11,
			sum:     10*1 + 1*2,
			buckets: map[float64]uint64{1: 0, 2: 10, 4: 11},
		},
		{
			name:    "empty",
			edges:   nil,
			counts:  nil,
			buckets: map[float64]uint64{1: 0, 2: 0, 4: 0},
		},
		{
			name:    "all infinite",
			edges:   []float64{-inf, inf},
			counts:  []uint64{7},
			count:   7,
			buckets: map[float64]uint64{1: 0, 2: 0, 4: 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			count, sum, buckets := newRebucketer(tc.edges, bounds).apply(tc.counts)
			if count != tc.count || sum != tc.sum {
				t.Errorf("count, sum = %d, %g; want %d, %g", count, sum, tc.count, tc.sum)
			}
			for b, want := range tc.buckets {
				if buckets[b] != want {
					t.Errorf("le=%g: %d, want %d", b, buckets[b], want)
				}
			}
		})
	}
}

func BenchmarkCollect(b *testing.B) {
	c := NewCollector()
	ch := make(chan prometheus.Metric, 16)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}
