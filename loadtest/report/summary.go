package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteSummary prints the report as a table for people.
func (rep *Report) WriteSummary(w io.Writer) error {
	sc := rep.scenarioHead()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(tw, "scenario %s: %d room(s) x (%d host + %d guest + %d audience), %.1f s window\n",
		sc.Name, sc.Rooms, sc.Hosts, sc.Guests, sc.Audience, rep.WindowSeconds)
	j := rep.Joins
	row("joins", "%d/%d succeeded, %d failed", j.Succeeded, j.Attempted, j.Failed)
	row("  joined (ws)", "%s", distMs(j.JoinedMs))
	row("  first packet (join latency)", "%s", distMs(j.FirstPacketMs))
	a := rep.Audio
	row("audio", "%d publishers, %d receivers, %d streams, %d packets", a.Publishers, a.Receivers, a.Streams, a.PacketsReceived)
	if u := a.Uplink; u.Lost > 0 || u.NACKs > 0 {
		row("  uplink loss (before repair)", "%.3f%% (%d of %d packets); the relay NACKed %d packets in %d NACKs, %d retransmitted (%d lost again)",
			u.LossPct, u.Lost, u.Packets, u.NACKedPackets, u.NACKs, u.Retransmissions, u.RetransmissionsLost)
	}
	row("  loss (as received)", "%.3f%% (%d frames)", a.LossPct, a.LostFrames)
	if a.RepairedFrames > 0 {
		row("  repaired (NACK)", "%d frames, send to arrival %s", a.RepairedFrames, distMs(a.RepairMs))
	}
	row("  late (>40 ms)", "%.3f%% (%d frames)", a.LatePct, a.LateFrames)
	row("  stutter (40 ms deadline)", "%.3f%% (%d of %d frames); decoded sample %.3f%% over %d streams",
		a.StutterPct, a.StutterFrames, a.ExpectedFrames, a.Decoded.StutterPct, a.Decoded.Streams)
	row("  one-way latency", "%s", distMs(a.OneWayMs))
	if a.MissingPublishers > 0 {
		row("  MISSING", "%d (receiver, publisher) pairs never flowed", a.MissingPublishers)
	}
	if x := a.Mix; x.Listeners > 0 || x.Streams > 0 {
		row("mix (audience on the room's mix)", "%d listeners, %d received it, %d streams, %d packets", x.Listeners, x.Receivers, x.Streams, x.PacketsReceived)
		row("  loss (sequence gaps)", "%.3f%% (%d of %d packets); %d frames skipped by the mix clock", x.LossPct, x.LostPackets, x.ExpectedPackets, x.SkippedFrames)
		row("  late (>40 ms after due)", "%.3f%% (%d frames)", x.LatePct, x.LateFrames)
		row("  stutter (40 ms deadline)", "%.3f%% (%d of %d frames); decoded sample %.3f%% over %d streams",
			x.StutterPct, x.StutterFrames, x.ExpectedFrames, x.Decoded.StutterPct, x.Decoded.Streams)
		row("  lateness (arrival - due)", "%s", distMs(x.LatenessMs))
		row("  first packet (join latency)", "%s", distMs(x.FirstPacketMs))
		if x.MissingListeners > 0 {
			row("  MISSING", "%d listeners never got the mix", x.MissingListeners)
		}
		if x.TracksInstead > 0 {
			row("  TRACKS INSTEAD", "%d listeners got the publishers' tracks instead of the mix", x.TracksInstead)
		}
	}
	rl := rep.Relay
	if rl.CPUSource != "" {
		row("relay cpu", "%.1f%% of a core (%s), %.0f pkt/s out, %.2f µs per forwarded packet",
			rl.CPUPct, rl.CPUSource, rl.PacketsOutPerSec, rl.CPUMicrosPerPacket)
	} else {
		row("relay cpu", "unknown (no /metrics and no -relay-pid)")
	}
	if rl.CPUMsPerJoin > 0 {
		row("relay cpu per join", "%.2f ms per audience join (the audience's joins, less forwarding)", rl.CPUMsPerJoin)
	}
	if rl.MetricsOK {
		row("relay gc", "%.0f pauses, p99 <= %.3f ms, max <= %.3f ms, %.2f%% of CPU; GOGC %.0f",
			rl.GCPauses, rl.GCPauseP99Ms, rl.GCPauseMaxMs, rl.GCCPUPct, rl.GOGC)
		row("relay forwarding", "read to written p50 <= %.3f ms, p99 <= %.3f ms (sampled 1 in 16)", rl.ForwardP50Ms, rl.ForwardP99Ms)
		row("relay fan-out", "read to last copy sent p50 <= %.3f ms, p99 <= %.3f ms; %.3f wake-ups per packet out", rl.FanoutP50Ms, rl.FanoutP99Ms, rl.WakeupsPerPacket)
		row("relay memory", "RSS %.1f MiB (max %.1f MiB), %.0f goroutines, %.0f packets dropped",
			rl.RSSBytes/(1<<20), rl.RSSMaxBytes/(1<<20), rl.Goroutines, rl.PacketsDropped)
	}
	lg := rep.Loadgen
	row("load generator", "%.1f%% of a core, %.2f µs per received packet, pacer late %s",
		lg.CPUPct, lg.CPUMicrosPerPacket, distMs(a.PacerLateMs))
	if sc.ChurnPerMin > 0 {
		row("churn", "%d leaves, %d rejoins, %d leave errors", rep.Churn.Leaves, rep.Churn.Rejoins, rep.Churn.LeaveErrors)
	}
	if rep.Mic.Enabled {
		m := rep.Mic
		status := ""
		if m.Unsupported {
			status = " — the relay does not implement mic_request (bad_request)"
		}
		row("mic cycles", "%d attempted, %d granted, %d released%s", m.Attempts, m.Granted, m.Released, status)
		if m.Granted > 0 {
			row("  mic_request to guest", "%s", distMs(m.GrantMs))
			row("  guest to first frame sent", "%s", distMs(m.PublishMs))
			row("  guest to host's first packet", "%s", distMs(m.HostHeardMs))
		}
	}
	if rep.PK.Enabled {
		k := rep.PK
		row("pk links", "%d pairs of rooms linked", k.Links)
		row("  pk_accept to the other room's first packet", "%s", distMs(k.SetupMs))
		row("  host to remote host (one way)", "%s", distMs(k.RemoteHostMs))
		row("  host to own room's host/guest", "%s", distMs(k.LocalHostMs))
		for _, f := range k.Failures {
			row("  pk failure", "%s", f)
		}
	}
	rep.Cluster.writeSummary(row)
	for _, f := range j.Failures {
		row("  join failure", "%s", f)
	}
	for _, m := range a.Missing {
		row("  missing", "%s", m)
	}
	for _, m := range a.Mix.Missing {
		row("  missing mix", "%s", m)
	}
	for _, f := range rep.Mic.Failures {
		row("  mic failure", "%s", f)
	}
	for _, wmsg := range rep.Warnings {
		row("warning", "%s", strings.ReplaceAll(wmsg, "\n", " "))
	}
	return tw.Flush()
}

func distMs(d Dist) string {
	if d.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %.2f  p95 %.2f  p99 %.2f  max %.2f ms (n=%d)", d.P50, d.P95, d.P99, d.Max, d.Count)
}
