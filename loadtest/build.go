package loadtest

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// cdfPoints is how many points each CDF keeps for the charts.
const cdfPoints = 200

// report assembles the Report once every participant has closed.
func (r *runner) report(before, start, end snapshot) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	window := float64(end.ns-start.ns) / 1e9
	rep := &Report{
		Version:       ReportVersion,
		StartedAt:     r.startedAt,
		FinishedAt:    time.Now(),
		Scenario:      r.sc,
		Machine:       machine(),
		Target:        Target{URL: r.cfg.URL, MetricsURL: r.metricsURL, PID: r.cfg.RelayPID},
		WindowSeconds: round3(window),
		Churn:         r.churn,
		Mic:           r.mic,
		Series:        r.series,
		Warnings:      r.warnings,
	}
	if rep.Series == nil {
		rep.Series = []Sample{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	rep.Mic.GrantMs, rep.Mic.ReleaseMs = DistOf(r.micGrant), DistOf(r.micRel)
	rep.Mic.PublishMs, rep.Mic.HostHeardMs = DistOf(r.micPublish), DistOf(r.micHeard)
	if rep.Mic.Failures == nil {
		rep.Mic.Failures = []string{}
	}
	firstPacket, lat := r.audioLocked(&rep.Audio)
	rep.Joins = JoinReport{
		Planned:       r.sc.Participants(),
		Attempted:     r.joins.attempted,
		Succeeded:     r.joins.succeeded,
		Failed:        r.joins.failed,
		Failures:      append([]string{}, r.joins.failures...),
		JoinedMs:      DistOf(r.joins.joinedMs),
		ConnectedMs:   DistOf(r.joins.connectedMs),
		FirstPacketMs: DistOf(firstPacket),
	}
	rep.Charts.JoinCDF = CDFOf(firstPacket, cdfPoints)
	rep.Charts.OneWayCDF = lat.CDF(cdfPoints)
	rep.Relay = r.relayLocked(before, start, end, window)
	rep.Relay.RSSMaxBytes = max(r.relayRSSMax, rep.Relay.RSSBytes)

	pkts := end.packets - start.packets
	cpu := (end.selfCPU - start.selfCPU).Seconds()
	rep.Loadgen = LoadgenReport{
		CPUSeconds: round3(cpu),
		RSSBytes:   selfRSS(),
		Goroutines: end.goroutines,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
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
		rep.Host = HostReport{
			BusyPct:  round3(h.busy / window * 100),
			OtherPct: round3(h.other / window * 100),
			StealPct: round3(h.steal / window * 100),
		}
		if rep.Host.OtherPct > 10 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"other processes used %.0f%% of a core during the window: the machine was shared, the figures are noisy", rep.Host.OtherPct))
		}
	}
	if n := r.foreignTracks.Load(); n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d tracks came from publishers this run did not start (another load generator in the same rooms?)", n))
	}
	return rep
}

// audioLocked fills a from every participant's streams and returns the
// join latency samples (ms) and the one-way latency histogram. r.mu is
// held; every reader has ended.
func (r *runner) audioLocked(a *AudioReport) (firstPacket []float64, lat *Hist) {
	lat = &Hist{}
	var pacer Hist
	pubs := make(map[string]*participant)
	for _, p := range r.parts {
		if p.pub != nil {
			pubs[p.pub.log.id] = p
			a.Publishers++
			a.FramesSent += p.pub.sent.Load()
			a.FramesDropped += p.pub.dropped.Load()
			u := &a.Uplink
			u.Packets += p.up.originals.Load()
			u.Lost += p.up.lost.Load()
			u.NACKs += p.up.nackedPackets.Load()
			u.NACKedPackets += p.up.nackedSeqs.Load()
			u.Retransmissions += p.up.resent.Load()
			u.RetransmissionsLost += p.up.resentLost.Load()
			pacer.Merge(&p.pub.lateness)
		}
	}
	var received uint64
	var senderDropped int64
	var repair Hist
	for _, p := range r.parts {
		got := make(map[string]bool)
		decoded := false
		for _, st := range p.snapshotStreams() {
			res := st.finish()
			if st.packets > 0 {
				got[st.log.id] = true
			}
			if res.joinNs >= 0 {
				firstPacket = append(firstPacket, float64(res.joinNs)/1e6)
			}
			a.Streams++
			a.PacketsReceived += st.packets
			a.ExpectedFrames += res.expected
			a.LostFrames += res.lost
			a.StutterFrames += res.stutter
			senderDropped += res.senderDropped
			a.LateFrames += st.late
			a.Duplicates += st.duplicates
			a.SeqMismatches += st.seqMismatch
			a.UnknownPackets += st.unknown
			received += st.received
			lat.Merge(&st.lat)
			a.RepairedFrames += st.repaired
			if st.repair != nil {
				repair.Merge(st.repair)
			}
			if st.play != nil {
				decoded = true
				a.Decoded.Streams++
				a.Decoded.FramesDecoded += st.play.decoded
				a.Decoded.FramesConcealed += st.play.concealed
				a.Decoded.DecodeErrors += st.play.errors
			}
		}
		if len(got) > 0 {
			a.Receivers++
		}
		if decoded {
			a.Decoded.Receivers++
		}
		r.missingLocked(a, p, pubs, got)
	}
	a.LossPct = pct(float64(a.LostFrames), float64(a.ExpectedFrames-senderDropped))
	a.Uplink.LossPct = pct(float64(a.Uplink.Lost), float64(a.Uplink.Packets))
	a.LatePct = pct(float64(a.LateFrames), float64(received))
	a.StutterPct = pct(float64(a.StutterFrames), float64(a.ExpectedFrames))
	a.Decoded.StutterPct = pct(float64(a.Decoded.FramesConcealed), float64(a.Decoded.FramesDecoded+a.Decoded.FramesConcealed))
	a.OneWayMs = lat.Dist()
	a.RepairMs = repair.Dist()
	a.PacerLateMs = pacer.Dist()
	if a.Missing == nil {
		a.Missing = []string{}
	}
	return firstPacket, lat
}

// missingSlack is how long a publisher must have been sending, and a
// receiver connected, before its window ended for the pair to be expected
// to flow.
const missingSlack = int64(3 * time.Second)

// missingLocked counts the publishers of p's room that p should have
// received and did not: they were sending, and p connected, for
// missingSlack before p's window ended, and were still sending then.
func (r *runner) missingLocked(a *AudioReport, p *participant, pubs map[string]*participant, got map[string]bool) {
	end := min(r.win.end.Load(), p.own.end.Load())
	if end == never || p.id == "" || p.joinedNs > end-missingSlack {
		return
	}
	for id, pub := range pubs {
		if pub == p || pub.room != p.room || got[id] {
			continue
		}
		first, stop := pub.pub.log.first.Load(), pub.pub.log.stop.Load()
		if first == 0 || first > end-missingSlack || (stop != 0 && stop < end) {
			continue
		}
		a.MissingPublishers++
		if len(a.Missing) < maxListed {
			a.Missing = append(a.Missing, fmt.Sprintf("%s (%s, room %d) got nothing from %s (%s)", p.name, p.id, p.room, pub.name, id))
		}
	}
}

// relayLocked computes the relay's figures over the window.
func (r *runner) relayLocked(before, start, end snapshot, window float64) RelayReport {
	var rr RelayReport
	rr.MetricsOK = start.prom != nil && end.prom != nil
	if cpu, src, ok := relayCPU(start, end); ok {
		rr.CPUSource, rr.CPUSeconds = src, round3(cpu)
		if window > 0 {
			rr.CPUPct = round3(cpu / window * 100)
		}
	}
	rr.PacketsIn, _ = promDelta(start.prom, end.prom, "relay_packets_in_total")
	rr.PacketsOut, _ = promDelta(start.prom, end.prom, "relay_packets_out_total")
	rr.PacketsDropped, _ = promDelta(start.prom, end.prom, "relay_packets_dropped_total")
	rr.NACKsRequested, _ = promDelta(start.prom, end.prom, "relay_nack_requested_total")
	if window > 0 {
		rr.PacketsOutPerSec = round3(rr.PacketsOut / window)
	}
	if rr.PacketsOut > 0 && rr.CPUSource != "" {
		rr.CPUMicrosPerPacket = round3(rr.CPUSeconds * 1e6 / rr.PacketsOut)
	}
	pauses := bucketDelta(start.prom, end.prom, "relay_gc_pause_seconds")
	p99, n := bucketQuantile(pauses, 0.99)
	rr.GCPauses, rr.GCPauseP99Ms = n, round3(p99*1000)
	rr.GCPauseMaxMs = round3(bucketMax(pauses) * 1000)
	gc, okGC := promDelta(start.prom, end.prom, "relay_gc_cpu_seconds_total")
	avail, okAvail := promDelta(start.prom, end.prom, "relay_cpu_seconds_total")
	if okGC && okAvail && avail > 0 {
		rr.GCCPUPct = round3(gc / avail * 100)
	}
	rr.RSSBytes = relayRSS(end)
	rr.Goroutines, _ = end.prom.value("go_goroutines")
	rr.GOGC, _ = end.prom.value("relay_gogc")
	rr.GOMemLimitBytes, _ = end.prom.value("relay_gomemlimit_bytes")
	joins := bucketDelta(before.prom, end.prom, "relay_join_latency_seconds")
	j50, _ := bucketQuantile(joins, 0.50)
	j99, _ := bucketQuantile(joins, 0.99)
	rr.JoinP50Ms, rr.JoinP99Ms = round3(j50*1000), round3(j99*1000)
	fwd := bucketDelta(start.prom, end.prom, "relay_forward_latency_seconds")
	f50, _ := bucketQuantile(fwd, 0.50)
	f99, _ := bucketQuantile(fwd, 0.99)
	rr.ForwardP50Ms, rr.ForwardP99Ms = round3(f50*1000), round3(f99*1000)
	return rr
}

// bucketMax returns the upper bound of the highest non-empty bucket (the
// largest finite bound if that is +Inf), 0 for none.
func bucketMax(b []promBucket) float64 {
	// Walk down from the top: the highest bucket whose count exceeds the
	// one below it holds the maximum.
	for i := len(b) - 1; i >= 0; i-- {
		below := 0.0
		if i > 0 {
			below = b[i-1].count
		}
		if b[i].count > below {
			if math.IsInf(b[i].le, 1) && i > 0 {
				return b[i-1].le
			}
			return b[i].le
		}
	}
	return 0
}

func pct(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return math.Round(part/whole*100*10000) / 10000
}

// machine describes this machine.
func machine() Machine {
	host, _ := os.Hostname()
	numCPU, model := cpuInfo()
	return Machine{
		Hostname:  host,
		NumCPU:    numCPU,
		CPUsUsed:  runtime.NumCPU(),
		CPUModel:  model,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
}

// cpuInfo counts the machine's processors and reads the first "model
// name" in /proc/cpuinfo (runtime.NumCPU counts only those this process
// may run on).
func cpuInfo() (n int, model string) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU(), ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return max(n, 1), model
}
