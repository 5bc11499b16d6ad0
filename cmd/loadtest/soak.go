package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lianmai/relay/loadtest"
	"github.com/lianmai/relay/loadtest/report"
)

// How soakcheck tells a leak from noise
//
// The relay's live heap moves by ±10% within minutes under churn (who is
// joined, which buffers are held when the GC runs), so two short levels,
// one after warm-up and one at the end, pass or fail with where that
// oscillation happens to be. soakcheck judges the trend instead:
//
//   - The samples after the warm-up are cut into consecutive,
//     non-overlapping trend windows (-trend-window, 5 minutes), laid back
//     from the last sample so that the end always counts; what is left
//     over (less than one window) goes to the warm-up.
//   - Each window is reduced to its median (live heap, goroutines). The
//     5-second samples are strongly autocorrelated, so a line fitted to
//     them would claim a precision they do not have; medians of windows
//     much longer than the oscillation are close to independent, and a
//     median ignores the odd spike.
//   - A least-squares line through the window medians against time in
//     hours gives the slope, and its 95% confidence interval is
//     slope ± t(0.975, n-2) × its standard error, n the number of windows
//     (at least 4: with fewer the interval is too wide to mean anything).
//   - A figure leaks only when the interval's lower bound is above the
//     threshold, -max-growth (heap) or -max-goroutine-growth, in percent
//     of the figure's level (the first window's median) per hour. That
//     is a one-sided test at 2.5%: a slope that could be noise, or a real
//     growth too small to matter, passes; the output says when the
//     interval reaches above the threshold, i.e. when a run this short
//     cannot exclude a leak of that size.
//
// Why 10% of the level per hour: at the soak scenario's rates (about
// 1,700 joins, 500 mic cycles and 95 million forwarded packets an
// hour) and a 20 MiB live heap, 10%/h is 2 MiB/h: about 1.2 KiB kept
// per join, 4 KiB per mic cycle, or one byte per 45 packets,
// far less than anything a leaked participant, track or buffer holds. A
// 30-minute soak with the noise seen so far (window medians scattered by
// about 0.25 MiB) resolves a slope to about ±3 MiB/h: simulated with that
// noise, it fails +30%/h three times in four, +40%/h 97 times in 100,
// +50%/h nearly always, and a relay growing at the threshold 4 times in
// 100; a slower drift needs a longer soak (the interval narrows about as
// the duration^1.5; an hour catches +20%/h). For goroutines, which
// leak one per event, 10% of 2,000 is 200 an hour: one leaked goroutine
// per 8 joins.

// minTrendWindows is the fewest trend windows a slope is judged on: with
// 2 degrees of freedom t(0.975) is 4.30; with 1 it would be 12.7.
const minTrendWindows = 4

// soakOptions are `loadtest soakcheck`'s settings.
type soakOptions struct {
	warmup       time.Duration // the trend starts at least this long after the window opened
	trendWindow  time.Duration // length of the windows whose medians the trend is fitted to
	maxGrowth    float64       // live heap: a leak grows faster than this, % of the level per hour
	maxGorGrowth float64       // goroutines: the same
	every        time.Duration // timeline step
}

// errSoakFailed: the soak ran but a check failed.
var errSoakFailed = errors.New("soak check failed")

// soakWindow is one trend window: the medians of its samples. A figure
// no sample had is 0.
type soakWindow struct {
	from, to   float64 // seconds since the measurement window opened; samples in (from, to]
	n          int     // samples
	heap       float64 // median live heap (relay_gc_heap_live_bytes); without it, the lowest heap in use
	goroutines float64 // median
	rss        float64 // median
	pps        float64 // median relay packets out per second
}

// soakTrend is a figure's slope over the trend windows, per hour.
type soakTrend struct {
	n             int     // windows with the figure
	level         float64 // the first window's median
	slope, lo, hi float64 // per hour; lo..hi is the 95% confidence interval
	t             float64 // the t quantile lo and hi are taken with (n-2 degrees of freedom)
	max           float64 // the threshold per hour: level × max growth %
}

// pct is v per hour in percent of the level.
func (tr soakTrend) pct(v float64) float64 { return v / tr.level * 100 }

// leak: the slope is above the threshold with 97.5% confidence.
func (tr soakTrend) leak() bool { return tr.lo > tr.max }

// soakcheck is `loadtest soakcheck [flags] REPORT.json`: it prints the
// relay's timeline over the window, the medians of the trend windows
// and the slopes of the live heap and goroutines with their confidence
// intervals, and checks that neither grows faster than its threshold
// and that listeners lost nothing. With -plan it only checks that a
// window of that length holds the warm-up and enough trend windows and
// prints the window and the warm-up in seconds (for loadtest/soak.sh).
func soakcheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest soakcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o soakOptions
	var plan time.Duration
	fs.DurationVar(&o.warmup, "warmup", 2*time.Minute, "the trend starts at least this long after the measurement window opened")
	fs.DurationVar(&o.trendWindow, "trend-window", 5*time.Minute, fmt.Sprintf("the samples after warm-up are cut into windows this long; the trend is fitted to their medians (at least %d windows)", minTrendWindows))
	fs.Float64Var(&o.maxGrowth, "max-growth", 10, "the live heap leaks if its slope's 95% confidence interval lies above this, in percent of its level per hour")
	fs.Float64Var(&o.maxGorGrowth, "max-goroutine-growth", 10, "the same for goroutines")
	fs.DurationVar(&o.every, "every", 30*time.Second, "timeline step")
	fs.DurationVar(&plan, "plan", 0, "only check that a window this long holds the warm-up and enough trend windows; print it and the warm-up in seconds")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadtest soakcheck [flags] REPORT.json\n       loadtest soakcheck -plan DURATION [flags]\n\nChecks a soak run's report (loadtest/soak.sh): exit 0 pass, 1 a check failed, 2 bad flags or an unusable report.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.warmup < 0 || o.trendWindow <= 0 || o.every <= 0 || o.maxGrowth <= 0 || o.maxGorGrowth <= 0 {
		return errors.New("soakcheck: -warmup must not be negative; -trend-window, -every, -max-growth and -max-goroutine-growth must be positive")
	}
	if plan > 0 {
		if err := o.fits(plan); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d %d\n", int(math.Ceil(plan.Seconds())), int(math.Ceil(o.warmup.Seconds())))
		return nil
	}
	if fs.NArg() != 1 {
		return errors.New("soakcheck: name one JSON report (-json) of a soak run")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("soakcheck: %w", err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("soakcheck: %s is not a loadtest JSON report: %w", fs.Arg(0), err)
	}
	return checkSoak(&rep, o, stdout)
}

// fits says whether a window of d holds the warm-up and minTrendWindows
// trend windows.
func (o soakOptions) fits(d time.Duration) error {
	if need := o.warmup + minTrendWindows*o.trendWindow; d < need {
		return fmt.Errorf("soakcheck: a %s window is too short for a %s warm-up and %d trend windows of %s (a slope with a confidence interval needs %d): make it at least %s (SOAK_DURATION), or shorten SOAK_WARMUP / SOAK_TREND_WINDOW (e.g. 30s for a try)",
			d, o.warmup, minTrendWindows, o.trendWindow, minTrendWindows, need)
	}
	return nil
}

// checkSoak prints the timeline, the trend windows and the slopes, then
// the verdict. It returns errSoakFailed (wrapped, naming every failed
// check) if a check failed, another error if the report cannot be
// judged.
func checkSoak(rep *report.Report, o soakOptions, out io.Writer) error {
	// The window opened just before the first sample of the measure phase.
	var t0 float64
	var window []report.Sample
	for _, s := range rep.Series {
		if s.Phase != "measure" {
			continue
		}
		if len(window) == 0 {
			t0 = s.T
		}
		window = append(window, s)
	}
	if len(window) == 0 {
		return errors.New("soakcheck: the report has no samples of the measurement window")
	}
	if err := o.fits(time.Duration(rep.WindowSeconds * float64(time.Second))); err != nil {
		return err
	}
	if slices.IndexFunc(window, func(s report.Sample) bool { return s.RelayHeapInuse > 0 }) < 0 {
		return errors.New("soakcheck: no sample has the relay's heap in use: did the load generator scrape its /metrics (-metrics)?")
	}
	if slices.IndexFunc(window, func(s report.Sample) bool { return s.RelayGoroutines > 0 }) < 0 {
		return errors.New("soakcheck: no sample has the relay's goroutines (go_goroutines): did the load generator scrape its /metrics (-metrics)?")
	}
	// The live heap (after the last GC) is what a leak grows; heap in use
	// also counts garbage and moves with where a sample falls in the GC
	// cycle. Relays without relay_gc_heap_live_bytes get the old measure.
	live := slices.IndexFunc(window, func(s report.Sample) bool { return s.RelayHeapLive > 0 }) >= 0
	heapName, heapHow := "heap in use", "lowest"
	if live {
		heapName, heapHow = "live heap", "median"
	}
	sc, err := loadtest.ScenarioOf(rep)
	if err != nil {
		return fmt.Errorf("soakcheck: %w", err)
	}
	last := window[len(window)-1].T - t0
	wins, err := trendWindows(window, t0, last, o, live)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "soak %s: %d room(s) x (%d host + %d guest + %d audience), churn %g/min per room, mic every %s; %.0f s window\n",
		sc.Name, sc.Rooms, sc.Hosts, sc.Guests, sc.Audience, sc.ChurnPerMin, sc.MicCycleEvery.D(), rep.WindowSeconds)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "t (s)\tup\trelay out pkt/s\trelay cpu %%\t%s MiB\tgoroutines\tRSS MiB\t\n", heapName)
	// One row per step: the first sample within half a sampling interval
	// of each multiple of every, and the last.
	half := 0.0
	if len(window) > 1 {
		half = last / float64(len(window)-1) / 2
	}
	next := 0.0
	for i, s := range window {
		t := s.T - t0
		if t < next-half && i != len(window)-1 {
			continue
		}
		for next <= t+half {
			next += o.every.Seconds()
		}
		fmt.Fprintf(tw, "%.0f\t%d\t%.0f\t%.0f\t%.1f\t%.0f\t%.1f\t\n",
			t, s.Up, s.RelayOutPPS, s.RelayCPUPct, heapOf(s, live)/(1<<20), s.RelayGoroutines, s.RelayRSSBytes/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(out, "trend windows: %d x %.0f s, the last ending with the last sample; the first %.0f s are warm-up (-warmup %s and what does not fill a window); %s per window:\n",
		len(wins), o.trendWindow.Seconds(), wins[0].from, o.warmup, heapHow)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "window (s)\tsamples\t%s MiB\tgoroutines\tRSS MiB\trelay out pkt/s\t\n", heapName)
	for _, w := range wins {
		fmt.Fprintf(tw, "%.0f-%.0f\t%d\t%.2f\t%.0f\t%.1f\t%.0f\t\n", w.from, w.to, w.n, w.heap/(1<<20), w.goroutines, w.rss/(1<<20), w.pps)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first, end := wins[0], wins[len(wins)-1]
	fmt.Fprintf(out, "first -> last window (information, not a verdict): %s %.2f -> %.2f MiB (%+.1f%%), goroutines %.0f -> %.0f (%+.1f%%), RSS %.1f -> %.1f MiB (%+.1f%%), %.0f -> %.0f pkt/s out\n",
		heapName, first.heap/(1<<20), end.heap/(1<<20), change(first.heap, end.heap), first.goroutines, end.goroutines, change(first.goroutines, end.goroutines),
		first.rss/(1<<20), end.rss/(1<<20), change(first.rss, end.rss), first.pps, end.pps)

	heap, err := fitTrend(wins, func(w soakWindow) float64 { return w.heap / (1 << 20) }, o.maxGrowth, heapName)
	if err != nil {
		return err
	}
	gor, err := fitTrend(wins, func(w soakWindow) float64 { return w.goroutines }, o.maxGorGrowth, "goroutines")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s slope: %+.2f MiB/h (%+.1f%%/h of %.2f MiB), 95%% CI %+.2f to %+.2f MiB/h (%+.1f to %+.1f%%/h; %d windows, t %.2f); leak if the CI lies above %+g%%/h (%+.2f MiB/h)\n",
		heapName, heap.slope, heap.pct(heap.slope), heap.level, heap.lo, heap.hi, heap.pct(heap.lo), heap.pct(heap.hi), heap.n, heap.t, o.maxGrowth, heap.max)
	fmt.Fprintf(out, "goroutines slope: %+.0f /h (%+.1f%%/h of %.0f), 95%% CI %+.0f to %+.0f /h (%+.1f to %+.1f%%/h; %d windows, t %.2f); leak if the CI lies above %+g%%/h (%+.0f /h)\n",
		noNegZero(gor.slope), gor.pct(gor.slope), gor.level, noNegZero(gor.lo), noNegZero(gor.hi), gor.pct(gor.lo), gor.pct(gor.hi), gor.n, gor.t, o.maxGorGrowth, gor.max)

	var failed, notes []string
	check := func(ok bool, what string) {
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
			failed = append(failed, what)
		}
		fmt.Fprintf(out, "%s %s\n", verdict, what)
	}
	trendCheck := func(name string, tr soakTrend, maxPct float64) {
		check(!tr.leak(), fmt.Sprintf("relay %s not growing faster than %g%%/h of its level (slope %+.1f%%/h, 95%% CI %+.1f to %+.1f%%/h)",
			name, maxPct, tr.pct(tr.slope), tr.pct(tr.lo), tr.pct(tr.hi)))
		if tr.leak() {
			return
		}
		var n []string
		if tr.lo > 0 {
			n = append(n, "grows (the CI is above 0) but not provably faster than the threshold")
		}
		if tr.hi > tr.max {
			n = append(n, fmt.Sprintf("a growth of up to %+.1f%%/h is not excluded by this run", tr.pct(tr.hi)))
		}
		if len(n) > 0 {
			notes = append(notes, fmt.Sprintf("note: %s: %s; a longer soak narrows the CI (about as the duration^1.5)", name, strings.Join(n, ", and ")))
		}
	}
	trendCheck(heapName, heap, o.maxGrowth)
	trendCheck("goroutines", gor, o.maxGorGrowth)
	a := rep.Audio
	check(a.LostFrames == 0 && a.ExpectedFrames > 0, fmt.Sprintf("listeners lost nothing (%d of %d frames lost)", a.LostFrames, a.ExpectedFrames))
	check(rep.Joins.Failed == 0 && a.MissingPublishers == 0, fmt.Sprintf("every join succeeded and every stream flowed (%d joins failed, %d pairs missing)", rep.Joins.Failed, a.MissingPublishers))
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	fmt.Fprintf(out, "also: %d joins, %d churn leaves (%d errors), %d mic cycles (%d granted), relay dropped %.0f packets and NACKed %d, stutter %.3f%%, relay RSS max %.1f MiB, other processes %.0f%% of a core\n",
		rep.Joins.Succeeded, rep.Churn.Leaves, rep.Churn.LeaveErrors, rep.Mic.Attempts, rep.Mic.Granted, rep.Relay.PacketsDropped,
		a.Uplink.NACKedPackets, a.StutterPct, rep.Relay.RSSMaxBytes/(1<<20), rep.Host.OtherPct)
	if rep.Host.OtherPct > 10 {
		fmt.Fprintf(out, "warning: other processes used %.0f%% of a core during the window: loss and stutter may be theirs, not the relay's; run the soak on a quiet machine\n", rep.Host.OtherPct)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", errSoakFailed, strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "soak: PASS")
	return nil
}

// trendWindows cuts the samples after the warm-up into trend windows of
// o.trendWindow, the last ending at last (seconds after t0), and takes
// their medians; live says which heap figure to use (see checkSoak).
// The first window may begin up to one sampling interval inside the
// warm-up: t0 is the first sample, up to an interval after the window
// opened, so a window just long enough for -plan still holds its count.
func trendWindows(window []report.Sample, t0, last float64, o soakOptions, live bool) ([]soakWindow, error) {
	w := o.trendWindow.Seconds()
	step := 0.0
	if len(window) > 1 {
		step = last / float64(len(window)-1)
	}
	n := int(math.Floor((last-o.warmup.Seconds()+step)/w + 1e-9))
	if n < minTrendWindows {
		return nil, fmt.Errorf("soakcheck: the samples after the %s warm-up (%.0f s of them) hold %d trend window(s) of %s, too few: a slope with a confidence interval needs %d; the window is too short, or shorten -trend-window / -warmup",
			o.warmup, math.Max(0, last-o.warmup.Seconds()), max(n, 0), o.trendWindow, minTrendWindows)
	}
	wins := make([]soakWindow, n)
	for k := range wins {
		to := last - float64(n-1-k)*w
		wins[k] = windowOf(window, t0, to-w, to, live)
	}
	return wins, nil
}

// windowOf takes the medians of the samples in (from, to] seconds after
// t0.
func windowOf(window []report.Sample, t0, from, to float64, live bool) soakWindow {
	l := soakWindow{from: from, to: to}
	var heap, gor, rss, pps []float64
	for _, s := range window {
		t := s.T - t0
		if t <= from+1e-9 || t > to+1e-9 {
			continue
		}
		l.n++
		if h := heapOf(s, live); h > 0 {
			heap = append(heap, h)
		}
		if s.RelayGoroutines > 0 {
			gor = append(gor, s.RelayGoroutines)
		}
		rss, pps = append(rss, s.RelayRSSBytes), append(pps, s.RelayOutPPS)
	}
	if len(heap) > 0 {
		if live {
			l.heap = medianOf(heap)
		} else {
			l.heap = slices.Min(heap) // the GC's trough, nearest the live heap
		}
	}
	if len(gor) > 0 {
		l.goroutines = medianOf(gor)
	}
	if l.n > 0 {
		l.rss, l.pps = medianOf(rss), medianOf(pps)
	}
	return l
}

// fitTrend fits a line to get(window) against the windows' middles in
// hours, leaving out windows without the figure (get 0), and takes the
// slope's 95% confidence interval and the threshold of maxPct of the
// level per hour.
func fitTrend(wins []soakWindow, get func(soakWindow) float64, maxPct float64, name string) (soakTrend, error) {
	var x, y []float64
	for _, w := range wins {
		if v := get(w); v > 0 {
			x, y = append(x, (w.from+w.to)/2/3600), append(y, v)
		}
	}
	if len(y) < minTrendWindows {
		return soakTrend{}, fmt.Errorf("soakcheck: only %d of %d trend windows have the relay's %s; a slope needs %d: were the relay's /metrics scraped?", len(y), len(wins), name, minTrendWindows)
	}
	_, b, se := fitLine(x, y)
	tr := soakTrend{n: len(y), level: y[0], slope: b, t: tQuantile(0.975, len(y)-2)}
	tr.lo, tr.hi = b-tr.t*se, b+tr.t*se
	tr.max = tr.level * maxPct / 100
	return tr, nil
}

// noNegZero is v, or 0 where %+.0f would print it as -0.
func noNegZero(v float64) float64 {
	if math.Abs(v) < 0.5 {
		return 0
	}
	return v
}

// heapOf is a sample's live heap, or its heap in use without one.
func heapOf(s report.Sample, live bool) float64 {
	if live {
		return s.RelayHeapLive
	}
	return s.RelayHeapInuse
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return median(v)
}

// change is b's difference from a in percent.
func change(a, b float64) float64 {
	if a == 0 {
		if b == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (b - a) / a * 100
}
