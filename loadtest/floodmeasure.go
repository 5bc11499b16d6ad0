package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/loadtest/report"
	"github.com/lianmai/relay/protocol"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// floodSnap is one reading of the relay (its /proc and /metrics), this
// machine and the flood's counters.
type floodSnap struct {
	report.Snapshot
	labeled map[string]map[string]float64 // floodLabeled counters by label
	counts  floodCounts
}

func (f *flood) snap(ctx context.Context) floodSnap {
	s := floodSnap{Snapshot: report.Snapshot{Nanos: nanotime(), SelfCPU: selfCPU(), Host: readHostCPU(), Goroutines: runtime.NumGoroutine()}}
	if f.cfg.RelayPID > 0 {
		if ps, err := readProcStat(f.cfg.RelayPID); err == nil {
			s.Relay = &report.Process{CPU: ps.cpu, RSS: ps.rss}
		}
	}
	if f.metricsURL != "" {
		if m, lab, err := scrapeLabeled(ctx, f.hc, f.metricsURL, metricRefused, metricErrors); err == nil {
			s.Metrics, s.labeled = m, lab
		} else {
			f.log.Debug("scrape", "err", err)
		}
	}
	f.mu.Lock()
	s.counts = f.countsLocked()
	f.mu.Unlock()
	return s
}

// scrapeLabeled fetches url once and parses it twice with expfmt: into
// report.Metrics by the load generator's own parser (parseMetrics, which
// sums label sets), and the counters named in labeled by their labels.
func scrapeLabeled(ctx context.Context, hc *http.Client, url string, labeled ...string) (*report.Metrics, map[string]map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	m, err := parseMetrics(bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := make(map[string]map[string]float64)
	for _, name := range labeled {
		mf := fams[name]
		if mf == nil {
			continue
		}
		byLabel := make(map[string]float64)
		for _, s := range mf.GetMetric() {
			var parts []string
			for _, l := range s.GetLabel() {
				parts = append(parts, l.GetName()+"="+l.GetValue())
			}
			key := strings.Join(parts, ",")
			if len(parts) == 1 {
				key = s.GetLabel()[0].GetValue()
			}
			switch {
			case s.Counter != nil:
				byLabel[key] += s.GetCounter().GetValue()
			case s.Gauge != nil:
				byLabel[key] += s.GetGauge().GetValue()
			case s.Untyped != nil:
				byLabel[key] += s.GetUntyped().GetValue()
			}
		}
		out[name] = byLabel
	}
	return m, out, nil
}

// interesting returns the floodMetrics m has.
func interesting(m *report.Metrics) map[string]float64 {
	out := make(map[string]float64)
	for _, name := range floodMetrics {
		if v, ok := m.Value(name); ok {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sample takes a time-series point every interval until ctx ends and
// prints the progress line.
func (f *flood) sample(ctx context.Context) {
	every := f.cfg.Interval
	if every <= 0 {
		every = time.Second
	}
	tty := isTerminal(f.cfg.Progress)
	t := time.NewTicker(every)
	defer t.Stop()
	prev := f.snap(ctx)
	var lastPrint time.Time
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(f.cfg.Progress)
			}
			return
		case <-t.C:
		}
		cur := f.snap(ctx)
		phase := *f.phase.Load()
		s := f.sampleOf(prev, cur, phase)
		prev = cur
		f.mu.Lock()
		f.series = append(f.series, s)
		if phase == floodPhaseFlood {
			f.floodMetrics = append(f.floodMetrics, interesting(cur.Metrics))
		}
		f.mu.Unlock()
		if f.cfg.Progress == nil || (!tty && time.Since(lastPrint) < 5*time.Second) {
			continue
		}
		lastPrint = time.Now()
		line := fmt.Sprintf("[%6.1fs] %-6s idle open %d/%d  attempts %.0f/s  refused %.0f/s  failed %.0f/s  relay cpu %.0f%%  rss %.0f MiB  sessions %.0f",
			s.T, s.Phase, s.IdleOpen, f.cfg.Idle, s.AttemptsPS, s.RefusedPS, s.FailedPS, s.RelayCPUPct, s.RelayRSSBytes/(1<<20), s.RelaySessions)
		if tty {
			fmt.Fprintf(f.cfg.Progress, "\r%-120s", line)
		} else {
			fmt.Fprintln(f.cfg.Progress, line)
		}
	}
}

// sampleOf is the point for the interval from a to b.
func (f *flood) sampleOf(a, b floodSnap, phase string) FloodSample {
	rs := report.NewSample(f.startNs, a.Snapshot, b.Snapshot, phase, 0)
	s := FloodSample{
		T: rs.T, Phase: phase, IdleOpen: b.counts.idleOpen,
		RelayCPUPct: rs.RelayCPUPct, RelayRSSBytes: rs.RelayRSSBytes, RelayGoroutines: rs.RelayGoroutines,
		RelayHeapLive: rs.RelayHeapLive, LoadgenCPUPct: rs.LoadgenCPUPct, OtherCPUPct: rs.OtherCPUPct,
	}
	s.RelaySessions, _ = b.Metrics.Value("relay_signaling_sessions")
	s.RelayOpenFDs, _ = b.Metrics.Value("process_open_fds")
	dt := float64(b.Nanos-a.Nanos) / 1e9
	if dt <= 0 {
		return s
	}
	per := func(x, y int64) float64 { return math.Round(float64(y-x)/dt*10) / 10 }
	s.AttemptsPS = per(a.counts.attempts, b.counts.attempts)
	s.AcceptedPS = per(a.counts.accepted, b.counts.accepted)
	s.RefusedPS = per(a.counts.refused+a.counts.refusedAfter, b.counts.refused+b.counts.refusedAfter)
	s.FailedPS = per(a.counts.failed, b.counts.failed)
	s.ClosedByRelayPS = per(a.counts.closedByRelay, b.counts.closedByRelay)
	return s
}

// legitSeries makes the legitimate client's joins one at a time: join i
// starts at at(i) (nanotime) or after join i-1 ends, whichever is later;
// with at nil, back to back.
func (f *flood) legitSeries(ctx context.Context, at func(i int) int64) LegitJoins {
	var lj LegitJoins
	var joinedMs, connectedMs []float64
	for i := range f.cfg.Legit {
		if at != nil && sleepCtx(ctx, time.Duration(at(i)-nanotime())) != nil {
			break
		}
		if ctx.Err() != nil {
			break
		}
		lj.Attempts++
		joined, connected, err := f.legitJoin(ctx, i)
		if joined >= 0 {
			lj.Joined++
			joinedMs = append(joinedMs, joined)
		}
		if err != nil {
			lj.Failed++
			if len(lj.Failures) < maxListed {
				lj.Failures = append(lj.Failures, err.Error())
			}
			f.log.Warn("legitimate join failed", "err", err)
			continue
		}
		lj.Connected++
		connectedMs = append(connectedMs, connected)
	}
	lj.JoinedMs, lj.ConnectedMs = report.DistOf(joinedMs), report.DistOf(connectedMs)
	return lj
}

// legitJoin joins the legitimate room once as audience with package
// client and returns dial to joined and dial to sub connected, in ms (-1
// if not reached), then leaves.
func (f *flood) legitJoin(ctx context.Context, i int) (joinedMs, connectedMs float64, err error) {
	jctx, cancel := context.WithTimeout(ctx, f.cfg.LegitTimeout)
	defer cancel()
	room := f.runID + "-legit"
	name := fmt.Sprintf("legit-%d", i)
	token, err := f.token(room, name)
	if err != nil {
		return -1, -1, err
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := f.legitDial.DialContext(ctx, network, addr)
		if err == nil {
			f.mu.Lock()
			if f.legitAddr == "" {
				f.legitAddr = hostOf(c.LocalAddr())
			}
			f.mu.Unlock()
		}
		return c, err
	}
	t0 := nanotime()
	c, err := client.Dial(jctx, client.Config{
		URL: f.cfg.URL, Room: room, Name: name, Role: protocol.RoleAudience, Token: token,
		Loopback: f.cfg.Loopback, NetDialContext: dial, Logger: f.clientLog.With("participant", name),
	})
	if err != nil {
		return -1, -1, legitError(name, "joining", err)
	}
	joinedMs = float64(nanotime()-t0) / 1e6
	err = c.SubConnected(jctx)
	connectedMs = float64(nanotime()-t0) / 1e6
	lctx, lcancel := context.WithTimeout(ctx, floodLeaveWait)
	defer lcancel()
	if lerr := c.Leave(lctx); lerr != nil {
		f.log.Debug("legitimate leave", "participant", name, "err", lerr)
	}
	if err != nil {
		return joinedMs, -1, legitError(name, "connecting its sub peer connection", err)
	}
	return joinedMs, connectedMs, nil
}

// legitError says what a legitimate join ran into; a relay's `error`
// leads with its code.
func legitError(name, what string, err error) error {
	var se *client.ServerError
	if errors.As(err, &se) {
		return fmt.Errorf("%s %s: relay error %s: %s", name, what, se.Code, se.Message)
	}
	return fmt.Errorf("%s %s: %w", name, what, err)
}

// finish fills res from the tallies, the series and the snapshots taken
// before (b0, b1: the relay at rest) and after (a0, a1: the end of the
// settle).
func (f *flood) finish(res *FloodResult, b0, b1, a0, a1 floodSnap) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res.FromAddr, res.LegitAddr = f.fromAddr, f.legitAddr
	res.Idle, res.Joins = f.idle, f.joins
	res.Idle.HeldMs = report.DistOf(f.heldMs)
	res.Joins.JoinedMs = report.DistOf(f.joinedMs)
	res.Total.FloodUpgrades = addUpgrades(f.idle.FloodUpgrades, f.joins.FloodUpgrades)
	res.Total.RefusedAfterUpgrade = f.refusedAfter
	res.FloodSeconds = math.Round(float64(f.floodEnd-f.floodStart)/1e6) / 1e3
	res.Series = slices.Clone(f.series)
	res.Warnings = slices.Clone(f.warnings)

	var refused, attempts, cpu, rss, loadgen, other, open []float64
	for _, s := range f.series {
		if s.Phase != floodPhaseFlood {
			continue
		}
		refused, attempts = append(refused, s.RefusedPS), append(attempts, s.AttemptsPS)
		cpu, rss = append(cpu, s.RelayCPUPct), append(rss, s.RelayRSSBytes)
		loadgen, other, open = append(loadgen, s.LoadgenCPUPct), append(other, s.OtherCPUPct), append(open, float64(s.IdleOpen))
	}
	rate := func(total int64, v []float64) FloodRate {
		r := FloodRate{Median: medianFloat(v)}
		if len(v) > 0 {
			r.Peak = slices.Max(v)
		}
		if res.FloodSeconds > 0 {
			r.Mean = math.Round(float64(total)/res.FloodSeconds*10) / 10
		}
		return r
	}
	res.Total.RefusedPerSec = rate(res.Total.Refused+res.Total.RefusedAfterUpgrade, refused)
	res.Total.AttemptsPerSec = rate(res.Total.Attempts, attempts)

	rel := &res.Relay
	switch {
	case b1.Relay != nil:
		rel.CPUSource = "proc"
	case b1.Metrics != nil && b1.Metrics.Values["process_cpu_seconds_total"] > 0:
		rel.CPUSource = "metrics"
	}
	rel.Before, rel.After = f.level(b0, b1), f.level(a0, a1)
	d := &rel.During
	d.Samples = len(cpu)
	d.CPUPctMedian, d.RSSMedian = medianFloat(cpu), medianFloat(rss)
	if len(cpu) > 0 {
		d.CPUPctPeak, d.RSSPeak = slices.Max(cpu), slices.Max(rss)
	}
	d.LoadgenCPUPct, d.OtherCPUPct, d.IdleOpenMedian = medianFloat(loadgen), medianFloat(other), medianFloat(open)
	byName := make(map[string][]float64)
	for _, m := range f.floodMetrics {
		for k, v := range m {
			byName[k] = append(byName[k], v)
		}
	}
	for k, v := range byName {
		if d.MetricsMedian == nil {
			d.MetricsMedian, d.MetricsPeak = make(map[string]float64), make(map[string]float64)
		}
		d.MetricsMedian[k], d.MetricsPeak[k] = medianFloat(v), slices.Max(v)
	}
	if f.idle.OpenMax > 0 && f.cfg.JoinRate == 0 && d.RSSPeak > 0 && rel.Before.RSSBytes > 0 {
		rel.RSSPerIdleKiB = math.Round((d.RSSPeak-rel.Before.RSSBytes)/float64(f.idle.OpenMax)/1024*10) / 10
	}
	rel.RefusedByReason = labeledDelta(b0, a1, metricRefused)
	rel.ErrorsByCode = labeledDelta(b0, a1, metricErrors)

	q, fl := res.Legit.Quiet.JoinedMs, res.Legit.Flood.JoinedMs
	if q.P99 > 0 && fl.Count > 0 {
		res.Legit.P99Ratio = math.Round(fl.P99/q.P99*100) / 100
	}
}

// level is the relay over the window from a to b.
func (f *flood) level(a, b floodSnap) FloodLevel {
	rs := report.NewSample(f.startNs, a.Snapshot, b.Snapshot, "", 0)
	return FloodLevel{CPUPct: rs.RelayCPUPct, RSSBytes: rs.RelayRSSBytes, Metrics: interesting(b.Metrics)}
}

// labeledDelta is the increase of counter name from a to b, by label
// (zeros kept: a relay may export every reason from the start); nil if b
// does not have it.
func labeledDelta(a, b floodSnap, name string) map[string]float64 {
	after, ok := b.labeled[name]
	if !ok {
		return nil
	}
	out := maps.Clone(after)
	for k, v := range a.labeled[name] {
		out[k] -= v
	}
	return out
}

// addUpgrades adds two tallies.
func addUpgrades(a, b FloodUpgrades) FloodUpgrades {
	sum := FloodUpgrades{
		Attempts: a.Attempts + b.Attempts, Accepted: a.Accepted + b.Accepted,
		Refused: a.Refused + b.Refused, Failed: a.Failed + b.Failed,
	}
	sum.RefusedByStatus = addCounts(a.RefusedByStatus, b.RefusedByStatus)
	sum.RetryAfter = addCounts(a.RetryAfter, b.RetryAfter)
	sum.FailedBy = addCounts(a.FailedBy, b.FailedBy)
	return sum
}

func addCounts(a, b map[string]int64) map[string]int64 {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := maps.Clone(a)
	if out == nil {
		out = make(map[string]int64)
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}
