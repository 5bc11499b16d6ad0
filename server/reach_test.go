package server_test

// Reachability tests: real pion clients that may use only some transports
// (a network that blocks UDP) join the relay in-process on loopback,
// publish real Opus and hear each other byte for byte.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

const testDeadline = 60 * time.Second

// startRelay starts a loopback relay changed by tune, with a deadline and
// a goroutine-leak check that runs after every other cleanup (and ignores
// what ran before: a sub-benchmark's parent).
func startRelay(t testing.TB, tune func(*server.Config)) (*relaytest.Relay, context.Context) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return relaytest.Start(t, relaytest.Options{Tune: tune}), ctx
}

// join dials a loopback client into room "reach" and closes it at cleanup.
func join(ctx context.Context, t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Room, cfg.Loopback, cfg.Logger = "reach", true, relaytest.Logger()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("%s joins: %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sender publishes real Opus from c in 10 ms frames until stopped,
// keeping every payload it sent, in order.
type sender struct {
	mu   sync.Mutex
	sent [][]byte
	stop context.CancelFunc // nil once finished
	done chan error
}

func startSending(ctx context.Context, t *testing.T, c *client.Client) *sender {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	src, err := opusgen.NewSource(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, stop := context.WithCancel(ctx)
	s := &sender{stop: stop, done: make(chan error, 1)}
	go func() {
		s.done <- relaytest.SendOpus(sendCtx, pub, src, func(p []byte, _ *rtp.Packet) error {
			s.mu.Lock()
			s.sent = append(s.sent, append([]byte(nil), p...))
			s.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { s.finish(t) })
	return s
}

// finish stops the sender (once; by the test's goroutine) and fails t if
// sending failed.
func (s *sender) finish(t *testing.T) {
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	if err := <-s.done; err != nil {
		t.Errorf("sending: %v", err)
	}
}

func (s *sender) payloads() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// hear reads c's first remote track until n packets have arrived, and
// returns their payloads in order.
func hear(ctx context.Context, c *client.Client, n int) ([][]byte, error) {
	var rt *client.RemoteTrack
	select {
	case rt = <-c.Tracks():
	case <-ctx.Done():
		return nil, fmt.Errorf("no track before the deadline")
	}
	var got [][]byte
	for len(got) < n {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return got, fmt.Errorf("reading the track after %d packets: %w", len(got), err)
		}
		if len(pkt.Payload) == 0 {
			continue
		}
		got = append(got, pkt.Payload)
	}
	return got, nil
}

// hearHost waits until every client is connected, has host publish, and
// checks that each listener hears it byte for byte over the transport
// given for it (and each client, host too, uses the transport given).
func hearHost(ctx context.Context, t *testing.T, host *client.Client, transports map[*client.Client]string) {
	t.Helper()
	for c := range transports {
		if err := c.SubConnected(ctx); err != nil {
			t.Fatalf("%s: %v", c.Joined().Participant.Name, err)
		}
	}
	s := startSending(ctx, t, host)
	const n = 150
	var mu sync.Mutex
	heard := make(map[*client.Client][][]byte)
	var errs []error
	var wg sync.WaitGroup
	for c := range transports {
		if c == host {
			continue
		}
		wg.Go(func() {
			got, err := hear(ctx, c, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.Joined().Participant.Name, err))
			}
			heard[c] = got
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s.finish(t)
	for c, want := range transports {
		if got, err := c.SubTransport(); err != nil || got != want {
			t.Errorf("%s's sub transport: %q (%v), want %q", c.Joined().Participant.Name, got, err, want)
		}
	}
	for c, got := range heard {
		checkHeard(t, c.Joined().Participant.Name, s.payloads(), got)
	}
}

// checkHeard fails t unless every payload heard is one sent, byte for
// byte, in the order sent, with at most a tenth of those in between lost.
func checkHeard(t *testing.T, who string, sent, heard [][]byte) {
	t.Helper()
	i := 0 // index into sent
	first := -1
	for k, p := range heard {
		for i < len(sent) && !bytes.Equal(sent[i], p) {
			i++
		}
		if i == len(sent) {
			t.Fatalf("%s: packet %d heard (%d bytes) is not one sent after the one before it", who, k, len(p))
		}
		if first < 0 {
			first = i
		}
		i++
	}
	if span := i - first; len(heard) < span*9/10 {
		t.Errorf("%s heard %d of the %d packets sent meanwhile", who, len(heard), span)
	}
}

// tcpOnly is a client whose network blocks UDP.
var tcpOnly = []webrtc.NetworkType{webrtc.NetworkTypeTCP4}

// TestICETCP: a host whose network blocks UDP publishes over ICE-TCP; a
// listener that may use TCP only and one on UDP hear it byte for byte.
// With two listeners each packet's fan-out opens a UDP write batch, so the
// TCP listener's writes happen while a batch is open: they must go
// straight to the TCP connection, not be set aside with the UDP ones.
func TestICETCP(t *testing.T) {
	r, ctx := startRelay(t, func(c *server.Config) { c.TCPAddr = "127.0.0.1:0" })
	host := join(ctx, t, client.Config{URL: r.URL, Name: "host", Role: protocol.RoleHost, NetworkTypes: tcpOnly})
	tcpL := join(ctx, t, client.Config{URL: r.URL, Name: "tcp-listener", NetworkTypes: tcpOnly})
	udpL := join(ctx, t, client.Config{URL: r.URL, Name: "udp-listener"})
	hearHost(ctx, t, host, map[*client.Client]string{host: "tcp", tcpL: "tcp", udpL: "udp"})
	checkSelected(t, r, map[string]float64{"tcp": 2, "udp": 1})
	// The UDP listener's packets are encrypted into the send batch by
	// the relay; the two TCP subs fall back to pion's send path.
	checkSendPaths(t, r, map[string]float64{"direct": 1, "pion": 2})
}

// checkSendPaths fails t unless relay_sub_send_path_total counts at
// least min of each send path.
func checkSendPaths(t *testing.T, r *relaytest.Relay, min map[string]float64) {
	t.Helper()
	for path, n := range min {
		if v := r.Value(t, "relay_sub_send_path_total", "path", path); v < n {
			t.Errorf("relay_sub_send_path_total{path=%q} = %v, want at least %v", path, v, n)
		}
	}
}

// checkSelected fails t unless relay_ice_selected_total counts at least
// min selections of each transport.
func checkSelected(t *testing.T, r *relaytest.Relay, min map[string]float64) {
	t.Helper()
	for tr, n := range min {
		if v := r.Value(t, "relay_ice_selected_total", "transport", tr); v < n {
			t.Errorf("relay_ice_selected_total{transport=%q} = %v, want at least %v", tr, v, n)
		}
	}
}

// TestICETCPBadAddress: a TCP port that cannot be opened fails New with
// the flag to change, and leaves nothing open.
func TestICETCPBadAddress(t *testing.T) {
	defer goleak.VerifyNone(t)
	_, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "192.0.2.1:0", Loopback: true, Logger: relaytest.Logger()})
	if err == nil || !strings.Contains(err.Error(), "-tcp") {
		t.Fatalf("New with an address not on this machine: %v, want an error naming -tcp", err)
	}
}
