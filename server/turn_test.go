package server_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// withTURN runs the embedded TURN server on loopback: UDP, TCP and TLS.
func withTURN(cert *relaytest.Cert) func(*server.Config) {
	return func(c *server.Config) {
		c.TURN = &server.TURNConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0",
			TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, Host: "127.0.0.1"}
	}
}

// urlsWith keeps the ice_servers URLs that start with prefix and contain
// part.
func urlsWith(prefix, part string) func(string) bool {
	return func(u string) bool { return strings.HasPrefix(u, prefix) && strings.Contains(u, part) }
}

// TestTURN: listeners that may use TURN relay candidates only (a browser's
// iceTransportPolicy "relay"), one reaching the TURN server over TCP, one
// over TLS (trusting the test certificate), hear a host byte for byte.
func TestTURN(t *testing.T) {
	cert := relaytest.NewCert(t)
	r, ctx := startRelay(t, withTURN(cert))
	host := join(ctx, t, client.Config{URL: r.URL, Name: "host", Role: protocol.RoleHost, IgnoreICEServers: true})
	tcpL := join(ctx, t, client.Config{URL: r.URL, Name: "turn-tcp", ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		ICEServerURLs: urlsWith("turn:", "transport=tcp")})
	tlsL := join(ctx, t, client.Config{URL: r.URL, Name: "turn-tls", ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		ICEServerURLs: urlsWith("turns:", ""), TLSConfig: &tls.Config{RootCAs: cert.Pool}})
	hearHost(ctx, t, host, map[*client.Client]string{host: "udp", tcpL: "relay/tcp", tlsL: "relay/tls"})
	checkSelected(t, r, map[string]float64{"relay": 2, "udp": 1})
	checkSendPaths(t, r, map[string]float64{"direct": 1, "pion": 2}) // TURN pairs keep pion's path
	for _, tr := range []string{"tcp", "tls"} {
		if v := r.Value(t, "relay_turn_allocations", "transport", tr); v < 1 {
			t.Errorf("relay_turn_allocations{transport=%q} = %v, want at least 1", tr, v)
		}
	}
}

// TestTURNJoined: joined carries the TURN URLs with credentials named
// after the participant, expiring after the TTL; without TURN there are
// none.
func TestTURNJoined(t *testing.T) {
	cert := relaytest.NewCert(t)
	r, ctx := startRelay(t, withTURN(cert))
	c := join(ctx, t, client.Config{URL: r.URL, Name: "a", IgnoreICEServers: true})
	servers := c.Joined().ICEServers
	if len(servers) != 1 || len(servers[0].URLs) != 3 {
		t.Fatalf("ice_servers %+v, want one server with a udp, a tcp and a turns URL", servers)
	}
	for i, prefix := range []string{"turn:127.0.0.1:", "turn:127.0.0.1:", "turns:127.0.0.1:"} {
		if u := servers[0].URLs[i]; !strings.HasPrefix(u, prefix) {
			t.Errorf("URL %d: %q, want %s...", i, u, prefix)
		}
	}
	exp, id, _ := strings.Cut(servers[0].Username, ":")
	if id != c.ID() || exp == "" || servers[0].Credential == "" {
		t.Errorf("username %q, credential %q: want expiry:%s and a credential", servers[0].Username, servers[0].Credential, c.ID())
	}
}

func TestNoTURNNoICEServers(t *testing.T) {
	r, ctx := startRelay(t, nil)
	if s := join(ctx, t, client.Config{URL: r.URL, Name: "b"}).Joined().ICEServers; s != nil {
		t.Errorf("ice_servers without TURN: %+v", s)
	}
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTURNRefuses: the TURN server is no open relay. Without valid
// credentials there is no allocation; with them, at most 12 at once; a
// permission for any address but the relay's media port is refused, and
// a datagram to another port of the relay's address is dropped.
func TestTURNRefuses(t *testing.T) {
	cert := relaytest.NewCert(t)
	r, ctx := startRelay(t, withTURN(cert))
	c := join(ctx, t, client.Config{URL: r.URL, Name: "a", IgnoreICEServers: true})
	srv := c.Joined().ICEServers[0]
	udpURL := srv.URLs[0]
	user, pass := srv.Username, srv.Credential
	expired := "1000000000:" + c.ID()

	for _, tt := range []struct{ name, user, pass string }{
		{"wrong password", user, pass + "x"},
		{"other participant's name", strings.Split(user, ":")[0] + ":p_other", pass},
		{"expired", expired, pass},
		{"not expiry:participant", "alice", pass},
		{"no credentials", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := r.Value(t, "relay_turn_refused_total", "reason", "auth")
			tc := relaytest.TURNClient(t, udpURL, tt.user, tt.pass)
			if pc, err := tc.Allocate(); err == nil {
				_ = pc.Close()
				t.Fatal("allocation granted")
			}
			if tt.user != "" && r.Value(t, "relay_turn_refused_total", "reason", "auth") <= before {
				t.Error("refusal not counted in relay_turn_refused_total{reason=auth}")
			}
		})
	}

	// A participant's credentials hold a bounded number of allocations;
	// the last one granted is used below.
	var tc *turn.Client
	var relayed net.PacketConn
	for i := range 12 {
		tc = relaytest.TURNClient(t, udpURL, user, pass)
		pc, err := tc.Allocate()
		if err != nil {
			t.Fatalf("allocation %d with the relay's credentials: %v", i+1, err)
		}
		defer pc.Close()
		relayed = pc
	}
	if pc, err := relaytest.TURNClient(t, udpURL, user, pass).Allocate(); err == nil {
		_ = pc.Close()
		t.Error("a 13th allocation with one participant's credentials was granted")
	}
	if v := r.Value(t, "relay_turn_refused_total", "reason", "quota"); v < 1 {
		t.Errorf("relay_turn_refused_total{reason=quota} = %v, want at least 1", v)
	}
	for _, peer := range []string{"127.0.0.2:9", "192.0.2.1:50000", "[::1]:50000"} {
		err := tc.CreatePermission(mustUDPAddr(t, peer))
		if err == nil {
			t.Errorf("permission to %s granted", peer)
		}
	}
	if v := r.Value(t, "relay_turn_refused_total", "reason", "permission"); v < 1 {
		t.Errorf("relay_turn_refused_total{reason=permission} = %v", v)
	}

	// 127.0.0.1 is the relay's media address, so the permission stands;
	// but this port is not its media port.
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := relayed.WriteTo([]byte("not media"), other.LocalAddr()); err != nil {
		t.Fatalf("send through the allocation: %v", err)
	}
	for r.Value(t, "relay_turn_refused_total", "reason", "packet") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the datagram to another port was not dropped")
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = other.SetReadDeadline(time.Now())
	if n, _, err := other.ReadFrom(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("another port of the relay's address got %d bytes through TURN (%v)", n, err)
	}

	// A released allocation frees its place in the quota.
	if err := relayed.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		pc, err := relaytest.TURNClient(t, udpURL, user, pass).Allocate()
		if err == nil {
			_ = pc.Close()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no allocation after one was released: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestTURNConfigRefused: a TURN configuration that cannot work fails New
// with what to change, and leaves nothing open.
func TestTURNConfigRefused(t *testing.T) {
	defer goleak.VerifyNone(t)
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		name string
		turn server.TURNConfig
		want string
	}{
		{"no host", server.TURNConfig{UDPAddr: "127.0.0.1:0"}, "-turn-host"},
		{"no listener", server.TURNConfig{Host: "127.0.0.1"}, "at least one"},
		{"TLS without a certificate", server.TURNConfig{Host: "127.0.0.1", TLSAddr: "127.0.0.1:0"}, "certificate"},
		{"UDP port taken", server.TURNConfig{Host: "127.0.0.1", TCPAddr: "127.0.0.1:0", UDPAddr: busy.LocalAddr().String()}, "-turn-udp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			turnCfg := tt.turn
			_, err := server.New(server.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Loopback: true, TURN: &turnCfg, Logger: relaytest.Logger()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
