package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/server"
	"go.uber.org/goleak"
)

// TestTransports: with each transport the audience's sub connections
// select a pair of that kind on the relay (relay_ice_selected_total,
// counted by the relay), the publishers' stay on UDP, and everyone hears
// every publisher.
func TestTransports(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("relay", testTransports)
}

func testTransports(t *testing.T) {
	cert := relaytest.NewCert(t)
	relay := relaytest.Start(t, relaytest.Options{Tune: func(c *server.Config) {
		c.TCPAddr = "127.0.0.1:0"
		c.TURN = &server.TURNConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0",
			TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, Host: "127.0.0.1"}
	}})
	for _, tt := range []struct{ transport, selected string }{
		{TransportUDP, "udp"},
		{TransportTCP, "tcp"},
		{TransportTURNUDP, "relay"},
		{TransportTURNTCP, "relay"},
		{TransportTURNTLS, "relay"},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
			defer cancel()
			before := map[string]float64{}
			for _, k := range []string{"udp", "tcp", "relay"} {
				before[k] = relay.Value(t, "relay_ice_selected_total", "transport", k)
			}
			sc := smallScenario()
			sc.Transport = tt.transport
			rep, err := Run(ctx, sc, Config{URL: relay.URL, Loopback: true, TLSConfig: &tls.Config{RootCAs: cert.Pool},
				Logger: testLogger(), ClientLog: testLogger()})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if rep.Joins.Failed != 0 || rep.Audio.MissingPublishers != 0 {
				t.Fatalf("joins failed: %v; missing: %v", rep.Joins.Failures, rep.Audio.Missing)
			}
			want := map[string]float64{"udp": float64(sc.Hosts + sc.Guests)} // publishers hear each other over UDP
			want[tt.selected] += float64(sc.Audience)
			// The probe listener of Run's preflight waits for its
			// connection over any transport but UDP; over UDP it may
			// leave before connecting.
			probe := 1.0
			if tt.transport != TransportUDP {
				want[tt.selected]++
				probe = 0
			}
			for _, k := range []string{"udp", "tcp", "relay"} {
				got := relay.Value(t, "relay_ice_selected_total", "transport", k) - before[k]
				if got != want[k] && (k != tt.selected || got != want[k]+probe) {
					t.Errorf("sub connections selecting %s: %v, want %v", k, got, want[k])
				}
			}
		})
	}
}

// TestTransportMissing: a transport the relay does not offer (here
// neither ICE-TCP nor TURN) fails at the probe join, saying what the
// relay must run.
func TestTransportMissing(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("relay", func(t *testing.T) {
		relay := relaytest.Start(t, relaytest.Options{})
		for _, tt := range []struct{ transport, want string }{
			{TransportTCP, "-tcp"},
			{TransportTURNUDP, "-turn-udp"},
			{TransportTURNTLS, "-tls-ca"},
		} {
			t.Run(tt.transport, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
				defer cancel()
				sc := smallScenario()
				sc.Transport, sc.JoinTimeout = tt.transport, Duration(3*time.Second)
				_, err := Run(ctx, sc, Config{URL: relay.URL, Loopback: true, Logger: testLogger(), ClientLog: testLogger()})
				if !errors.Is(err, ErrRelayUnreachable) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Run: %v, want ErrRelayUnreachable mentioning %s", err, tt.want)
				}
			})
		}
	})
}
