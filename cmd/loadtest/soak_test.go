package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lianmai/relay/loadtest/report"
)

// soakReport makes a report of a 240 s window sampled every 5 s whose
// heap in use saws between base and 1.6 × base (a GC cycle every 15 s),
// scaled by grow over the window, with goroutines at 2000 × gorGrow at
// the end.
func soakReport(heapGrow, gorGrow float64, lost int64) *report.Report {
	rep := &report.Report{WindowSeconds: 240}
	rep.Scenario = json.RawMessage(`{"name": "soak"}`)
	rep.Audio.ExpectedFrames, rep.Audio.LostFrames = 100000, lost
	rep.Series = append(rep.Series, report.Sample{T: 5, Phase: "ramp"})
	for i := 0; i <= 48; i++ {
		f := float64(i) / 48
		saw := 1 + 0.2*float64(i%3)
		rep.Series = append(rep.Series, report.Sample{
			T: 10 + float64(i)*5, Phase: "measure", Up: 84, RelayOutPPS: 25000,
			RelayHeapInuse:  20e6 * saw * (1 + (heapGrow-1)*f),
			RelayGoroutines: 2000 * (1 + (gorGrow-1)*f),
			RelayRSSBytes:   60e6,
		})
	}
	return rep
}

// withLive adds a live heap of 20 MB × grow at the end (linear) to rep's
// samples, as relays that export relay_gc_heap_live_bytes report it.
func withLive(rep *report.Report, grow float64) *report.Report {
	for i := range rep.Series {
		f := float64(i) / float64(len(rep.Series)-1)
		rep.Series[i].RelayHeapLive = 20e6 * (1 + (grow-1)*f)
	}
	return rep
}

func TestSoakCheck(t *testing.T) {
	o := soakOptions{warmup: 120e9, span: 30e9, tolerance: 10, every: 30e9}
	tests := []struct {
		name string
		rep  *report.Report
		want string // in the error; "" passes
	}{
		{"steady", soakReport(1, 1, 0), ""},
		{"heap grows", soakReport(1.5, 1, 0), "heap in use"},
		{"goroutines leak", soakReport(1, 1.6, 0), "goroutines"},
		{"frames lost", soakReport(1, 1, 3), "lost nothing"},
		// Heap in use drifting up while the live heap is flat (as in the
		// 30-minute soak) passes; a growing live heap fails.
		{"live heap flat, heap in use drifts", withLive(soakReport(1.15, 1, 0), 1), ""},
		{"live heap grows", withLive(soakReport(1, 1, 0), 1.5), "live heap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := checkSoak(tt.rep, o, &out)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkSoak: %v\n%s", err, out.String())
			case tt.want != "" && (!errors.Is(err, errSoakFailed) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("checkSoak: %v, want a failure naming %q\n%s", err, tt.want, out.String())
			}
			if !strings.Contains(out.String(), "heap") || strings.Count(out.String(), "\n") < 12 {
				t.Fatalf("no timeline:\n%s", out.String())
			}
		})
	}
	t.Run("window too short", func(t *testing.T) {
		rep := soakReport(1, 1, 0)
		rep.WindowSeconds = 150
		if err := checkSoak(rep, o, &strings.Builder{}); err == nil || errors.Is(err, errSoakFailed) || !strings.Contains(err.Error(), "too short") {
			t.Fatalf("checkSoak of a short window: %v", err)
		}
	})
	t.Run("no relay metrics", func(t *testing.T) {
		rep := soakReport(1, 1, 0)
		for i := range rep.Series {
			rep.Series[i].RelayHeapInuse = 0
		}
		if err := checkSoak(rep, o, &strings.Builder{}); err == nil || errors.Is(err, errSoakFailed) {
			t.Fatalf("checkSoak without heap figures: %v", err)
		}
	})
}

// TestSoakCheckCommand: exit statuses of `loadtest soakcheck`.
func TestSoakCheckCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(rep *report.Report) string {
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "r.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"pass", []string{"soakcheck", write(soakReport(1, 1, 0))}, exitOK, "soak: PASS"},
		{"plan", []string{"soakcheck", "-plan", "4m"}, exitOK, "240"},
		{"plan too short", []string{"soakcheck", "-plan", "2m"}, exitUsage, ""},
		{"no report", []string{"soakcheck"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(t.Context(), tt.args, noEnv, &out, &errOut); code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errOut.String())
			}
		})
	}
	t.Run("fail", func(t *testing.T) {
		var out, errOut strings.Builder
		if code := run(t.Context(), []string{"soakcheck", write(soakReport(1.5, 1, 0))}, noEnv, &out, &errOut); code != exitFailed ||
			!strings.Contains(errOut.String(), "soak check failed") {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, errOut.String())
		}
	})
}
