package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/lianmai/relay/loadtest"
	"github.com/lianmai/relay/loadtest/report"
)

// figure is one headline figure of a report.
type figure struct {
	name string
	get  func(*report.Report) float64
}

// headline are the figures `loadtest summarize` prints, as medians over
// runs: what docs/loadtest.md's current-figures table quotes.
var headline = []figure{
	{"participants", func(r *report.Report) float64 { return float64(r.Joins.Succeeded) }},
	{"join failures", func(r *report.Report) float64 { return float64(r.Joins.Failed) }},
	{"join latency p50 (ms)", func(r *report.Report) float64 { return r.Joins.FirstPacketMs.P50 }},
	{"join latency p95 (ms)", func(r *report.Report) float64 { return r.Joins.FirstPacketMs.P95 }},
	{"join latency p99 (ms)", func(r *report.Report) float64 { return r.Joins.FirstPacketMs.P99 }},
	{"join latency max (ms)", func(r *report.Report) float64 { return r.Joins.FirstPacketMs.Max }},
	{"one-way p50 (ms)", func(r *report.Report) float64 { return r.Audio.OneWayMs.P50 }},
	{"one-way p99 (ms)", func(r *report.Report) float64 { return r.Audio.OneWayMs.P99 }},
	{"one-way max (ms)", func(r *report.Report) float64 { return r.Audio.OneWayMs.Max }},
	{"loss (%)", func(r *report.Report) float64 { return r.Audio.LossPct }},
	{"late (%)", func(r *report.Report) float64 { return r.Audio.LatePct }},
	{"stutter (%)", func(r *report.Report) float64 { return r.Audio.StutterPct }},
	{"stutter, decoded sample (%)", func(r *report.Report) float64 { return r.Audio.Decoded.StutterPct }},
	{"relay packets out/s", func(r *report.Report) float64 { return r.Relay.PacketsOutPerSec }},
	{"relay CPU (% of a core)", func(r *report.Report) float64 { return r.Relay.CPUPct }},
	{"relay CPU µs per forwarded packet", func(r *report.Report) float64 { return r.Relay.CPUMicrosPerPacket }},
	{"relay wake-ups per forwarded packet", func(r *report.Report) float64 { return r.Relay.WakeupsPerPacket }},
	{"relay fan-out p50 (ms, bucket)", func(r *report.Report) float64 { return r.Relay.FanoutP50Ms }},
	{"relay fan-out p99 (ms, bucket)", func(r *report.Report) float64 { return r.Relay.FanoutP99Ms }},
	{"relay GC pauses in window", func(r *report.Report) float64 { return r.Relay.GCPauses }},
	{"relay GC pause p99 (ms, bucket)", func(r *report.Report) float64 { return r.Relay.GCPauseP99Ms }},
	{"relay GC pause max (ms, bucket)", func(r *report.Report) float64 { return r.Relay.GCPauseMaxMs }},
	{"relay GC CPU (%)", func(r *report.Report) float64 { return r.Relay.GCCPUPct }},
	{"relay RSS (MiB)", func(r *report.Report) float64 { return r.Relay.RSSBytes / (1 << 20) }},
	{"relay goroutines", func(r *report.Report) float64 { return r.Relay.Goroutines }},
	{"load generator CPU (% of a core)", func(r *report.Report) float64 { return r.Loadgen.CPUPct }},
	{"load generator CPU µs per received packet", func(r *report.Report) float64 { return r.Loadgen.CPUMicrosPerPacket }},
	{"pacer lateness p99 (ms)", func(r *report.Report) float64 { return r.Audio.PacerLateMs.P99 }},
	{"other processes (% of a core)", func(r *report.Report) float64 { return r.Host.OtherPct }},
}

// optional are figures printed only when some run has them: injected
// loss and its repair, mic cycling.
var optional = []figure{
	{"uplink loss before repair (%)", func(r *report.Report) float64 { return r.Audio.Uplink.LossPct }},
	{"uplink packets lost", func(r *report.Report) float64 { return float64(r.Audio.Uplink.Lost) }},
	{"NACKs to publishers", func(r *report.Report) float64 { return float64(r.Audio.Uplink.NACKs) }},
	{"packets NACKed", func(r *report.Report) float64 { return float64(r.Audio.Uplink.NACKedPackets) }},
	{"retransmissions", func(r *report.Report) float64 { return float64(r.Audio.Uplink.Retransmissions) }},
	{"repaired frames", func(r *report.Report) float64 { return float64(r.Audio.RepairedFrames) }},
	{"repair p50 (ms)", func(r *report.Report) float64 { return r.Audio.RepairMs.P50 }},
	{"repair p95 (ms)", func(r *report.Report) float64 { return r.Audio.RepairMs.P95 }},
	{"mic cycles granted", func(r *report.Report) float64 { return float64(r.Mic.Granted) }},
	{"mic request to guest p50 (ms)", func(r *report.Report) float64 { return r.Mic.GrantMs.P50 }},
	{"mic guest to first frame p50 (ms)", func(r *report.Report) float64 { return r.Mic.PublishMs.P50 }},
	{"mic guest to host's first packet p50 (ms)", func(r *report.Report) float64 { return r.Mic.HostHeardMs.P50 }},
	{"mic guest to host's first packet p99 (ms)", func(r *report.Report) float64 { return r.Mic.HostHeardMs.P99 }},
	{"mic guest to host's first packet max (ms)", func(r *report.Report) float64 { return r.Mic.HostHeardMs.Max }},
	{"pk links", func(r *report.Report) float64 { return float64(r.PK.Links) }},
	{"pk_accept to the other room's first packet p50 (ms)", func(r *report.Report) float64 { return r.PK.SetupMs.P50 }},
	{"pk_accept to the other room's first packet max (ms)", func(r *report.Report) float64 { return r.PK.SetupMs.Max }},
	{"host to remote host p50 (ms)", func(r *report.Report) float64 { return r.PK.RemoteHostMs.P50 }},
	{"host to remote host p99 (ms)", func(r *report.Report) float64 { return r.PK.RemoteHostMs.P99 }},
	{"host to own room's publisher p50 (ms)", func(r *report.Report) float64 { return r.PK.LocalHostMs.P50 }},
	{"host to own room's publisher p99 (ms)", func(r *report.Report) float64 { return r.PK.LocalHostMs.P99 }},
}

// mixFigures are the audience mix's figures (a stream class of its own),
// printed, zeros included, when some run had mix listeners.
var mixFigures = []figure{
	{"mix listeners", func(r *report.Report) float64 { return float64(r.Audio.Mix.Listeners) }},
	{"mix receivers", func(r *report.Report) float64 { return float64(r.Audio.Mix.Receivers) }},
	{"mix loss (%)", func(r *report.Report) float64 { return r.Audio.Mix.LossPct }},
	{"mix late (%)", func(r *report.Report) float64 { return r.Audio.Mix.LatePct }},
	{"mix stutter (%)", func(r *report.Report) float64 { return r.Audio.Mix.StutterPct }},
	{"mix stutter, decoded sample (%)", func(r *report.Report) float64 { return r.Audio.Mix.Decoded.StutterPct }},
	{"mix skipped frames", func(r *report.Report) float64 { return float64(r.Audio.Mix.SkippedFrames) }},
	{"mix lateness p99 (ms)", func(r *report.Report) float64 { return r.Audio.Mix.LatenessMs.P99 }},
	{"mix join latency p50 (ms)", func(r *report.Report) float64 { return r.Audio.Mix.FirstPacketMs.P50 }},
	{"mix join latency p99 (ms)", func(r *report.Report) float64 { return r.Audio.Mix.FirstPacketMs.P99 }},
	{"mix listeners missing the mix", func(r *report.Report) float64 { return float64(r.Audio.Mix.MissingListeners) }},
}

// summarize prints the median, min and max of the headline figures over
// the JSON reports named by paths (several runs of one scenario), and of
// the optional figures some run has.
func summarize(paths []string, out io.Writer) error {
	if len(paths) == 0 {
		return fmt.Errorf("summarize: name the JSON reports (-json) of the runs to summarize")
	}
	var reps []*report.Report
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("summarize: %w", err)
		}
		var r report.Report
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("summarize: %s is not a loadtest JSON report: %w", p, err)
		}
		reps = append(reps, &r)
	}
	sc, err := loadtest.ScenarioOf(reps[0])
	if err != nil {
		return fmt.Errorf("summarize: %s: %w", paths[0], err)
	}
	fmt.Fprintf(out, "%s: %d room(s) x (%d host + %d guest + %d audience), %d run(s)\n",
		sc.Name, sc.Rooms, sc.Hosts, sc.Guests, sc.Audience, len(reps))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tmedian\tmin\tmax\t")
	row := func(f figure, always bool) {
		var v []float64
		for _, r := range reps {
			v = append(v, f.get(r))
		}
		slices.Sort(v)
		if !always && v[0] == 0 && v[len(v)-1] == 0 {
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", f.name, num(median(v)), num(v[0]), num(v[len(v)-1]))
	}
	for _, f := range headline {
		row(f, true)
	}
	if slices.ContainsFunc(reps, func(r *report.Report) bool { return r.Audio.Mix.Listeners > 0 || r.Audio.Mix.Streams > 0 }) {
		for _, f := range mixFigures {
			row(f, true)
		}
	}
	for _, f := range optional {
		row(f, false)
	}
	for _, f := range clusterFigures(reps) {
		row(f, true)
	}
	return tw.Flush()
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
