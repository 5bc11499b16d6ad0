package sfu_test

// What an audience listener costs the relay in goroutines, counted exactly
// (issue 19, "a lighter listener"). The relay and its clients share this
// process, so runtime.NumGoroutine cannot tell them apart: every client
// is started under a pprof label, which the goroutines it starts inherit,
// and the relay's goroutines are those of the goroutine profile without
// it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// maxGoroutinesPerListener bounds what one audience listener (its sub
// connection and its session) costs the relay: 21 with the join data
// channel, 17 without, 16 with the relay's own sender reports, 15 with
// the socket readers serving a direct listener's RTCP (no RTCP reader per
// track), 14 with the session's writer running only while it writes, 13
// with the relay's own UDP mux (no goroutine of pion's mux per
// connection), 1 once the relay takes the connection over from pion
// (sfu/takeover.go): the session's reader. Issue 19's budget is 8
// (docs/performance.md, "Taking a listener over from pion").
const maxGoroutinesPerListener = 1

const clientLabel = "lianmai-side"

// relayGoroutines counts this process's goroutines that carry no client
// label, by the function each was started with.
func relayGoroutines(t *testing.T) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	// debug=1: groups separated by blank lines, each "N @ pcs", an
	// optional "# labels: {...}", then "#\t0xpc\tfunc+off\tfile:line"
	// frames, innermost first: the last frame is the goroutine's start.
	// The "goroutine profile: total N" header shares the first group's
	// paragraph.
	_, groups, ok := strings.Cut(buf.String(), "\n")
	if !ok {
		t.Fatalf("goroutine profile without groups: %q", buf.String())
	}
	for _, group := range strings.Split(groups, "\n\n") {
		lines := strings.Split(strings.TrimSpace(group), "\n")
		n, err := strconv.Atoi(strings.SplitN(lines[0], " ", 2)[0])
		if err != nil {
			if strings.TrimSpace(group) == "" {
				continue
			}
			t.Fatalf("goroutine profile group %q: no count", lines[0])
		}
		entry := ""
		labelled := false
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "# labels:") && strings.Contains(l, clientLabel) {
				labelled = true
			}
			if f := strings.Split(l, "\t"); len(f) >= 3 && f[0] == "#" {
				entry = f[2]
				if i := strings.LastIndex(entry, "+0x"); i > 0 {
					entry = entry[:i]
				}
			}
		}
		if !labelled {
			counts[entry] += n
		}
	}
	return counts
}

// asClient runs f, and every goroutine it starts, under the client label.
func asClient(f func(ctx context.Context)) {
	pprof.Do(context.Background(), pprof.Labels(clientLabel, "client"), f)
}

// listenerGoroutines joins a publishing host and n audience listeners,
// waits until each hears the host, and returns the relay's goroutines
// that the listeners added, by start function.
func listenerGoroutines(t *testing.T, n int) map[string]int {
	r, ctx := relaytest.StartChecked(t, relaytest.Options{}, 90*time.Second)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the clients close (cleanups run last first)

	var host *client.Client
	asClient(func(context.Context) {
		host = r.Dial(ctx, t, client.Config{Room: "cost", Name: "host", Role: protocol.RoleHost})
		pub, err := host.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		src, err := opusgen.NewSource(1, 1)
		if err != nil {
			t.Fatal(err)
		}
		sendCtx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = relaytest.SendOpus(sendCtx, pub, src, nil)
		}()
	})
	if err := host.SubConnected(ctx); err != nil {
		t.Fatal(err)
	}
	relaytest.WaitEvent[*protocol.TrackPublished](ctx, t, host, nil)
	before := settledRelayGoroutines(t)

	heard := make(chan error, n)
	for i := range n {
		asClient(func(context.Context) {
			aud := r.Dial(ctx, t, client.Config{Room: "cost", Name: fmt.Sprintf("l%d", i), Role: protocol.RoleAudience})
			wg.Add(1)
			go func() {
				defer wg.Done()
				heard <- hear(ctx, aud)
			}()
		})
	}
	for range n {
		if err := <-heard; err != nil {
			t.Fatal(err)
		}
	}
	// Every listener's sub connection, and the host's, taken over.
	for r.Value(t, "relay_sub_takeovers_total") < float64(n+1) {
		select {
		case <-ctx.Done():
			t.Fatalf("%v of %d sub connections taken over before the deadline", r.Value(t, "relay_sub_takeovers_total"), n+1)
		case <-time.After(20 * time.Millisecond):
		}
	}
	after := settledRelayGoroutines(t)
	for k, v := range before {
		after[k] -= v
	}
	return after
}

// hear waits for aud's first track, reads a packet, and keeps draining
// the track so that its buffer never fills.
func hear(ctx context.Context, aud *client.Client) error {
	var rt *client.RemoteTrack
	select {
	case rt = <-aud.Tracks():
	case <-ctx.Done():
		return fmt.Errorf("%s: no track", aud.ID())
	}
	if _, _, err := rt.Track.ReadRTP(); err != nil {
		return fmt.Errorf("%s: %w", aud.ID(), err)
	}
	go func() {
		for {
			if _, _, err := rt.Track.ReadRTP(); err != nil {
				return
			}
		}
	}()
	return nil
}

// settledRelayGoroutines returns the relay's goroutines once their total
// has stayed the same over a few profiles: joins leave short-lived
// goroutines (candidate gathering, negotiation) behind for a moment.
func settledRelayGoroutines(t *testing.T) map[string]int {
	t.Helper()
	total := func(m map[string]int) (s int) {
		for _, v := range m {
			s += v
		}
		return s
	}
	last, same := relayGoroutines(t), 0
	for same < 5 {
		time.Sleep(100 * time.Millisecond)
		cur := relayGoroutines(t)
		if total(cur) == total(last) {
			same++
		} else {
			same = 0
		}
		last = cur
	}
	return last
}

// TestListenerGoroutines: an audience listener costs the relay at most
// maxGoroutinesPerListener goroutines. LISTENER_COST_N changes the number
// of listeners (default 10); -v prints them by start function.
func TestListenerGoroutines(t *testing.T) {
	n := 10
	if s := os.Getenv("LISTENER_COST_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("LISTENER_COST_N=%q: want a positive number", s)
		}
	}
	added := listenerGoroutines(t, n)
	var names []string
	total := 0
	for k, v := range added {
		if v != 0 {
			names = append(names, k)
			total += v
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return added[names[i]] > added[names[j]] || added[names[i]] == added[names[j]] && names[i] < names[j]
	})
	for _, k := range names {
		t.Logf("%6.2f per listener  %s", float64(added[k])/float64(n), k)
	}
	// The classification sees the relay: each listener has its session's
	// reader, and nothing the clients run is counted (the client's pion
	// has the same functions as the relay's, under the label). A direct
	// listener's track has no RTCP reader: the socket readers serve it.
	if readers := added["github.com/lianmai/relay/signaling.(*Server).startSession.func2"]; readers != n {
		t.Errorf("%d session readers added for %d listeners: the profile's classification is off", readers, n)
	}
	if rtcp := added["github.com/lianmai/relay/media.(*DownTrack).rtcpLoop"]; rtcp != 0 {
		t.Errorf("%d down-track RTCP readers added for %d direct listeners, want none", rtcp, n)
	}
	per := float64(total) / float64(n)
	t.Logf("%d listeners: %d relay goroutines, %.2f per listener", n, total, per)
	// Whole goroutines per listener: the fraction is the relay-wide loops
	// the first listener started (the sender-report loop), fewer than n.
	if whole := total / n; whole > maxGoroutinesPerListener {
		t.Errorf("%d relay goroutines per listener (%.2f), want at most %d", whole, per, maxGoroutinesPerListener)
	}
}

// TestListenersShareCertificate: two audience listeners' sub offers carry
// the relay's one DTLS fingerprint, and both connect with it.
func TestListenersShareCertificate(t *testing.T) {
	r, ctx := relaytest.StartChecked(t, relaytest.Options{}, 60*time.Second)
	var fps []string
	for i := range 2 {
		aud := r.Dial(ctx, t, client.Config{Room: "cert", Name: fmt.Sprintf("l%d", i), Role: protocol.RoleAudience})
		if err := aud.SubConnected(ctx); err != nil {
			t.Fatal(err)
		}
		var fp string
		for _, l := range strings.Split(aud.SubOfferSDP(), "\n") {
			if strings.HasPrefix(l, "a=fingerprint:") {
				fp = strings.TrimSpace(l)
				break
			}
		}
		if fp == "" {
			t.Fatalf("no fingerprint in the sub offer:\n%s", aud.SubOfferSDP())
		}
		fps = append(fps, fp)
	}
	if fps[0] != fps[1] {
		t.Errorf("fingerprints %q and %q: want the relay's one certificate", fps[0], fps[1])
	}
}
