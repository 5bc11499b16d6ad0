package loadtest

import (
	"math"
	"strings"
	"testing"
)

const sampleMetrics = `# HELP relay_packets_out_total RTP packets written to subscribers.
# TYPE relay_packets_out_total counter
relay_packets_out_total 12345
relay_packets_dropped_total{reason="queue_full"} 3
relay_packets_dropped_total{reason="write_failed"} 4
process_cpu_seconds_total 1.5e+01
relay_gc_pause_seconds_bucket{le="5e-06"} 0
relay_gc_pause_seconds_bucket{le="0.0001"} 90
relay_gc_pause_seconds_bucket{le="0.001"} 99
relay_gc_pause_seconds_bucket{le="0.01"} 100
relay_gc_pause_seconds_bucket{le="+Inf"} 100
relay_gc_pause_seconds_sum 0.01
relay_gc_pause_seconds_count 100
garbage line without value
`

func TestParseProm(t *testing.T) {
	s, err := parseProm(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want float64
		ok   bool
	}{
		{"relay_packets_out_total", 12345, true},
		{"relay_packets_dropped_total", 7, true}, // summed over labels
		{"process_cpu_seconds_total", 15, true},
		{"relay_gc_pause_seconds_count", 100, true},
		{"missing_total", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := s.value(tt.name); got != tt.want || ok != tt.ok {
				t.Fatalf("value = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	b := s.buckets["relay_gc_pause_seconds"]
	if len(b) != 5 || !math.IsInf(b[4].le, 1) {
		t.Fatalf("buckets %+v", b)
	}
}

func TestBucketQuantile(t *testing.T) {
	b := []promBucket{{5e-6, 0}, {1e-4, 90}, {1e-3, 99}, {1e-2, 100}, {math.Inf(1), 100}}
	inf := []promBucket{{1e-3, 1}, {math.Inf(1), 3}}
	tests := []struct {
		name      string
		b         []promBucket
		q, want   float64
		wantCount float64
	}{
		{"p50", b, 0.5, 1e-4, 100},
		{"p99", b, 0.99, 1e-3, 100},
		{"p100", b, 1, 1e-2, 100},
		{"in +Inf gives the last bound", inf, 0.99, 1e-3, 3},
		{"empty", nil, 0.99, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := bucketQuantile(tt.b, tt.q)
			if got != tt.want || n != tt.wantCount {
				t.Fatalf("bucketQuantile = %v (n %v), want %v (n %v)", got, n, tt.want, tt.wantCount)
			}
		})
	}
	if m := bucketMax(b); m != 1e-2 {
		t.Fatalf("bucketMax = %v, want 0.01", m)
	}
	if m := bucketMax(inf); m != 1e-3 {
		t.Fatalf("bucketMax with +Inf = %v, want 0.001", m)
	}
}

func TestBucketDelta(t *testing.T) {
	a := &promSnapshot{buckets: map[string][]promBucket{"h": {{1, 2}, {math.Inf(1), 3}}}}
	b := &promSnapshot{buckets: map[string][]promBucket{"h": {{1, 5}, {math.Inf(1), 9}}}}
	d := bucketDelta(a, b, "h")
	if len(d) != 2 || d[0].count != 3 || d[1].count != 6 {
		t.Fatalf("delta %+v", d)
	}
	if b.buckets["h"][0].count != 5 {
		t.Fatal("bucketDelta modified its input")
	}
}
