package report

import (
	"math"
	"testing"
)

func TestBucketQuantile(t *testing.T) {
	b := []Bucket{{5e-6, 0}, {1e-4, 90}, {1e-3, 99}, {1e-2, 100}, {math.Inf(1), 100}}
	inf := []Bucket{{1e-3, 1}, {math.Inf(1), 3}}
	tests := []struct {
		name      string
		b         []Bucket
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
	a := &Metrics{Buckets: map[string][]Bucket{"h": {{1, 2}, {math.Inf(1), 3}}}}
	b := &Metrics{Buckets: map[string][]Bucket{"h": {{1, 5}, {math.Inf(1), 9}}}}
	d := bucketDelta(a, b, "h")
	if len(d) != 2 || d[0].Count != 3 || d[1].Count != 6 {
		t.Fatalf("delta %+v", d)
	}
	if b.Buckets["h"][0].Count != 5 {
		t.Fatal("bucketDelta modified its input")
	}
}
