package signaling_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
)

// dialFrom opens a WebSocket to the relay from the loopback address local
// (every 127.x.y.z is this machine), so that a test can play several
// client addresses. On refusal it returns the HTTP response.
func (r *relay) dialFrom(ctx context.Context, t *testing.T, local string) (*raw, *http.Response) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
	conn, resp, err := d.DialContext(ctx, r.URL, nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial from %s: %v", local, err)
		}
		return nil, resp
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &raw{t: t, conn: conn}, nil
}

// expectRefused checks a refused upgrade: status, a Retry-After, and a
// body that says what to do.
func expectRefused(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("HTTP %d (%s), want %d", resp.StatusCode, body, status)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want a number of seconds", resp.Header.Get("Retry-After"))
	}
	if len(body) < 20 {
		t.Errorf("body %q does not say what to do", body)
	}
}

// joinMsg is an audience join into a room of its own.
func joinMsg(room, name string) string {
	return fmt.Sprintf(`{"type":"join","id":"j","room":%q,"name":%q,"role":"audience"}`, room, name)
}

// TestAddressLimits: one address over each of its allowances is refused
// while a room of clients from another address keeps its media, and the
// address gets its allowance back as connections close.
func TestAddressLimits(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) {
		c.Signaling.MaxPendingPerAddr = 3
		c.Signaling.JoinRatePerAddr = 0.5
		c.Signaling.JoinBurstPerAddr = 3
		c.Signaling.MaxJoinedPerAddr = 3
	}})
	// A room whose clients dial from 127.0.0.1: host, listener and, later,
	// one more (3 joins: its whole burst and joined allowance).
	unaffected := liveRoom(ctx, t, r, "legit")

	t.Run("pending connections", func(t *testing.T) {
		const flooder = "127.0.0.2"
		var open []*raw
		for range 3 {
			w, resp := r.dialFrom(ctx, t, flooder)
			if resp != nil {
				t.Fatalf("connection %d refused with %d, want accepted", len(open)+1, resp.StatusCode)
			}
			open = append(open, w)
		}
		_, resp := r.dialFrom(ctx, t, flooder)
		if resp == nil {
			t.Fatal("a 4th unjoined connection from one address was accepted, want 429")
		}
		expectRefused(t, resp, http.StatusTooManyRequests)
		if n := r.counter(t, "relay_connections_refused_total", "reason", "pending_per_address"); n != 1 {
			t.Errorf("refused{pending_per_address} = %v, want 1", n)
		}
		// Another address is not affected.
		late := r.join(ctx, t, "legit", "Late", protocol.RoleAudience)
		ping(ctx, t, late)
		unaffected(t)
		// A connection that joins stops counting as pending.
		open[0].join(joinMsg("flood-a", "a"))
		if w, resp := r.dialFrom(ctx, t, flooder); resp != nil {
			t.Fatalf("after one joined: refused with %d, want accepted", resp.StatusCode)
		} else {
			w.send(`{"type":"ping","id":"p"}`)
			if m := w.read(); m["type"] != "pong" {
				t.Fatalf("got %v, want pong", m)
			}
		}
	})

	t.Run("join rate", func(t *testing.T) {
		const flooder = "127.0.0.3"
		for i := range 3 { // the burst; each leaves again, so the joined cap is not what stops it
			w, resp := r.dialFrom(ctx, t, flooder)
			if resp != nil {
				t.Fatalf("dial %d refused with %d", i, resp.StatusCode)
			}
			w.join(joinMsg("flood-b", fmt.Sprint("b", i)))
			w.send(`{"type":"leave"}`)
			w.expectClose(websocket.CloseNormalClosure)
		}
		w, resp := r.dialFrom(ctx, t, flooder)
		if resp != nil {
			t.Fatalf("dial refused with %d", resp.StatusCode)
		}
		w.send(joinMsg("flood-b", "b3"))
		expectError(t, w.read(), protocol.CodeRateLimited, "j")
		w.expectClose(websocket.ClosePolicyViolation)
		if n := r.counter(t, "relay_connections_refused_total", "reason", "join_rate"); n != 1 {
			t.Errorf("refused{join_rate} = %v, want 1", n)
		}
		unaffected(t)
	})

	t.Run("joined participants", func(t *testing.T) {
		const flooder = "127.0.0.4"
		for i := range 3 {
			w, resp := r.dialFrom(ctx, t, flooder)
			if resp != nil {
				t.Fatalf("dial %d refused with %d", i, resp.StatusCode)
			}
			w.join(joinMsg("flood-c", fmt.Sprint("c", i)))
		}
		w, resp := r.dialFrom(ctx, t, flooder)
		if resp != nil {
			t.Fatalf("dial refused with %d", resp.StatusCode)
		}
		w.send(joinMsg("flood-c", "c3"))
		expectError(t, w.read(), protocol.CodeRateLimited, "j")
		w.expectClose(websocket.ClosePolicyViolation)
		if n := r.counter(t, "relay_connections_refused_total", "reason", "joined_per_address"); n != 1 {
			t.Errorf("refused{joined_per_address} = %v, want 1", n)
		}
		unaffected(t)
	})
}

// TestConnectionCap: past 95% of the cap /readyz fails and a join gets
// unavailable; at the cap an upgrade gets 503; below it the relay is
// ready again.
func TestConnectionCap(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.MaxConnections = 4 }})
	ready := func() int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HTTPURL+"/readyz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if n := r.counter(t, "relay_connection_limit"); n != 4 {
		t.Errorf("relay_connection_limit = %v, want 4", n)
	}
	var open []*raw
	for i := range 3 {
		w, resp := r.dialFrom(ctx, t, fmt.Sprintf("127.0.1.%d", i+1))
		if resp != nil {
			t.Fatalf("connection %d refused with %d", i+1, resp.StatusCode)
		}
		open = append(open, w)
	}
	if s := ready(); s != http.StatusOK {
		t.Fatalf("/readyz %d with 3 of 4 connections, want 200", s)
	}
	fourth, resp := r.dialFrom(ctx, t, "127.0.1.4")
	if resp != nil {
		t.Fatalf("4th connection refused with %d", resp.StatusCode)
	}
	if s := ready(); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with 4 of 4 connections, want 503", s)
	}
	_, resp = r.dialFrom(ctx, t, "127.0.1.5")
	if resp == nil {
		t.Fatal("a 5th connection was accepted past the cap of 4")
	}
	expectRefused(t, resp, http.StatusServiceUnavailable)
	fourth.send(joinMsg("cap", "d"))
	expectError(t, fourth.read(), protocol.CodeUnavailable, "j")
	fourth.expectClose(websocket.ClosePolicyViolation)
	waitFor(ctx, t, "/readyz to recover below the cap", func() bool { return ready() == http.StatusOK })
	open[0].join(joinMsg("cap", "a"))
	for reason, want := range map[string]float64{"connection_cap": 1, "near_capacity": 1} {
		if n := r.counter(t, "relay_connections_refused_total", "reason", reason); n != want {
			t.Errorf("refused{%s} = %v, want %v", reason, n, want)
		}
	}
}

// TestRefusalReachesGoClient: a client refused at the upgrade learns why
// and when to retry, not only a status code.
func TestRefusalReachesGoClient(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.MaxPendingPerAddr = 1 }})
	if _, resp := r.dialFrom(ctx, t, "127.0.0.1"); resp != nil {
		t.Fatalf("first connection refused with %d", resp.StatusCode)
	}
	_, err := client.Dial(ctx, client.Config{URL: r.URL, Room: "x", Name: "x", Loopback: true, Logger: relaytest.Logger()})
	if err == nil {
		t.Fatal("a second unjoined connection was accepted with a limit of 1")
	}
	for _, want := range []string{"HTTP 429", "have not joined yet", "retry after 10 s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
