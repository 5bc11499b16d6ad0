// Package relaytest starts a whole relay in-process on loopback for tests:
// the sfu with a UDP port on 127.0.0.1, signaling, and an HTTP server on
// 127.0.0.1:0. The signaling, client and load generator tests share it.
package relaytest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/gctune"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options change the relay's defaults; zero values keep them.
type Options struct {
	Seats      int
	Grace      time.Duration
	MicTimeout time.Duration
	AuthSecret string
	// Page, when set, is served at "/" next to /ws (the browser tests
	// mount web.Handler here, as cmd/relay does).
	Page http.Handler
	// Tune, when set, changes the sfu and signaling settings last (limits
	// for the tests that cross them).
	Tune func(*sfu.Config, *signaling.Config)
}

// Relay is a running in-process relay.
type Relay struct {
	URL        string // ws://127.0.0.1:port/ws
	HTTPURL    string // http://127.0.0.1:port, where Options.Page is served
	MetricsURL string // http://127.0.0.1:port/metrics, as the relay serves it
	Registry   *prometheus.Registry
	// Signaling is the relay's signaling server, for tests that drive its
	// lifecycle (Drain) themselves; Start's cleanup shuts it down.
	Signaling *signaling.Server
}

// Logger discards, unless RELAY_TEST_LOG is set: then debug to stderr.
func Logger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a relay and registers its shutdown with tb.Cleanup.
func Start(tb testing.TB, o Options) *Relay {
	tb.Helper()
	udp, err := sfu.ListenUDP("127.0.0.1:0", true)
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), gctune.NewCollector())
	sc := sfu.Config{
		Seats:       o.Seats,
		GracePeriod: o.Grace,
		MicTimeout:  o.MicTimeout,
		ICE:         sfu.ICEConfig{UDPMux: udp, Loopback: true},
		Metrics:     sfu.NewMetrics(reg),
		Logger:      Logger(),
	}
	gc := signaling.Config{Logger: Logger(), AuthSecret: []byte(o.AuthSecret)}
	if o.Tune != nil {
		o.Tune(&sc, &gc)
	}
	s, err := sfu.New(sc)
	if err != nil {
		tb.Fatal(err)
	}
	sig := signaling.NewServer(signaling.Params{SFU: s, Registry: reg, Config: gc})
	mux := http.NewServeMux()
	mux.Handle("/ws", sig)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if o.Page != nil {
		mux.Handle("/", o.Page)
	}
	hs := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sig.Shutdown(ctx); err != nil {
			tb.Errorf("relay shutdown: %v", err)
		}
		hs.Close()
	})
	return &Relay{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", HTTPURL: hs.URL, MetricsURL: hs.URL + "/metrics", Registry: reg, Signaling: sig}
}

// Value reads a counter or gauge from the relay's metrics; labels are
// name, value pairs the metric must have. 0 if there is none.
func (r *Relay) Value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := r.Registry.Gather()
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
