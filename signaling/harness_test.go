package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// testDeadline bounds every test that starts peers; the race detector and
// a shared machine make pion slow, so it is generous.
const testDeadline = 60 * time.Second

// relay is an in-process relay on loopback: the sfu, signaling and an HTTP
// server on 127.0.0.1:0.
type relay struct {
	url     string
	reg     *prometheus.Registry
	metrics *sfu.Metrics
}

type relayOpts struct {
	seats int
	grace time.Duration
}

// testLogger discards unless RELAY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startRelay starts a relay for t and registers its shutdown, then (run
// last) a goroutine-leak check. It returns ctx bounded by testDeadline.
func startRelay(t *testing.T, o relayOpts) (*relay, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)

	udp, err := sfu.ListenUDP("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	if o.grace == 0 {
		o.grace = 10 * time.Second
	}
	reg := prometheus.NewRegistry()
	m := sfu.NewMetrics(reg)
	s, err := sfu.New(sfu.Config{
		Seats:       o.seats,
		GracePeriod: o.grace,
		ICE:         sfu.ICEConfig{UDPMux: udp, Loopback: true},
		Metrics:     m,
		Logger:      testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	sig := signaling.NewServer(signaling.Params{SFU: s, Registry: reg, Config: signaling.Config{Logger: testLogger()}})
	mux := http.NewServeMux()
	mux.Handle("/ws", sig)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := sig.Shutdown(sctx); err != nil {
			t.Errorf("relay shutdown: %v", err)
		}
		hs.Close()
	})
	return &relay{url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", reg: reg, metrics: m}, ctx
}

// join dials a client into room and closes it at cleanup.
func (r *relay) join(ctx context.Context, t *testing.T, room, name, role string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Config{URL: r.url, Room: room, Name: name, Role: role, Loopback: true, Logger: testLogger()})
	if err != nil {
		t.Fatalf("%s joins %s as %s: %v", name, room, role, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitEvent returns the first event from c that match accepts, failing t
// if none comes before ctx ends. Other events are skipped.
func waitEvent[T any](ctx context.Context, t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			if e, ok := ev.(T); ok && (match == nil || match(e)) {
				return e
			}
		case <-ctx.Done():
			var zero T
			t.Fatalf("%s: no %T event before the deadline", c.ID(), zero)
			return zero
		}
	}
}

// serverError returns err as a *client.ServerError, failing t otherwise.
func serverError(t *testing.T, err error) *client.ServerError {
	t.Helper()
	var se *client.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want an error message from the relay, got %v", err)
	}
	return se
}

// counter reads a counter or gauge from the relay's registry.
func (r *relay) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
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

// ping checks that c's connection still answers.
func ping(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	id := fmt.Sprintf("ping-%d", time.Now().UnixNano())
	reply, err := c.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing, ID: id}}, id)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, ok := reply.(*protocol.Pong); !ok {
		t.Fatalf("ping got %T, want pong", reply)
	}
}
