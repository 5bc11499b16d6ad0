package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lianmai/relay/loadtest"
)

// floodOptions are `loadtest flood`'s settings.
type floodOptions struct {
	cfg      loadtest.FloodConfig
	jsonOut  string
	quiet    bool
	logLevel slog.Level
}

// flood is `loadtest flood`: issue 17's attack on the relay's signaling
// from one address (idle WebSockets that never join, a stream of joins)
// while a legitimate client from another address joins, and what it did
// to the relay. It returns the exit status: a relay that refuses the
// flood is a result (0); 1 means the flood could not take place.
func flood(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseFlood(args, getenv, stderr)
	if isHelp(err) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest flood: %v\n", err)
		return exitUsage
	}
	o.cfg.Logger, o.cfg.ClientLog, o.cfg.Progress = logs(o.logLevel, o.quiet, stderr)
	log := o.cfg.Logger
	soft, hard, err := raiseNofile()
	if err != nil {
		fmt.Fprintf(stderr, "loadtest flood: %v\n", err)
		return exitFailed
	}
	log.Info("file descriptor limit (RLIMIT_NOFILE; Go raises the soft limit to the hard one at start on Linux)", "soft", soft, "hard", hard)
	if need := uint64(o.cfg.Descriptors()); need > soft {
		fmt.Fprintf(stderr, "loadtest flood: -idle %d with -joins %g needs up to %d file descriptors, and this process may open %d (RLIMIT_NOFILE; hard limit %d): lower -idle, or raise the hard limit (ulimit -Hn; LimitNOFILE= under systemd)\n",
			o.cfg.Idle, o.cfg.JoinRate, need, soft, hard)
		return exitUsage
	}
	res, err := loadtest.Flood(ctx, o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest flood: %v\n", err)
		if errors.Is(err, loadtest.ErrBadScenario) {
			return exitUsage
		}
		return exitFailed
	}
	res.NofileSoft, res.NofileHard = soft, hard
	writeFloodSummary(stdout, res)
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonOut, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "loadtest flood: writing -json %s: %v\n", o.jsonOut, err)
			return exitFailed
		}
	}
	return exitOK
}

// raiseNofile raises the soft RLIMIT_NOFILE to the hard limit (a no-op
// where Go already did) and returns both.
func raiseNofile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

func parseFlood(args []string, getenv func(string) string, out io.Writer) (floodOptions, error) {
	var o floodOptions
	c := &o.cfg
	fs := flag.NewFlagSet("loadtest flood", flag.ContinueOnError)
	fs.SetOutput(out)
	var logLevel string
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8080/ws", "the relay's WebSocket URL")
	fs.StringVar(&c.MetricsURL, "metrics", "", "the relay's /metrics URL; default: next to -url; - for none")
	fs.IntVar(&c.RelayPID, "relay-pid", 0, "the relay's PID on this machine: its CPU and RSS come from /proc/<pid> (else from its /metrics)")
	fs.StringVar(&c.From, "from", "127.0.0.2", "the flood's source address (on Linux every 127.x.y.z is loopback)")
	fs.StringVar(&c.LegitFrom, "legit-from", "127.0.0.3", "the legitimate client's source address; empty lets the system choose")
	fs.IntVar(&c.Idle, "idle", 2000, "idle WebSockets (never sending join) to hold open from -from")
	fs.Float64Var(&c.OpenRate, "open-rate", 500, "idle connection attempts per second")
	fs.BoolVar(&c.Reopen, "reopen", true, "replace idle sockets the relay closes (join timeout) or refuses, keeping -idle open, as an attacker would")
	fs.Float64Var(&c.JoinRate, "joins", 0, "join attempts per second from -from: each a new WebSocket sending an audience join, closed after the answer")
	fs.Float64Var(&c.STUNRate, "stun-rate", 0, "STUN Binding requests per second with made-up credentials from -from to -stun-to during the flood; 0: none")
	fs.StringVar(&c.STUNTo, "stun-to", "", "the relay's UDP media address for -stun-rate, e.g. 127.0.0.1:50000")
	fs.BoolVar(&c.JoinLeave, "join-leave", false, "a flood join that got joined sends leave before closing (else the relay keeps it for its grace period)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long the flood is kept up")
	fs.DurationVar(&c.Settle, "settle", 10*time.Second, "after the flood's sockets are closed, wait this long before the \"after\" figures")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "one flood connection: the upgrade, and a join's answer")
	fs.IntVar(&c.Legit, "legit", 20, "joins of the legitimate client from -legit-from, before the flood (quiet baseline) and the same number during it")
	fs.DurationVar(&c.LegitTimeout, "legit-timeout", 10*time.Second, "one legitimate join, dial to sub connected")
	fs.StringVar(&c.Token, "token", "", "token sent in every join; env LOADTEST_TOKEN")
	fs.StringVar(&c.TokenSecret, "token-secret", "", "HS256 secret to mint a token per join; env LOADTEST_TOKEN_SECRET")
	fs.BoolVar(&c.Loopback, "loopback", true, "the legitimate client's ICE on loopback only (the relay runs on this machine with -loopback)")
	fs.DurationVar(&c.WaitReady, "wait-ready", 5*time.Second, "wait up to this long for the relay to accept connections")
	fs.DurationVar(&c.Interval, "interval", time.Second, "time-series and progress interval")
	fs.StringVar(&o.jsonOut, "json", "", "write the result as JSON to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error (debug includes pion's logs)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: loadtest flood [flags]\n\n"+
			"Floods a relay's signaling from one address (-from) as issue 17 describes: -idle WebSockets that never\n"+
			"join, opened at -open-rate and reopened when closed, and -joins joins per second; meanwhile a legitimate\n"+
			"client from -legit-from joins -legit times. Reports attempts, refusals (by HTTP status, close code,\n"+
			"error code), the relay's CPU and RSS before, during and after, its /metrics, and the legitimate join\n"+
			"latency quiet and under the flood. docs/loadtest.md (\"The flood\") has the details.\n\n"+
			"Exit status: 0 done (refusals are results), 1 the flood could not take place, 2 bad flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q; see loadtest flood -h", fs.Arg(0))
	}
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return o, fmt.Errorf("-log-level %q: want debug, info, warn or error", logLevel)
	}
	if c.Token == "" {
		c.Token = getenv("LOADTEST_TOKEN")
	}
	if c.TokenSecret == "" {
		c.TokenSecret = getenv("LOADTEST_TOKEN_SECRET")
	}
	return o, nil
}

// writeFloodSummary prints the short human summary.
func writeFloodSummary(w io.Writer, r *loadtest.FloodResult) {
	s := r.Settings
	reopen := ""
	if s.Reopen {
		reopen = ", reopened"
	}
	fmt.Fprintf(w, "flood from %s against %s: %d idle (%g/s%s), %g joins/s, up %.1f s\n", r.FromAddr, s.URL, s.Idle, s.OpenRate, reopen, s.JoinRate, r.FloodSeconds)
	if st := r.STUN; st != nil {
		fmt.Fprintf(w, "STUN: %d Binding requests with made-up credentials to %s (%g/s asked, %.0f/s sent), %d send errors\n",
			st.Sent, st.To, st.Rate, float64(st.Sent)/max(r.FloodSeconds, 1e-9), st.Errors)
	}
	t := r.Total
	fmt.Fprintf(w, "connections: %d attempts, %d accepted, %d refused (429: %d, 503: %d, other: %d), %d failed%s\n",
		t.Attempts, t.Accepted, t.Refused, t.RefusedByStatus["429"], t.RefusedByStatus["503"],
		t.Refused-t.RefusedByStatus["429"]-t.RefusedByStatus["503"], t.Failed, counts("", t.FailedBy))
	if len(t.RetryAfter) > 0 {
		fmt.Fprintf(w, "  Retry-After values of refusals%s\n", counts("", t.RetryAfter))
	}
	fmt.Fprintf(w, "  refused per second (HTTP and after the upgrade): mean %.1f, median %.1f, peak %.1f; attempts per second: mean %.1f, peak %.1f\n",
		t.RefusedPerSec.Mean, t.RefusedPerSec.Median, t.RefusedPerSec.Peak, t.AttemptsPerSec.Mean, t.AttemptsPerSec.Peak)
	if i := r.Idle; i.Attempts > 0 {
		fmt.Fprintf(w, "  idle: %d attempts, %d accepted, %d refused, %d failed; open at most %d; the relay closed %d of them%s",
			i.Attempts, i.Accepted, i.Refused, i.Failed, i.OpenMax, sum(i.ClosedByRelay), counts("code ", i.ClosedByRelay))
		if i.HeldMs.Count > 0 {
			fmt.Fprintf(w, ", held %.1f s median, %.1f s max", i.HeldMs.P50/1000, i.HeldMs.Max/1000)
		}
		fmt.Fprintln(w)
		if len(i.CloseReasons) > 0 {
			fmt.Fprintf(w, "    close reasons%s\n", counts("", i.CloseReasons))
		}
	}
	if j := r.Joins; j.Attempts > 0 || j.Skipped > 0 {
		fmt.Fprintf(w, "  joins: %d attempts, %d accepted, %d refused, %d failed; %d joined", j.Attempts, j.Accepted, j.Refused, j.Failed, j.Joined)
		if j.JoinedMs.Count > 0 {
			fmt.Fprintf(w, " (dial to joined p50 %.1f ms, max %.1f ms)", j.JoinedMs.P50, j.JoinedMs.Max)
		}
		fmt.Fprintf(w, ", %d errors%s, %d closed before joined%s, %d no answer",
			sum(j.Errors), counts("", j.Errors), sum(j.ClosedBeforeJoined), counts("code ", j.ClosedBeforeJoined), j.NoAnswer)
		if j.Skipped > 0 {
			fmt.Fprintf(w, ", %d not attempted (too many in flight)", j.Skipped)
		}
		fmt.Fprintln(w)
	}

	rel := r.Relay
	src := map[string]string{"proc": "/proc", "metrics": "its /metrics", "": "nowhere (give -relay-pid)"}[rel.CPUSource]
	fmt.Fprintf(w, "relay (CPU and RSS from %s; during: %d samples):\n", src, rel.During.Samples)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tbefore\tduring median\tduring peak\tafter\t\n")
	if rel.CPUSource != "" {
		fmt.Fprintf(tw, "CPU %% of a core\t%.0f\t%.0f\t%.0f\t%.0f\t\n", rel.Before.CPUPct, rel.During.CPUPctMedian, rel.During.CPUPctPeak, rel.After.CPUPct)
		fmt.Fprintf(tw, "RSS MiB\t%.1f\t%.1f\t%.1f\t%.1f\t\n", mib(rel.Before.RSSBytes), mib(rel.During.RSSMedian), mib(rel.During.RSSPeak), mib(rel.After.RSSBytes))
	}
	for _, m := range []struct {
		name, label string
		scale       float64
	}{
		{"relay_signaling_sessions", "sessions", 1},
		{"go_goroutines", "goroutines", 1},
		{"relay_gc_heap_live_bytes", "live heap MiB", 1 << 20},
		{"process_open_fds", "open fds", 1},
		{"relay_participants", "participants", 1},
		{"relay_connections_refused_total", "refused so far (counter)", 1},
	} {
		b, okB := rel.Before.Metrics[m.name]
		dm, okD := rel.During.MetricsMedian[m.name]
		a, okA := rel.After.Metrics[m.name]
		if !okB && !okD && !okA {
			continue
		}
		format := "%.0f"
		if m.scale > 1 {
			format = "%.1f"
		}
		f := func(v float64, ok bool) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf(format, v/m.scale)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.label, f(b, okB), f(dm, okD), f(rel.During.MetricsPeak[m.name], okD), f(a, okA))
	}
	_ = tw.Flush()
	if rel.RSSPerIdleKiB != 0 {
		fmt.Fprintf(w, "  about %.1f KiB of relay RSS per idle connection ((peak - before) / %d open at most)\n", rel.RSSPerIdleKiB, r.Idle.OpenMax)
	}
	if rel.RefusedByReason != nil {
		fmt.Fprintf(w, "  relay_connections_refused_total increase by reason:%s\n", floats(rel.RefusedByReason))
	} else {
		fmt.Fprintf(w, "  relay_connections_refused_total: not exported by this relay\n")
	}
	if len(rel.ErrorsByCode) > 0 {
		fmt.Fprintf(w, "  relay_signaling_errors_total increase by code:%s\n", floats(rel.ErrorsByCode))
	}
	fmt.Fprintf(w, "  this tool used %.0f%% of a core (median), other processes %.0f%%\n", rel.During.LoadgenCPUPct, rel.During.OtherCPUPct)

	from := r.LegitAddr
	if from == "" {
		from = "(no connection)"
	}
	fmt.Fprintf(w, "legitimate client from %s, one audience join at a time (ms from dial):\n", from)
	for _, l := range []struct {
		name string
		j    loadtest.LegitJoins
	}{{"quiet", r.Legit.Quiet}, {"flood", r.Legit.Flood}} {
		fmt.Fprintf(w, "  %-5s %d/%d connected", l.name, l.j.Connected, l.j.Attempts)
		if d := l.j.JoinedMs; d.Count > 0 {
			fmt.Fprintf(w, "; joined p50 %.1f p99 %.1f max %.1f", d.P50, d.P99, d.Max)
		}
		if d := l.j.ConnectedMs; d.Count > 0 {
			fmt.Fprintf(w, "; sub connected p50 %.1f p99 %.1f max %.1f", d.P50, d.P99, d.Max)
		}
		fmt.Fprintln(w)
		for _, f := range l.j.Failures {
			fmt.Fprintf(w, "        failed: %s\n", f)
		}
	}
	if r.Legit.P99Ratio > 0 {
		fmt.Fprintf(w, "  joined p99 under the flood / quiet: %.2f (issue 17's budget: at most 2)\n", r.Legit.P99Ratio)
	}
	if r.NofileSoft > 0 {
		fmt.Fprintf(w, "this tool's file descriptor limit: %d (hard %d)\n", r.NofileSoft, r.NofileHard)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// counts lists m as " (key xN, ...)", keys sorted, each after prefix;
// "" for an empty m.
func counts(prefix string, m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s%s x%d", prefix, name, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func floats(m map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s %.0f", k, m[k])
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func mib(b float64) float64 { return b / (1 << 20) }
