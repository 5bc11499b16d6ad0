package report

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// snapAt is a snapshot k-scaled counters at second sec, with the relay's
// /metrics and its /proc when proc is set.
func snapAt(sec, k float64, proc bool) Snapshot {
	s := Snapshot{
		Nanos:   int64(sec * 1e9),
		SelfCPU: time.Duration(k * 1e8),
		Packets: uint64(k * 1000),
		Late:    uint64(k),
		Host:    &HostCPU{Busy: time.Duration(k * 1e9), Steal: time.Duration(k * 1e7)},
		Metrics: &Metrics{
			Values: map[string]float64{
				"relay_packets_out_total":       k * 2000,
				"process_cpu_seconds_total":     k * 0.2,
				"process_resident_memory_bytes": k * 1e6,
			},
			Buckets: map[string][]Bucket{
				"relay_gc_pause_seconds":     {{1e-4, k * 9}, {1e-3, k * 10}, {math.Inf(1), k * 10}},
				"relay_join_latency_seconds": {{0.01, k}, {0.1, 2 * k}, {math.Inf(1), 2 * k}},
			},
		},
	}
	if proc {
		s.Relay = &Process{CPU: time.Duration(k * 3e8), RSS: int64(k * 2e6)}
	}
	return s
}

func TestBuild(t *testing.T) {
	m := &Measurements{
		Scenario: json.RawMessage(`{"name":"t"}`),
		Before:   snapAt(0, 1, false), Start: snapAt(10, 2, false), End: snapAt(20, 4, false),
		Audio:         Audio{ExpectedFrames: 1000, LostFrames: 9, LateFrames: 5, StutterFrames: 20},
		SenderDropped: 100,
		Received:      500,
		Series:        []Sample{{RelayRSSBytes: 9e6}},
	}
	m.OneWay.Add(int64(2 * time.Millisecond))
	rep := Build(m)
	a, rl := rep.Audio, rep.Relay
	if rep.WindowSeconds != 10 || a.LossPct != 1 || a.LatePct != 1 || a.StutterPct != 2 || a.OneWayMs.Count != 1 {
		t.Fatalf("window %v s, audio %+v", rep.WindowSeconds, a)
	}
	if !rl.MetricsOK || rl.CPUSource != "metrics" || rl.CPUSeconds != 0.4 || rl.PacketsOutPerSec != 400 || rl.CPUMicrosPerPacket != 100 {
		t.Fatalf("relay CPU and packets %+v", rl)
	}
	// 20 pauses in the window, 18 under 0.1 ms; joins counted from Before.
	if rl.GCPauses != 20 || rl.GCPauseP99Ms != 1 || rl.GCPauseMaxMs != 1 || rl.JoinP50Ms != 10 || rl.JoinP99Ms != 100 {
		t.Fatalf("relay histograms %+v", rl)
	}
	if rl.RSSBytes != 4e6 || rl.RSSMaxBytes != 9e6 {
		t.Fatalf("relay RSS %v, max %v; want the end's and the series' peak", rl.RSSBytes, rl.RSSMaxBytes)
	}
	if rep.Loadgen.CPUPct != 2 || rep.Host.BusyPct != 20 || rep.Host.OtherPct != 14 {
		t.Fatalf("load generator %+v, host %+v", rep.Loadgen, rep.Host)
	}
	// Lists are [] in the JSON, never null: the scripts iterate them.
	if rep.Warnings == nil || rep.Joins.Failures == nil || rep.Audio.Missing == nil || rep.Mic.Failures == nil || rep.Charts.OneWayCDF == nil {
		t.Fatalf("a nil list in %+v", rep)
	}

	m.Start, m.End = snapAt(10, 2, true), snapAt(20, 4, true)
	if rl := Build(m).Relay; rl.CPUSource != "proc" || rl.CPUSeconds != 0.6 || rl.RSSBytes != 8e6 {
		t.Fatalf("with the relay's /proc: %+v", rl)
	}
}

func TestNewSample(t *testing.T) {
	s := NewSample(int64(5e9), snapAt(10, 2, false), snapAt(12, 4, false), "measure", 7)
	want := Sample{T: 7, Phase: "measure", Up: 7, RecvPPS: 1000, Late: 2, RelayOutPPS: 2000, RelayCPUPct: 20,
		LoadgenCPUPct: 10, RelayRSSBytes: 4e6, OtherCPUPct: 70}
	if s != want {
		t.Fatalf("NewSample = %+v\nwant       %+v", s, want)
	}
	if s := NewSample(0, Snapshot{Nanos: 1}, Snapshot{Nanos: 1}, "ramp", 1); s.RecvPPS != 0 || s.Phase != "ramp" {
		t.Fatalf("an empty interval gives rates: %+v", s)
	}
}

// TestBuildMix checks the mix's figures: a class of their own, its
// percentages from its own counts, and the summary's mix lines only when
// the run had mix listeners.
func TestBuildMix(t *testing.T) {
	m := &Measurements{
		Scenario: json.RawMessage(`{"name":"t"}`),
		Start:    snapAt(10, 2, false), End: snapAt(20, 4, false),
		Audio: Audio{ExpectedFrames: 100, StutterFrames: 1, Mix: Mix{
			Listeners: 3, Receivers: 2, Streams: 2, ExpectedPackets: 1000, LostPackets: 5,
			ExpectedFrames: 1000, StutterFrames: 20, LateFrames: 10, MissingListeners: 1, TracksInstead: 1,
			Decoded: Decoded{FramesDecoded: 99, FramesConcealed: 1},
		}},
		MixReceived:      500,
		MixFirstPacketMs: []float64{30, 10, 20},
	}
	m.MixLateness.Add(int64(3 * time.Millisecond))
	rep := Build(m)
	x := rep.Audio.Mix
	if x.LossPct != 0.5 || x.LatePct != 2 || x.StutterPct != 2 || x.Decoded.StutterPct != 1 || x.LatenessMs.Count != 1 || x.FirstPacketMs.P50 != 20 {
		t.Fatalf("mix figures %+v", x)
	}
	if rep.Audio.StutterPct != 1 || x.Missing == nil {
		t.Fatalf("tracks stutter %v (want 1: the mix's counts stay out of it), missing list %v", rep.Audio.StutterPct, x.Missing)
	}
	var sum strings.Builder
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mix (audience on the room's mix)  3 listeners, 2 received it", "2.000% (20 of 1000 frames)", "MISSING", "TRACKS INSTEAD"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "ignored join's listen") {
		t.Errorf("no warning for the listeners that got tracks instead: %v", rep.Warnings)
	}

	sum.Reset()
	if err := Build(&Measurements{Scenario: m.Scenario}).WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sum.String(), "mix") {
		t.Errorf("a run without mix listeners prints mix lines:\n%s", sum.String())
	}
}

// The relay's CPU per join: the ramp's CPU less its forwarding at the
// window's cost per packet, per join.
func TestCPUPerJoin(t *testing.T) {
	// The ramp: 0.3 s of relay CPU, 2,000 packets out.
	r := Ramp{Start: snapAt(1, 1, true), End: snapAt(2, 2, true), Joined: 10}
	if got := cpuPerJoin(r, 100); got != 10 { // (0.3 - 2000 × 100 µs) / 10 = 10 ms
		t.Errorf("cpuPerJoin = %v ms, want 10", got)
	}
	if got := cpuPerJoin(r, 0); got != 30 {
		t.Errorf("without a cost per packet: %v ms, want 30", got)
	}
	if got := cpuPerJoin(r, 1000); got != 0 {
		t.Errorf("forwarding estimated above the CPU: %v ms, want 0 (not negative)", got)
	}
	r.Joined = 0
	if got := cpuPerJoin(r, 100); got != 0 {
		t.Errorf("no joins: %v, want 0", got)
	}
	end := snapAt(2, 2, true)
	end.Relay.CPU = 1300 * time.Millisecond // 1 s of CPU over the ramp
	m := &Measurements{Scenario: json.RawMessage(`{"name":"t"}`),
		Before: snapAt(0, 1, true), Start: snapAt(10, 2, true), End: snapAt(20, 4, true),
		AudienceRamp: Ramp{Start: snapAt(1, 1, true), End: end, Joined: 10}}
	// The window: 0.6 s of CPU for 4,000 packets, 150 µs each; the ramp's
	// 2,000 packets cost 0.3 s of its 1 s.
	if rl := Build(m).Relay; rl.CPUMsPerJoin != 70 || rl.CPUMicrosPerPacket != 150 {
		t.Errorf("Build: %v ms per join at %v µs per packet, want 70 at 150", rl.CPUMsPerJoin, rl.CPUMicrosPerPacket)
	}
}
