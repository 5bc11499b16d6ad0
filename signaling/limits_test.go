package signaling_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
)

// limitOpts lowers every limit so that a test can cross it quickly.
var limitOpts = relayOpts{Tune: func(c *server.Config) {
	sc, gc := &c.SFU, &c.Signaling
	sc.MaxTracks = 1
	gc.MessageRate = 5
	gc.MessageBurst = 20
	gc.MaxSDPSize = 4096
	gc.JoinTimeout = 300 * time.Millisecond
	gc.AllowedOrigins = []string{"https://app.example.com"}
}}

// liveRoom joins into room a host that publishes and a listener that hears
// it, waits until the audio flows, and returns a check that a limit crossed elsewhere left them alone:
// the host still answers and its audio still reaches the listener. The
// publishing stops at t's cleanup.
func liveRoom(ctx context.Context, t *testing.T, r *relay, room string) (unaffected func(*testing.T)) {
	t.Helper()
	host := r.join(ctx, t, room, "Host", protocol.RoleHost)
	listener := r.join(ctx, t, room, "Listener", protocol.RoleAudience)
	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	t.Cleanup(stopPub)
	go func() { _, _ = publish(pubCtx, pub, 7, 6000) }()
	heard := receive(ctx, listener)
	// Live before the test goes on: the relay announces a track at its
	// first packet, and an announcement after this point would reach the
	// test's own raw clients in the room between their join and the reply
	// they wait for.
	waitFor(ctx, t, "the listener to hear the host", func() bool { return heard.count(host.ID()) > 0 })
	return func(t *testing.T) {
		t.Helper()
		ping(ctx, t, host)
		before := heard.count(host.ID())
		waitFor(ctx, t, "the host's audio to keep reaching the listener", func() bool { return heard.count(host.ID()) > before+10 })
	}
}

// join sends a join message and waits for joined.
func (w *raw) join(msg string) {
	w.t.Helper()
	w.send(msg)
	if m := w.read(); m["type"] != "joined" {
		w.t.Fatalf("got %v, want joined", m)
	}
}

// twoAudioSections is an offer that would publish two tracks.
func twoAudioSections() string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n")
	for mid := range 2 {
		fmt.Fprintf(&b, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n", mid)
	}
	return b.String()
}

// TestLimits crosses every abuse limit: the offender gets its error (and
// is closed where the limit says so); a host in the same room keeps its
// connection and its published audio.
func TestLimits(t *testing.T) {
	r, ctx := startRelay(t, limitOpts)
	unaffected := liveRoom(ctx, t, r, "lim")

	t.Run("message rate", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.join(`{"type":"join","room":"lim","name":"flood"}`)
		for i := range 40 { // burst 20: the 21st message crosses the limit
			if err := w.conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"ping","id":"p%d"}`, i)); err != nil {
				break // the relay may close before all are written
			}
		}
		pongs := 0
		for {
			m := w.read()
			if m["type"] == "pong" {
				pongs++
				continue
			}
			expectError(t, m, protocol.CodeRateLimited, "")
			break
		}
		if pongs > 20 {
			t.Errorf("%d pongs, want at most the burst of 20", pongs)
		}
		w.expectClose(protocol.ClosePolicy)
		unaffected(t)
	})

	t.Run("join timeout", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.expectClose(protocol.ClosePolicy) // JoinTimeout 300 ms, nothing sent
		unaffected(t)
	})

	t.Run("frame size", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.join(`{"type":"join","room":"lim","name":"huge"}`)
		_ = w.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"`+strings.Repeat("x", protocol.MaxMessageSize)+`"}`))
		w.expectClose(protocol.CloseTooBig)
		unaffected(t)
	})

	t.Run("held candidates", func(t *testing.T) {
		// A relay without a message rate limit, so that 65 candidates
		// may arrive before the pub offer.
		loose := &relay{relaytest.Start(t, relayOpts{Tune: func(c *server.Config) {
			c.Signaling.MessageRate, c.Signaling.MessageBurst = 1e9, 1e9
		}})}
		w := loose.dialRaw(ctx, t)
		w.join(`{"type":"join","room":"lim","name":"cands","role":"guest"}`)
		for i := range 64 {
			w.send(fmt.Sprintf(`{"type":"candidate","id":"c%d","pc":"pub","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 %d typ host","sdpMid":"0"}}`, i, 10000+i))
		}
		w.send(`{"type":"candidate","id":"c64","pc":"pub","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9999 typ host","sdpMid":"0"}}`)
		expectError(t, w.read(), protocol.CodeBadRequest, "c64")
		w.send(`{"type":"ping","id":"after"}`)
		if m := w.read(); m["type"] != "pong" {
			t.Fatalf("got %v, want pong: the connection must stay", m)
		}
		unaffected(t)
	})

	t.Run("SDP size", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.join(`{"type":"join","room":"lim","name":"big","role":"guest"}`)
		w.send(fmt.Sprintf(`{"type":"offer","id":"o1","pc":"pub","sdp":%q}`, "v=0\r\n"+strings.Repeat("a=x\r\n", 1000)))
		expectError(t, w.read(), protocol.CodeBadRequest, "o1")
		w.send(`{"type":"ping","id":"after"}`)
		if m := w.read(); m["type"] != "pong" {
			t.Fatalf("got %v after the refused offer, want pong: the connection must stay", m)
		}
		unaffected(t)
	})

	t.Run("tracks per participant", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.join(`{"type":"join","room":"lim","name":"two","role":"guest"}`)
		w.send(fmt.Sprintf(`{"type":"offer","id":"o2","pc":"pub","sdp":%q}`, twoAudioSections()))
		m := w.read()
		expectError(t, m, protocol.CodeBadRequest, "o2")
		if msg := m["message"].(string); !strings.Contains(msg, "at most 1") {
			t.Errorf("message %q does not say the limit", msg)
		}
		unaffected(t)
	})

	t.Run("slow reader", func(t *testing.T) {
		// A client that never reads, with a 4 KiB receive buffer, on a
		// relay without a message rate limit: the relay's writes block,
		// its 8-message queue overflows, and the relay cuts the client off
		// instead of waiting.
		// (No startRelay: its leak check would run while the outer
		// test's publisher still runs.)
		slow := &relay{relaytest.Start(t, relayOpts{Tune: func(c *server.Config) {
			c.Signaling.MessageRate, c.Signaling.MessageBurst, c.Signaling.SendQueue = 1e9, 1e9, 8
		}})}
		d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		}}
		conn, _, err := d.DialContext(ctx, slow.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ping := fmt.Appendf(nil, `{"type":"ping","id":%q}`, strings.Repeat("x", protocol.MaxIDLength))
		sent := 0
		for ; sent < 200_000; sent++ { // about 20 MB of pongs if all were taken
			if conn.WriteMessage(websocket.TextMessage, ping) != nil {
				break
			}
		}
		t.Logf("relay cut the client off after %d pings", sent)
		if sent == 200_000 {
			t.Fatal("the relay took 200,000 pings from a client that reads nothing")
		}
		waitFor(ctx, t, "the slow session to end", func() bool { return slow.counter(t, "relay_signaling_sessions") == 0 })
		unaffected(t)
	})

	t.Run("origins", func(t *testing.T) {
		for _, tt := range []struct {
			origin string
			ok     bool
		}{
			{"", true}, // not a browser
			{r.HTTPURL, true},
			{"http://localhost:3000", true},
			{"https://app.example.com", true},
			{"https://evil.example.com", false},
			{"null", false},
		} {
			t.Run(tt.origin, func(t *testing.T) {
				defer unaffected(t)
				h := http.Header{}
				if tt.origin != "" {
					h.Set("Origin", tt.origin)
				}
				conn, resp, err := websocket.DefaultDialer.DialContext(ctx, r.URL, h)
				if tt.ok {
					if err != nil {
						t.Fatalf("origin %q refused: %v", tt.origin, err)
					}
					conn.Close()
					return
				}
				if err == nil {
					conn.Close()
					t.Fatalf("origin %q accepted", tt.origin)
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("origin %q: %v, want HTTP 403", tt.origin, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "-allowed-origins") {
					t.Errorf("403 body %q does not say how to allow the origin", body)
				}
			})
		}
	})
}
