package mix

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValue reads a counter.
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func gaugeValue(tb testing.TB, g prometheus.Gauge) float64 {
	tb.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"relay_mix_inputs", "relay_mix_frames_concealed_total",
		"relay_mix_frames_fec_recovered_total", "relay_mix_ticks_late_total", "relay_mix_tick_duration_seconds",
		"relay_mix_errors_total", "relay_mix_packets_dropped_total"} {
		if !names[want] {
			t.Errorf("%s not registered", want)
		}
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice with one registry succeeded")
	}
}
