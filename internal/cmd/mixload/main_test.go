package main

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func parse(t *testing.T, text string) families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	f, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const histBefore = `# TYPE h histogram
h_bucket{le="0.001"} 10
h_bucket{le="0.01"} 10
h_bucket{le="+Inf"} 10
h_sum 0
h_count 10
# TYPE c counter
c 5
`

// The quantiles are of what the histogram gained between the scrapes, as
// bucket bounds; past the last finite bound is reported as such.
func TestQuantile(t *testing.T) {
	before := parse(t, histBefore)
	after := parse(t, `# TYPE h histogram
h_bucket{le="0.001"} 108
h_bucket{le="0.01"} 109
h_bucket{le="+Inf"} 110
h_sum 0
h_count 110
# TYPE c counter
c 7.5
`)
	q, n, err := quantile(before, after, "h", 0.5, 0.99, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("%d new samples, want 100", n)
	}
	if q[0] != 0.001 || q[1] != 0.01 || !math.IsInf(q[2], 1) {
		t.Errorf("quantiles %v, want 0.001, 0.01 and past the last bound", q)
	}
	if got := ms(q[2]); got != "> the last bucket" {
		t.Errorf("ms(past the last bound) = %q", got)
	}
	if d := after.value("c") - before.value("c"); d != 2.5 {
		t.Errorf("counter delta %v, want 2.5", d)
	}
	if v := after.value("missing"); v != 0 {
		t.Errorf("a missing metric reads %v, want 0", v)
	}
	if _, _, err := quantile(before, after, "c", 0.5); err == nil {
		t.Error("quantile of a counter: no error")
	}
}
