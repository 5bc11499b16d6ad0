// Package relaytest starts a whole relay in-process on loopback for tests,
// built by server.New as cmd/relay builds it: a UDP port on 127.0.0.1 and an
// HTTP server on 127.0.0.1:0 serving the production routes. The signaling,
// client, load generator and browser tests share it.
package relaytest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/cluster"
	"github.com/lianmai/relay/mix"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
)

// Options change the relay's defaults; zero values keep them.
type Options struct {
	Seats      int
	Grace      time.Duration
	MicTimeout time.Duration
	AuthSecret string
	// PassMix gives the relay the pass-through test double of the
	// audience mixer (passmix.go; Relay.Mixes), for tests of the room
	// layer's mix handling; without it (and without Mix) the relay has
	// no mix.
	PassMix bool
	// Mix gives the relay the real audience mixer, server.LibopusMixer
	// (package mix, libopus), as the relay binary has it: for the tests
	// and measurements of the mix itself, end to end. PassMix wins if
	// both are set.
	Mix bool
	// NATS, when set, makes the relay a node of a cluster on that NATS
	// server (package cluster): NodeID names it (default "node" plus the
	// port), its node URL is its own ws://127.0.0.1:port/ws. ClusterTTL
	// and ClusterOpTimeout shorten the directory's timing for tests
	// (zero: cluster's defaults).
	NATS             string
	NodeID           string
	ClusterTTL       time.Duration
	ClusterOpTimeout time.Duration
	// Tune, when set, changes the relay's settings last (limits for the
	// tests that cross them).
	Tune func(*server.Config)
}

// TakeoverAfter is how soon the test relays take a direct sub connection
// over from pion (sfu.Config.TakeoverAfter): a little after the handshake.
var TakeoverAfter = 300 * time.Millisecond

// Relay is a running in-process relay, built by server.New as cmd/relay
// builds it and serving the same routes (the page at "/"). Drain and
// Shutdown drive its lifecycle; Start's cleanup shuts it down.
type Relay struct {
	*server.Server
	URL        string // ws://127.0.0.1:port/ws
	HTTPURL    string // http://127.0.0.1:port, where the page is served
	MetricsURL string // http://127.0.0.1:port/metrics
	// Mixes is the pass-through mixer double's record of its mixers, with
	// Options.PassMix; nil without.
	Mixes *PassMixes

	stopOnce sync.Once
	stop     func()
}

// Stop shuts the relay down (its sessions, media port and HTTP server)
// before the test ends, as a node that goes away; the cleanup then does
// nothing more.
func (r *Relay) Stop() { r.stopOnce.Do(r.stop) }

// Logger discards, unless RELAY_TEST_LOG is set: then debug to stderr.
func Logger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a relay on loopback and registers its shutdown with
// tb.Cleanup.
func Start(tb testing.TB, o Options) *Relay {
	tb.Helper()
	cfg := server.Config{
		UDPAddr:  "127.0.0.1:0",
		Loopback: true,
		// Sub connections are taken over from pion soon after they are up
		// (sfu/takeover.go), so that every test's later negotiations,
		// NACKs and reports run on the relay's own side of them.
		SFU: sfu.Config{Seats: o.Seats, GracePeriod: o.Grace, MicTimeout: o.MicTimeout, TakeoverAfter: TakeoverAfter},
		// Every test client dials from 127.0.0.1: the per-address limits
		// are off unless a test turns them on with Tune.
		Signaling: signaling.Config{AuthSecret: []byte(o.AuthSecret),
			MaxPendingPerAddr: -1, JoinRatePerAddr: -1, MaxJoinedPerAddr: -1},
		Logger: Logger(),
	}
	var mixes *PassMixes
	switch {
	case o.PassMix:
		mixes = &PassMixes{}
		cfg.NewMixer = mixes.New
	case o.Mix:
		if !server.MixAvailable {
			tb.Fatal("relaytest: Options.Mix needs the libopus mixer, and this build has none: build with cgo and libopus-dev")
		}
		cfg.NewMixer = server.LibopusMixer
		// As cmd/relay's flag default: a zero MixConfig would mean
		// complexity 0, the cheapest and worst.
		cfg.Mix.Complexity = mix.ComplexityDefault
	}
	// The HTTP port first: a cluster node announces its URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	wsURL := "ws://" + ln.Addr().String() + "/ws"
	if o.NATS != "" {
		id := o.NodeID
		if id == "" {
			id = "node" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		}
		cfg.Cluster = &cluster.Config{NATSURL: o.NATS, NodeID: id, NodeURL: wsURL,
			TTL: o.ClusterTTL, OpTimeout: o.ClusterOpTimeout, ReconnectWait: 100 * time.Millisecond}
	}
	if o.Tune != nil {
		o.Tune(&cfg)
	}
	rl, err := server.New(cfg)
	if err != nil {
		_ = ln.Close()
		tb.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(rl.Handler())
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	r := &Relay{Server: rl, URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", HTTPURL: hs.URL, MetricsURL: hs.URL + "/metrics", Mixes: mixes}
	r.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rl.Shutdown(ctx); err != nil {
			tb.Errorf("relay shutdown: %v", err)
		}
		hs.Close()
	}
	tb.Cleanup(r.Stop)
	return r
}

// Value reads a counter or gauge from the relay's metrics; labels are
// name, value pairs the metric must have. 0 if there is none.
func (r *Relay) Value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := r.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
