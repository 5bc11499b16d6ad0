package report

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// cdfPoints is how many points each CDF keeps for the charts.
const cdfPoints = 200

// Measurements is what a run measured, as the measuring side hands it
// over: the counts it tallied, the samples and histograms behind each
// distribution, and the snapshots that bound the window. Build turns them
// into a Report; keeping every derived figure here means the JSON, the
// summary and the HTML page cannot disagree on how one is computed.
type Measurements struct {
	StartedAt, FinishedAt time.Time
	Scenario              json.RawMessage // the Report's Scenario
	Machine               Machine
	Target                Target
	// Before is taken before the ramp (the baseline of the relay's join
	// latency histogram); Start and End open and close the window.
	Before, Start, End Snapshot
	// AudienceRamp is taken around the audience's joins (after the
	// publishers'), for the relay's CPU per join.
	AudienceRamp Ramp

	// Joins holds the counts and failures; Build fills its distributions
	// from JoinedMs and ConnectedMs (one value per join) and FirstPacketMs
	// (one per (receiver, publisher)).
	Joins                                Joins
	JoinedMs, ConnectedMs, FirstPacketMs []float64

	// Audio holds the counts, summed over streams; Build fills its
	// percentages and distributions.
	Audio Audio
	// OneWay is the one-way latency of every in-window packet, Repair that
	// of the frames NACK repaired, PacerLate how late publishers woke.
	OneWay, Repair, PacerLate Hist
	SenderDropped             int64  // in-window frames their senders dropped (injected loss)
	Received                  uint64 // in-window frames received: what LatePct is a share of

	// MixLateness is every in-window mix packet's arrival after its due
	// time, MixFirstPacketMs the dial to each listener's first mix packet
	// (ms), MixReceived the in-window mix packets received (what the mix's
	// LatePct is a share of). Audio.Mix holds the counts.
	MixLateness      Hist
	MixFirstPacketMs []float64
	MixReceived      uint64

	Churn Churn
	// Mic holds the counts and failures; Build fills its distributions
	// from the samples below, in ms.
	Mic                                                    Mic
	MicGrantMs, MicReleaseMs, MicPublishMs, MicHostHeardMs []float64

	// PK holds the links' counts and failures; Build fills its
	// distributions from PKSetupMs and the hosts' latency histograms.
	PK                        PK
	PKSetupMs                 []float64
	PKRemoteHost, PKLocalHost Hist

	LoadgenRSS    int64    // the load generator's resident set at the end, bytes
	GOMAXPROCS    int      // the load generator's
	ForeignTracks uint64   // tracks from publishers this run did not start
	Series        []Sample // the time series; its peak gives the relay's RSS max
	Warnings      []string // the run's own; Build adds what the figures call for
	// Cluster is a run over several relays; nil for one relay. Every
	// figure above is of the whole run (the relay's: the first node's).
	Cluster *ClusterMeasurements
}

// Build computes every figure of the report from m.
func Build(m *Measurements) *Report {
	start, end := m.Start, m.End
	window := float64(end.Nanos-start.Nanos) / 1e9
	rep := &Report{
		Version:       Version,
		StartedAt:     m.StartedAt,
		FinishedAt:    m.FinishedAt,
		Scenario:      m.Scenario,
		Machine:       m.Machine,
		Target:        m.Target,
		WindowSeconds: round3(window),
		Churn:         m.Churn,
		Mic:           m.Mic,
		Series:        m.Series,
		Warnings:      m.Warnings,
	}
	// Empty lists are written as [], not null, for the scripts that read
	// the JSON.
	if rep.Series == nil {
		rep.Series = []Sample{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	rep.Mic.GrantMs, rep.Mic.ReleaseMs = DistOf(m.MicGrantMs), DistOf(m.MicReleaseMs)
	rep.Mic.PublishMs, rep.Mic.HostHeardMs = DistOf(m.MicPublishMs), DistOf(m.MicHostHeardMs)
	if rep.Mic.Failures == nil {
		rep.Mic.Failures = []string{}
	}
	rep.PK = m.PK
	rep.PK.Failures = append([]string{}, m.PK.Failures...)
	rep.PK.SetupMs = DistOf(m.PKSetupMs)
	rep.PK.RemoteHostMs, rep.PK.LocalHostMs = m.PKRemoteHost.Dist(), m.PKLocalHost.Dist()
	rep.Audio = m.audio()
	rep.Joins = m.Joins
	rep.Joins.Failures = append([]string{}, m.Joins.Failures...)
	rep.Joins.JoinedMs = DistOf(m.JoinedMs)
	rep.Joins.ConnectedMs = DistOf(m.ConnectedMs)
	rep.Joins.FirstPacketMs = DistOf(m.FirstPacketMs)
	rep.Charts.JoinCDF = CDFOf(m.FirstPacketMs, cdfPoints)
	rep.Charts.OneWayCDF = m.OneWay.CDF(cdfPoints)
	rep.Relay = relayFigures(m.Before, start, end, window)
	rep.Relay.CPUMsPerJoin = cpuPerJoin(m.AudienceRamp, rep.Relay.CPUMicrosPerPacket)
	for _, s := range m.Series {
		rep.Relay.RSSMaxBytes = max(rep.Relay.RSSMaxBytes, s.RelayRSSBytes)
	}
	rep.Relay.RSSMaxBytes = max(rep.Relay.RSSMaxBytes, rep.Relay.RSSBytes)

	pkts := end.Packets - start.Packets
	cpu := (end.SelfCPU - start.SelfCPU).Seconds()
	rep.Loadgen = Loadgen{
		CPUSeconds: round3(cpu),
		RSSBytes:   m.LoadgenRSS,
		Goroutines: end.Goroutines,
		GOMAXPROCS: m.GOMAXPROCS,
	}
	if window > 0 {
		rep.Loadgen.CPUPct = round3(cpu / window * 100)
		rep.Loadgen.PacketsPerSec = round3(float64(pkts) / window)
	}
	if pkts > 0 {
		rep.Loadgen.CPUMicrosPerPacket = round3(cpu * 1e6 / float64(pkts))
	}
	if lg := rep.Loadgen.CPUPct / float64(max(rep.Machine.CPUsUsed, 1)); lg > 85 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf(
			"the load generator used %.0f%% of its CPU: one-way latency, late frames and stutter include its own queueing, not only the relay's", lg))
	}
	if h := hostShare(start, end); h.ok && window > 0 {
		rep.Host = Host{
			BusyPct:  round3(h.busy / window * 100),
			OtherPct: round3(h.other / window * 100),
			StealPct: round3(h.steal / window * 100),
		}
		if rep.Host.OtherPct > 10 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"other processes used %.0f%% of a core during the window: the machine was shared, the figures are noisy", rep.Host.OtherPct))
		}
	}
	if n := rep.Audio.Mix.TracksInstead; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf(
			"%d listeners asked for the mix and got the publishers' tracks instead: the relay ignored join's listen \"mix\" (has it the audience mix, issue 12?); their tracks count with the tracks", n))
	}
	var clusterWarnings []string
	rep.Cluster, clusterWarnings = m.Cluster.figures()
	rep.Warnings = append(rep.Warnings, clusterWarnings...)
	if n := m.ForeignTracks; n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d tracks came from publishers this run did not start (another load generator in the same rooms?)", n))
	}
	return rep
}

// audio is m.Audio with its percentages and distributions.
func (m *Measurements) audio() Audio {
	a := m.Audio
	a.LossPct = pct(float64(a.LostFrames), float64(a.ExpectedFrames-m.SenderDropped))
	a.Uplink.LossPct = pct(float64(a.Uplink.Lost), float64(a.Uplink.Packets))
	a.LatePct = pct(float64(a.LateFrames), float64(m.Received))
	a.StutterPct = pct(float64(a.StutterFrames), float64(a.ExpectedFrames))
	a.Decoded.StutterPct = pct(float64(a.Decoded.FramesConcealed), float64(a.Decoded.FramesDecoded+a.Decoded.FramesConcealed))
	a.OneWayMs = m.OneWay.Dist()
	a.RepairMs = m.Repair.Dist()
	a.PacerLateMs = m.PacerLate.Dist()
	if a.Missing == nil {
		a.Missing = []string{}
	}
	x := &a.Mix
	x.LossPct = pct(float64(x.LostPackets), float64(x.ExpectedPackets))
	x.LatePct = pct(float64(x.LateFrames), float64(m.MixReceived))
	x.StutterPct = pct(float64(x.StutterFrames), float64(x.ExpectedFrames))
	x.Decoded.StutterPct = pct(float64(x.Decoded.FramesConcealed), float64(x.Decoded.FramesDecoded+x.Decoded.FramesConcealed))
	x.LatenessMs = m.MixLateness.Dist()
	x.FirstPacketMs = DistOf(m.MixFirstPacketMs)
	if x.Missing == nil {
		x.Missing = []string{}
	}
	return a
}

// relayFigures computes the relay's figures over the window from start
// to end; the join latency counts from before, ahead of the ramp.
func relayFigures(before, start, end Snapshot, window float64) Relay {
	var rr Relay
	rr.MetricsOK = start.Metrics != nil && end.Metrics != nil
	if cpu, src, ok := relayCPU(start, end); ok {
		rr.CPUSource, rr.CPUSeconds = src, round3(cpu)
		if window > 0 {
			rr.CPUPct = round3(cpu / window * 100)
		}
	}
	rr.PacketsIn, _ = metricDelta(start.Metrics, end.Metrics, "relay_packets_in_total")
	rr.PacketsOut, _ = metricDelta(start.Metrics, end.Metrics, "relay_packets_out_total")
	rr.PacketsDropped, _ = metricDelta(start.Metrics, end.Metrics, "relay_packets_dropped_total")
	rr.NACKsRequested, _ = metricDelta(start.Metrics, end.Metrics, "relay_nack_requested_total")
	if window > 0 {
		rr.PacketsOutPerSec = round3(rr.PacketsOut / window)
	}
	if rr.PacketsOut > 0 && rr.CPUSource != "" {
		rr.CPUMicrosPerPacket = round3(rr.CPUSeconds * 1e6 / rr.PacketsOut)
	}
	pauses := bucketDelta(start.Metrics, end.Metrics, "relay_gc_pause_seconds")
	p99, n := bucketQuantile(pauses, 0.99)
	rr.GCPauses, rr.GCPauseP99Ms = n, round3(p99*1000)
	rr.GCPauseMaxMs = round3(bucketMax(pauses) * 1000)
	gc, okGC := metricDelta(start.Metrics, end.Metrics, "relay_gc_cpu_seconds_total")
	avail, okAvail := metricDelta(start.Metrics, end.Metrics, "relay_cpu_seconds_total")
	if okGC && okAvail && avail > 0 {
		rr.GCCPUPct = round3(gc / avail * 100)
	}
	rr.RSSBytes = relayRSS(end)
	rr.Goroutines, _ = end.Metrics.Value("go_goroutines")
	rr.GOGC, _ = end.Metrics.Value("relay_gogc")
	rr.GOMemLimitBytes, _ = end.Metrics.Value("relay_gomemlimit_bytes")
	joins := bucketDelta(before.Metrics, end.Metrics, "relay_join_latency_seconds")
	j50, _ := bucketQuantile(joins, 0.50)
	j99, _ := bucketQuantile(joins, 0.99)
	rr.JoinP50Ms, rr.JoinP99Ms = round3(j50*1000), round3(j99*1000)
	fwd := bucketDelta(start.Metrics, end.Metrics, "relay_forward_latency_seconds")
	f50, _ := bucketQuantile(fwd, 0.50)
	f99, _ := bucketQuantile(fwd, 0.99)
	rr.ForwardP50Ms, rr.ForwardP99Ms = round3(f50*1000), round3(f99*1000)
	fan := bucketDelta(start.Metrics, end.Metrics, "relay_fanout_seconds")
	fa50, _ := bucketQuantile(fan, 0.50)
	fa99, _ := bucketQuantile(fan, 0.99)
	rr.FanoutP50Ms, rr.FanoutP99Ms = round3(fa50*1000), round3(fa99*1000)
	if start.Relay != nil && end.Relay != nil && start.Relay.Wakeups >= 0 && end.Relay.Wakeups >= 0 && rr.PacketsOut > 0 {
		rr.WakeupsPerPacket = round3(float64(end.Relay.Wakeups-start.Relay.Wakeups) / rr.PacketsOut)
	}
	return rr
}

// Ramp is what the run saw around the audience's joins.
type Ramp struct {
	Start, End Snapshot
	Joined     int // joins that succeeded between Start and End
}

// cpuPerJoin is the relay's CPU over the ramp less what its forwarding
// cost there (the ramp's packets out at the window's cost per packet), in
// ms per join; 0 when a figure is missing. The subtraction matters: in a
// burst of 100 listeners the room forwards while they connect.
func cpuPerJoin(r Ramp, usPerPacket float64) float64 {
	cpu, _, ok := relayCPU(r.Start, r.End)
	if !ok || r.Joined <= 0 {
		return 0
	}
	out, _ := metricDelta(r.Start.Metrics, r.End.Metrics, "relay_packets_out_total")
	return round3(max(cpu-out*usPerPacket/1e6, 0) * 1000 / float64(r.Joined))
}

func pct(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return math.Round(part/whole*100*10000) / 10000
}
