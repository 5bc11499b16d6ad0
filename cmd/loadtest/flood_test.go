package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest"
	"go.uber.org/goleak"
)

// floodDeadline bounds each flood test.
const floodDeadline = 90 * time.Second

// floodAddr returns ip if this machine lets a socket bind it, else
// 127.0.0.1 (logged): on Linux every 127.x.y.z is loopback.
func floodAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Logf("cannot bind %s (%v); flooding from 127.0.0.1 instead", ip, err)
		return "127.0.0.1"
	}
	_ = ln.Close()
	return ip
}

// runFlood runs `loadtest flood` with args and -json, and returns the
// result and stdout.
func runFlood(t *testing.T, args ...string) (*loadtest.FloodResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), floodDeadline)
	defer cancel()
	out := filepath.Join(t.TempDir(), "flood.json")
	var stdout, stderr strings.Builder
	args = append([]string{"flood", "-json", out, "-quiet"}, args...)
	if code := run(ctx, args, noEnv, &stdout, &stderr); code != exitOK {
		t.Fatalf("loadtest %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), code, stderr.String(), stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res loadtest.FloodResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("the -json output does not parse: %v\n%s", err, data)
	}
	t.Logf("summary:\n%s", stdout.String())
	return &res, stdout.String()
}

// checkCounts checks that the tallies add up.
func checkCounts(t *testing.T, r *loadtest.FloodResult) {
	t.Helper()
	for _, u := range []struct {
		name string
		u    loadtest.FloodUpgrades
	}{{"idle", r.Idle.FloodUpgrades}, {"joins", r.Joins.FloodUpgrades}, {"total", r.Total.FloodUpgrades}} {
		if u.u.Accepted+u.u.Refused+u.u.Failed != u.u.Attempts {
			t.Errorf("%s: accepted %d + refused %d + failed %d != attempts %d", u.name, u.u.Accepted, u.u.Refused, u.u.Failed, u.u.Attempts)
		}
		if s := sum(u.u.RefusedByStatus); s != u.u.Refused {
			t.Errorf("%s: refusals by status add up to %d, not %d", u.name, s, u.u.Refused)
		}
		if s := sum(u.u.FailedBy); s != u.u.Failed {
			t.Errorf("%s: failures by kind add up to %d, not %d", u.name, s, u.u.Failed)
		}
	}
	if r.Idle.Attempts+r.Joins.Attempts != r.Total.Attempts {
		t.Errorf("idle %d + join %d attempts != total %d", r.Idle.Attempts, r.Joins.Attempts, r.Total.Attempts)
	}
	j := r.Joins
	if after := j.Joined + sum(j.Errors) + sum(j.ClosedBeforeJoined) + j.NoAnswer; after != j.Accepted {
		t.Errorf("joins: joined %d + errors %d + closed %d + no answer %d != accepted %d", j.Joined, sum(j.Errors), sum(j.ClosedBeforeJoined), j.NoAnswer, j.Accepted)
	}
	if got := sum(j.Errors) + sum(j.ClosedBeforeJoined) + j.NoAnswer; got != r.Total.RefusedAfterUpgrade {
		t.Errorf("refused after the upgrade %d, want %d", r.Total.RefusedAfterUpgrade, got)
	}
	for _, l := range []loadtest.LegitJoins{r.Legit.Quiet, r.Legit.Flood} {
		if l.Connected+l.Failed != l.Attempts || l.Connected > l.Joined {
			t.Errorf("legitimate joins do not add up: %+v", l)
		}
	}
}

func TestFlood(t *testing.T) {
	defer goleak.VerifyNone(t)
	// The relay runs inside a subtest so that its shutdown (a cleanup)
	// comes before the leak check.
	t.Run("run", testFlood)
}

// testFlood floods today's relay (no limits: everything is accepted) in
// this process: 50 idle sockets, 20 joins a second for 2 s, 5
// legitimate joins before and during.
func testFlood(t *testing.T) {
	relay := relaytest.Start(t, relaytest.Options{})
	from, legitFrom := floodAddr(t, "127.0.0.2"), floodAddr(t, "127.0.0.3")
	r, out := runFlood(t, "-url", relay.URL, "-relay-pid", strconv.Itoa(os.Getpid()), "-from", from, "-legit-from", legitFrom,
		"-idle", "50", "-open-rate", "200", "-joins", "20", "-duration", "2s", "-settle", "1s", "-legit", "5")
	checkCounts(t, r)
	if r.Total.Refused != 0 || r.Total.Failed != 0 || r.Total.RefusedAfterUpgrade != 0 {
		t.Errorf("today's relay refused %d, after the upgrade %d; %d failed", r.Total.Refused, r.Total.RefusedAfterUpgrade, r.Total.Failed)
	}
	if r.Idle.Accepted < 50 || r.Idle.OpenMax != 50 {
		t.Errorf("idle: %d accepted, %d open at most; want 50 open", r.Idle.Accepted, r.Idle.OpenMax)
	}
	if r.Joins.Attempts < 20 || r.Joins.Joined != r.Joins.Attempts {
		t.Errorf("joins: %d attempted, %d joined; want about 40, all joined", r.Joins.Attempts, r.Joins.Joined)
	}
	for name, l := range map[string]loadtest.LegitJoins{"quiet": r.Legit.Quiet, "flood": r.Legit.Flood} {
		if l.Attempts != 5 || l.Connected != 5 || l.JoinedMs.Count != 5 || l.ConnectedMs.P50 <= 0 {
			t.Errorf("legitimate joins %s: %+v; want 5 of 5 connected", name, l)
		}
	}
	if r.FromAddr != from || r.LegitAddr != legitFrom {
		t.Errorf("connections came from %s (flood) and %s (legitimate), want %s and %s", r.FromAddr, r.LegitAddr, from, legitFrom)
	}
	rel := r.Relay
	if rel.CPUSource != "proc" || rel.Before.RSSBytes <= 0 || rel.During.RSSPeak <= 0 || rel.After.RSSBytes <= 0 || rel.During.Samples == 0 {
		t.Errorf("relay figures missing: %+v", rel)
	}
	if _, ok := rel.Before.Metrics["relay_signaling_sessions"]; !ok || rel.During.MetricsPeak["relay_signaling_sessions"] < 50 {
		t.Errorf("relay_signaling_sessions before %v, peak %v; want the 50 idle sockets at the peak", rel.Before.Metrics, rel.During.MetricsPeak)
	}
	// The in-process relay has its per-address limits off: it exports
	// every refusal reason, and refused nothing.
	if len(rel.RefusedByReason) == 0 {
		t.Error("relay_connections_refused_total not read from the relay")
	}
	for reason, n := range rel.RefusedByReason {
		if n != 0 {
			t.Errorf("refused %g for %s by a relay without limits", n, reason)
		}
	}
	if len(r.Series) == 0 || r.FloodSeconds < 2 {
		t.Errorf("%d samples, flood up %.1f s", len(r.Series), r.FloodSeconds)
	}
	for _, want := range []string{"50 accepted", "5/5 connected", "RSS MiB", "relay_connections_refused_total increase by reason"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
}

// TestFloodRefused floods a stand-in for a relay with limits: it answers
// every other upgrade 429 (Retry-After: 1), closes every opened socket
// with 1008 after 300 ms, answers a join with rate_limited, and counts
// its refusals in relay_connections_refused_total{reason}.
func TestFloodRefused(t *testing.T) {
	defer goleak.VerifyNone(t)
	var n, refused atomic.Int64
	var handlers sync.WaitGroup
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		if n.Add(1)%2 == 0 {
			refused.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, data, err := c.ReadMessage(); err == nil && strings.Contains(string(data), `"join"`) {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","code":"rate_limited","message":"too many joins"}`))
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "no join"), time.Now().Add(time.Second))
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE relay_connections_refused_total counter\nrelay_connections_refused_total{reason=\"pending_per_address\"} %d\nrelay_connections_refused_total{reason=\"global\"} 0\n", refused.Load())
	})
	srv := httptest.NewServer(mux)
	defer func() { srv.Close(); handlers.Wait() }()

	from := floodAddr(t, "127.0.0.2")
	r, out := runFlood(t, "-url", "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", "-from", from, "-legit-from", "",
		"-idle", "20", "-open-rate", "100", "-joins", "20", "-duration", "2s", "-settle", "1s", "-legit", "2", "-timeout", "3s", "-legit-timeout", "3s")
	checkCounts(t, r)
	if r.Total.RefusedByStatus["429"] == 0 || r.Total.RetryAfter["1"] != r.Total.RefusedByStatus["429"] {
		t.Errorf("refused by status %v, Retry-After %v; want 429s, each with Retry-After 1", r.Total.RefusedByStatus, r.Total.RetryAfter)
	}
	if r.Idle.ClosedByRelay["1008"] == 0 || r.Idle.CloseReasons["1008: no join"] == 0 || r.Idle.HeldMs.P50 < 250 {
		t.Errorf("idle closed by the relay %v (%v), held %+v; want 1008 after 300 ms", r.Idle.ClosedByRelay, r.Idle.CloseReasons, r.Idle.HeldMs)
	}
	if r.Idle.Attempts <= 20 {
		t.Errorf("%d idle attempts: the sockets the relay closed or refused were not replaced", r.Idle.Attempts)
	}
	if r.Joins.Errors["rate_limited"] == 0 || r.Joins.Joined != 0 {
		t.Errorf("join errors %v, joined %d; want rate_limited only", r.Joins.Errors, r.Joins.Joined)
	}
	if r.Total.RefusedPerSec.Peak <= 0 || r.Total.RefusedPerSec.Mean <= 0 {
		t.Errorf("refused per second %+v", r.Total.RefusedPerSec)
	}
	if got := r.Relay.RefusedByReason["pending_per_address"]; got <= 0 || got > float64(r.Total.Refused+4) {
		t.Errorf("relay_connections_refused_total increase %v, the tool saw %d refusals", r.Relay.RefusedByReason, r.Total.Refused)
	}
	if l := r.Legit.Quiet; l.Attempts != 2 || l.Failed != 2 || len(l.Failures) != 2 {
		t.Errorf("legitimate joins against a relay that refuses all: %+v", l)
	}
	for _, want := range []string{"429: ", "rate_limited x", "pending_per_address", "failed: legit-0"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
}

func TestFloodUsage(t *testing.T) {
	defer goleak.VerifyNone(t)
	dead := deadURL(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"-h"}, exitOK, "Usage: loadtest flood"},
		{"stray argument", []string{"now"}, exitUsage, "unexpected argument"},
		{"not an address", []string{"-from", "localhost2"}, exitUsage, "want an IP address"},
		{"more idle sockets than descriptors", []string{"-idle", "100000000"}, exitUsage, "file descriptors"},
		{"bad duration", []string{"-duration", "0s"}, exitUsage, "must be positive"},
		{"an address not on this machine", []string{"-url", dead, "-from", "192.0.2.1"}, exitFailed, "cannot bind 192.0.2.1"},
		{"unreachable relay", []string{"-url", dead, "-from", "127.0.0.1", "-wait-ready", "200ms"}, exitFailed, "is the relay running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, append([]string{"flood", "-quiet"}, tt.args...), noEnv, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("exit %d, want %d with %q\nstderr: %s\nstdout: %s", code, tt.code, tt.stderr, stderr.String(), stdout.String())
			}
		})
	}
}
