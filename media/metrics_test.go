package media

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDropReasonsHaveCounters: every reason has its own label value in
// relay_packets_dropped_total, exported from the start.
func TestDropReasonsHaveCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range DropReasons() {
		for range i + 1 {
			m.Dropped(r).Inc()
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	doubleReleases := false
	for _, mf := range mfs {
		switch mf.GetName() {
		case "relay_packets_dropped_total":
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if l.GetName() == "reason" {
						got[l.GetValue()] = mt.GetCounter().GetValue()
					}
				}
			}
		case "relay_bufpool_double_releases_total":
			doubleReleases = true
		}
	}
	if len(got) != len(DropReasons()) {
		t.Errorf("dropped counters %v, want one per reason %v", got, DropReasons())
	}
	for i, r := range DropReasons() {
		if got[r.String()] != float64(i+1) {
			t.Errorf("reason %s: counter %v, want %d", r, got[r.String()], i+1)
		}
	}
	if !doubleReleases {
		t.Error("relay_bufpool_double_releases_total is not exported")
	}
	if s, want := DropReason(len(DropReasons())).String(), fmt.Sprintf("DropReason(%d)", len(DropReasons())); s != want {
		t.Errorf("an unknown reason prints as %q, want %q", s, want)
	}
}
