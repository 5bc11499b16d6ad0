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

// soakOptions are `loadtest soakcheck`'s settings.
type soakOptions struct {
	warmup    time.Duration // the warm-up level is taken this long after the window opened
	span      time.Duration // each level is taken over this many seconds of samples
	tolerance float64       // percent the end level may differ from the warm-up level
	every     time.Duration // timeline step
}

// errSoakFailed: the soak ran but a check failed.
var errSoakFailed = errors.New("soak check failed")

// soakLevel is the relay's state over one span of the window.
type soakLevel struct {
	from, to   float64 // seconds since the window opened
	n          int     // samples
	heap       float64 // median live heap (relay_gc_heap_live_bytes); without it, the lowest heap in use
	goroutines float64 // median
	rss        float64 // median
	pps        float64 // median relay packets out per second
}

// soakcheck is `loadtest soakcheck [flags] REPORT.json`: it prints the
// relay's timeline over the window and checks that heap in use and
// goroutines at the end are within the tolerance of their level after
// warm-up, and that listeners lost nothing. With -plan and -duration it
// only checks that a window of that length leaves room for both levels
// and prints the window in seconds (for loadtest/soak.sh).
func soakcheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest soakcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o soakOptions
	var plan time.Duration
	fs.DurationVar(&o.warmup, "warmup", 2*time.Minute, "the warm-up level is taken this long after the measurement window opened")
	fs.DurationVar(&o.span, "span", 30*time.Second, "each level (after warm-up, at the end) is taken over this much of the window")
	fs.Float64Var(&o.tolerance, "tolerance", 10, "percent the end level of heap in use and goroutines may differ from the warm-up level")
	fs.DurationVar(&o.every, "every", 30*time.Second, "timeline step")
	fs.DurationVar(&plan, "plan", 0, "only check that a window this long fits the warm-up and both spans; print it in seconds")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadtest soakcheck [flags] REPORT.json\n       loadtest soakcheck -plan DURATION [flags]\n\nChecks a soak run's report (loadtest/soak.sh): exit 0 pass, 1 a check failed, 2 bad flags or an unusable report.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.warmup < 0 || o.span <= 0 || o.every <= 0 || o.tolerance <= 0 {
		return errors.New("soakcheck: -warmup must not be negative; -span, -every and -tolerance must be positive")
	}
	if plan > 0 {
		if err := o.fits(plan); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d\n", int(math.Ceil(plan.Seconds())))
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

// fits says whether a window of d holds the warm-up and both spans, the
// end span after the warm-up span.
func (o soakOptions) fits(d time.Duration) error {
	if need := o.warmup + 2*o.span; d < need {
		return fmt.Errorf("soakcheck: a %s window is too short for a %s warm-up and two %s spans: make it at least %s (SOAK_DURATION), or shorten SOAK_WARMUP / SOAK_SPAN",
			d, o.warmup, o.span, need)
	}
	return nil
}

// checkSoak prints the timeline and the levels, then the verdict. It
// returns errSoakFailed (wrapped, naming every failed check) if a check
// failed, another error if the report cannot be judged.
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
	fmt.Fprintf(out, "soak %s: %d room(s) x (%d host + %d guest + %d audience), churn %g/min per room, mic every %s; %.0f s window\n",
		sc.Name, sc.Rooms, sc.Hosts, sc.Guests, sc.Audience, sc.ChurnPerMin, sc.MicCycleEvery.D(), rep.WindowSeconds)

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "t (s)\tup\trelay out pkt/s\trelay cpu %%\t%s MiB\tgoroutines\tRSS MiB\t\n", heapName)
	// One row per step: the first sample within half a sampling interval
	// of each multiple of every, and the last.
	half := 0.0
	if len(window) > 1 {
		half = (window[len(window)-1].T - t0) / float64(len(window)-1) / 2
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

	warm := level(window, t0, o.warmup.Seconds(), (o.warmup + o.span).Seconds(), live)
	last := window[len(window)-1].T - t0
	end := level(window, t0, last-o.span.Seconds(), last, live)
	if warm.n == 0 || end.n == 0 {
		return fmt.Errorf("soakcheck: no samples after the warm-up (%d) or at the end (%d): sample more often (-interval)", warm.n, end.n)
	}
	fmt.Fprintf(out, "warm-up level (%.0f-%.0f s, %d samples): %s %.1f MiB (%s), %.0f goroutines, RSS %.1f MiB, %.0f pkt/s out (medians)\n",
		warm.from, warm.to, warm.n, heapName, warm.heap/(1<<20), heapHow, warm.goroutines, warm.rss/(1<<20), warm.pps)
	fmt.Fprintf(out, "end level     (%.0f-%.0f s, %d samples): %s %.1f MiB (%+.1f%%), %.0f goroutines (%+.1f%%), RSS %.1f MiB (%+.1f%%), %.0f pkt/s out\n",
		end.from, end.to, end.n, heapName, end.heap/(1<<20), change(warm.heap, end.heap), end.goroutines, change(warm.goroutines, end.goroutines),
		end.rss/(1<<20), change(warm.rss, end.rss), end.pps)

	var failed []string
	check := func(ok bool, what string) {
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
			failed = append(failed, what)
		}
		fmt.Fprintf(out, "%s %s\n", verdict, what)
	}
	within := func(a, b float64) bool { return math.Abs(change(a, b)) <= o.tolerance }
	check(within(warm.heap, end.heap), fmt.Sprintf("relay %s at the end within %g%% of the warm-up level (%+.1f%%)", heapName, o.tolerance, change(warm.heap, end.heap)))
	check(within(warm.goroutines, end.goroutines), fmt.Sprintf("relay goroutines at the end within %g%% of the warm-up level (%+.1f%%)", o.tolerance, change(warm.goroutines, end.goroutines)))
	a := rep.Audio
	check(a.LostFrames == 0 && a.ExpectedFrames > 0, fmt.Sprintf("listeners lost nothing (%d of %d frames lost)", a.LostFrames, a.ExpectedFrames))
	check(rep.Joins.Failed == 0 && a.MissingPublishers == 0, fmt.Sprintf("every join succeeded and every stream flowed (%d joins failed, %d pairs missing)", rep.Joins.Failed, a.MissingPublishers))
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

// level takes the samples from..to seconds after t0; live says which heap
// figure to use (see checkSoak).
func level(window []report.Sample, t0, from, to float64, live bool) soakLevel {
	l := soakLevel{from: from, to: to}
	var heap, gor, rss, pps []float64
	for _, s := range window {
		t := s.T - t0
		if t < from-1e-9 || t > to+1e-9 {
			continue
		}
		l.n++
		if h := heapOf(s, live); h > 0 {
			heap = append(heap, h)
		}
		gor, rss, pps = append(gor, s.RelayGoroutines), append(rss, s.RelayRSSBytes), append(pps, s.RelayOutPPS)
	}
	if l.n == 0 || len(heap) == 0 {
		return l
	}
	if live {
		l.heap = medianOf(heap)
	} else {
		l.heap = slices.Min(heap) // the GC's trough, nearest the live heap
	}
	l.goroutines, l.rss, l.pps = medianOf(gor), medianOf(rss), medianOf(pps)
	return l
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
