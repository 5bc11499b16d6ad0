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
`

// typedMetrics is a histogram as client_golang writes it (with its TYPE
// line, which makes expfmt parse it as one), in two label sets.
const typedMetrics = `# HELP relay_forward_latency_seconds Read to written.
# TYPE relay_forward_latency_seconds histogram
relay_forward_latency_seconds_bucket{room="a",le="0.001"} 3
relay_forward_latency_seconds_bucket{room="a",le="+Inf"} 4
relay_forward_latency_seconds_sum{room="a"} 0.5
relay_forward_latency_seconds_count{room="a"} 4
relay_forward_latency_seconds_bucket{room="b",le="0.001"} 1
relay_forward_latency_seconds_bucket{room="b",le="+Inf"} 2
relay_forward_latency_seconds_sum{room="b"} 0.25
relay_forward_latency_seconds_count{room="b"} 2
# TYPE go_goroutines gauge
go_goroutines 42
`

func TestParseProm(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(sampleMetrics))
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
			if got, ok := s.Value(tt.name); got != tt.want || ok != tt.ok {
				t.Fatalf("value = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	b := s.Buckets["relay_gc_pause_seconds"]
	if len(b) != 5 || !math.IsInf(b[4].UpperBound, 1) {
		t.Fatalf("buckets %+v", b)
	}
}

func TestParsePromTypedHistogram(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(typedMetrics))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"relay_forward_latency_seconds_count": 6,
		"relay_forward_latency_seconds_sum":   0.75,
		"go_goroutines":                       42,
	} {
		if got, ok := s.Value(name); !ok || got != want {
			t.Errorf("%s = %v, %v; want %v", name, got, ok, want)
		}
	}
	b := s.Buckets["relay_forward_latency_seconds"]
	if len(b) != 2 || b[0].UpperBound != 0.001 || b[0].Count != 4 || !math.IsInf(b[1].UpperBound, 1) || b[1].Count != 6 {
		t.Fatalf("buckets summed over label sets: %+v", b)
	}
}

func TestParsePromRejectsGarbage(t *testing.T) {
	// A page the parser cannot read is an error, not a partial scrape.
	if _, err := parseMetrics(strings.NewReader(sampleMetrics + "garbage line without value\n")); err == nil {
		t.Fatal("a line without a value parsed")
	}
}
