//go:build linux

package signaling_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/signaling"
)

// Parked connections (park_linux.go): a WebSocket whose client has sent
// nothing has no goroutine; its first message starts its session.

// waitValue waits until the relay's gauge name reads want.
func (r *relay) waitValue(ctx context.Context, t *testing.T, name string, want float64) {
	t.Helper()
	for {
		got := r.counter(t, name)
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s is %g, want %g", name, got, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitParked waits until the relay holds n parked connections and n
// sessions in all.
func (r *relay) waitParked(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	r.waitValue(ctx, t, "relay_signaling_parked", float64(n))
	r.waitValue(ctx, t, "relay_signaling_sessions", float64(n))
}

// expectCloseText reads until the relay closes w with code and text.
func (w *raw) expectCloseText(code int, text string) {
	w.t.Helper()
	for {
		_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := w.conn.ReadMessage()
		if err == nil {
			continue // e.g. draining
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("connection ended without a close frame (%v), want close %d %q", err, code, text)
		}
		if ce.Code != code || ce.Text != text {
			w.t.Fatalf("close %d %q, want %d %q (last message %s)", ce.Code, ce.Text, code, text, data)
		}
		return
	}
}

// TestParkedFirstMessage: a parked connection's first message, whenever it
// comes, starts its session and is served.
func TestParkedFirstMessage(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	t.Run("join", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		r.waitParked(ctx, t, 1)
		w.join(joinMsg("parked", "late"))
		r.waitValue(ctx, t, "relay_signaling_parked", 0)
		r.waitValue(ctx, t, "relay_signaling_sessions", 1)
		_ = w.conn.Close()
		r.waitValue(ctx, t, "relay_signaling_sessions", 0)
	})
	t.Run("ping before join", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		r.waitParked(ctx, t, 1)
		w.send(`{"type":"ping","id":"p1"}`)
		if m := w.read(); m["type"] != protocol.TypePong || m["id"] != "p1" {
			t.Fatalf("got %v, want pong p1", m)
		}
		r.waitValue(ctx, t, "relay_signaling_parked", 0)
		w.join(joinMsg("parked", "pinger")) // the session goes on
	})
}

// TestParkedDataBeforeRegistration: a message that reaches the relay after
// the upgrade but before the connection is registered for readability is
// not missed (epoll reports it at registration).
func TestParkedDataBeforeRegistration(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	parking, sent := make(chan struct{}), make(chan struct{})
	restore := signaling.SetParkHook(func() {
		close(parking)
		<-sent
	})
	defer restore()
	w := r.dialRaw(ctx, t) // returns with the 101; the handler waits in the hook
	select {
	case <-parking:
	case <-ctx.Done():
		t.Fatal("the relay did not try to park the connection")
	}
	w.send(`{"type":"ping","id":"early"}`)
	close(sent)
	if m := w.read(); m["type"] != protocol.TypePong || m["id"] != "early" {
		t.Fatalf("got %v, want pong early", m)
	}
	restore()
	w.join(joinMsg("early", "early"))
}

// TestMessageWithUpgradeRequest: bytes sent in the same write as the
// upgrade request (before the 101, which RFC 6455 forbids) are refused by
// gorilla/websocket: the connection is closed without a response, so no
// message can wait in the hijacked reader where epoll would not see it.
// The relay's counts come back and the address may connect again.
func TestMessageWithUpgradeRequest(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.MaxPendingPerAddr = 1 }})
	host := strings.TrimPrefix(r.URL, "ws://")
	host = host[:strings.Index(host, "/")]
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), maskedText(joinMsg("early", "eager"))...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 0 || (err != nil && !isReset(err)) {
		t.Fatalf("the relay answered %q (%v), want the connection closed unanswered", got, err)
	}
	r.waitValue(ctx, t, "relay_signaling_sessions", 0)
	w := r.dialRaw(ctx, t) // the pending count came back: MaxPendingPerAddr is 1
	w.join(joinMsg("early", "patient"))
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// maskedText is msg as a client's masked text frame (msg under 126 bytes).
func maskedText(msg string) []byte {
	key := [4]byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(msg)), key[0], key[1], key[2], key[3]}
	for i := range len(msg) {
		f = append(f, msg[i]^key[i%4])
	}
	return f
}

// TestParkedJoinTimeout: a parked connection that never speaks is closed
// at its join deadline with the close frame a session sends, and its
// address gets its pending allowance back.
func TestParkedJoinTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) {
		c.Signaling.JoinTimeout = timeout
		c.Signaling.MaxPendingPerAddr = 2
	}})
	a, _ := r.dialFrom(ctx, t, "127.0.0.2")
	b, _ := r.dialFrom(ctx, t, "127.0.0.2")
	r.waitParked(ctx, t, 2)
	if _, resp := r.dialFrom(ctx, t, "127.0.0.2"); resp == nil {
		t.Fatal("a third pending connection was accepted, want 429")
	} else {
		_ = resp.Body.Close()
	}
	want := fmt.Sprintf("no join within %s of connecting", timeout)
	a.expectCloseText(protocol.ClosePolicy, want)
	b.expectCloseText(protocol.ClosePolicy, want)
	r.waitParked(ctx, t, 0)
	for range 2 {
		if _, resp := r.dialFrom(ctx, t, "127.0.0.2"); resp != nil {
			t.Fatalf("after the join timeout a new connection got %d, want accepted", resp.StatusCode)
		}
	}
	r.waitParked(ctx, t, 2)
}

// TestParkedJoinTimeoutUnanswered: a parked client that does not answer
// the close frame (it reads nothing) is let go after closeWait, as a
// session lets go of it; the frame is there when it reads.
func TestParkedJoinTimeoutUnanswered(t *testing.T) {
	const timeout = 2 * time.Second
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.JoinTimeout = timeout }})
	w := r.dialRaw(ctx, t)
	r.waitParked(ctx, t, 1)
	r.waitParked(ctx, t, 0) // closed without an answer
	w.expectCloseText(protocol.ClosePolicy, fmt.Sprintf("no join within %s of connecting", timeout))
}

// TestParkedPeerCloses: parked connections whose clients hang up are
// cleaned up (sessions read the end as today): the gauges and the
// address's pending count come back, and nothing leaks (goleak).
func TestParkedPeerCloses(t *testing.T) {
	const n = 5
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.MaxPendingPerAddr = n }})
	for round := range 3 {
		var open []*raw
		for range n {
			w, resp := r.dialFrom(ctx, t, "127.0.0.2")
			if resp != nil {
				t.Fatalf("round %d: connection %d refused with %d", round, len(open)+1, resp.StatusCode)
			}
			open = append(open, w)
		}
		r.waitParked(ctx, t, n)
		var halfClosed []*raw
		for i, w := range open {
			switch i % 3 {
			case 0: // a TCP close, no close frame: the parker closes it
				_ = w.conn.Close()
			case 1: // a close frame first: the session reads it
				_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				_ = w.conn.Close()
			case 2: // the client's half of TCP closed: the relay ends it as a session does
				if err := w.conn.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				halfClosed = append(halfClosed, w)
			}
		}
		for _, w := range halfClosed {
			w.expectCloseText(protocol.CloseNormal, "")
		}
		r.waitParked(ctx, t, 0)
	}
}

// TestParkedDrainAndShutdown: Drain gives every parked connection its
// session (which says draining, as to any session) and parks no more;
// Shutdown closes parked connections itself (1001) without waiting.
func TestParkedDrainAndShutdown(t *testing.T) {
	const n = 100
	dialAll := func(ctx context.Context, t *testing.T, r *relay) []*raw {
		open := make([]*raw, n)
		for i := range open {
			open[i] = r.dialRaw(ctx, t)
		}
		r.waitParked(ctx, t, n)
		return open
	}
	t.Run("drain", func(t *testing.T) {
		r, ctx := startRelay(t, relayOpts{})
		open := dialAll(ctx, t, r)
		r.Drain(ctx, 100*time.Millisecond) // the unjoined sessions stay till their join timeout
		r.waitValue(ctx, t, "relay_signaling_parked", 0)
		r.waitValue(ctx, t, "relay_signaling_sessions", n)
		late := r.dialRaw(ctx, t) // not parked while draining
		r.waitValue(ctx, t, "relay_signaling_sessions", n+1)
		for _, w := range append(open, late) {
			if m := w.read(); m["type"] != protocol.TypeDraining {
				t.Fatalf("got %v, want draining", m)
			}
		}
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, w := range open {
			w.expectCloseText(protocol.CloseGoingAway, "relay is shutting down")
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		r, ctx := startRelay(t, relayOpts{})
		open := dialAll(ctx, t, r)
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		r.waitParked(ctx, t, 0) // at once: Shutdown closed them
		for _, w := range open {
			w.expectCloseText(protocol.CloseGoingAway, "relay is shutting down")
		}
	})
}

// TestParkedNoGoroutines: parked connections cost no goroutine; the
// poller is the only one, however many are parked.
func TestParkedNoGoroutines(t *testing.T) {
	const n = 200
	r, ctx := startRelay(t, relayOpts{})
	base := runtime.NumGoroutine()
	open := make([]*raw, n)
	for i := range open {
		open[i] = r.dialRaw(ctx, t) // gorilla's client runs no goroutine
	}
	r.waitParked(ctx, t, n)
	// The handlers' goroutines end once they return; then only the
	// poller is left.
	for got := runtime.NumGoroutine(); got > base+1; got = runtime.NumGoroutine() {
		select {
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines with %d connections parked, want %d (before them) + 1 (the poller):\n%s", got, n, base, buf[:runtime.Stack(buf, true)])
		case <-time.After(10 * time.Millisecond):
		}
	}
	open[0].join(joinMsg("busy", "speaker")) // one speaks: it gets its session
	r.waitValue(ctx, t, "relay_signaling_parked", n-1)
	r.waitValue(ctx, t, "relay_signaling_sessions", n)
}

// TestParkedHeap: a parked connection holds no 4 KiB buffer: not net/http's
// read or write buffer from the hijack, not a gorilla buffer of that
// size. The figure includes the test's own client side (gorilla's
// smallest buffers): about 2.6 KiB in all; a retained 4 KiB buffer makes
// it above 6.
func TestParkedHeap(t *testing.T) {
	const n = 500
	r, ctx := startRelay(t, relayOpts{})
	d := websocket.Dialer{ReadBufferSize: 1, WriteBufferSize: 1}
	live := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC() // and what the first left for finalizers
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := live()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := d.DialContext(ctx, r.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	r.waitParked(ctx, t, n)
	per := (live() - before) / n
	runtime.KeepAlive(conns)
	t.Logf("live heap per parked connection, the client's included: %d bytes", per)
	if per > 4096 {
		t.Errorf("live heap per parked connection, the client's included: %d bytes, want at most 4096", per)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	r.waitParked(ctx, t, 0)
}

// TestTLSNotParked: a connection that is not a plain socket (TLS, where
// decrypted bytes may wait in user space, out of epoll's sight) is not
// parked: its session starts at once, as on other systems.
func TestTLSNotParked(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	hs := httptest.NewTLSServer(r.Handler())
	defer hs.Close()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
	conn, _, err := d.DialContext(ctx, "wss"+strings.TrimPrefix(hs.URL, "https")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r.waitValue(ctx, t, "relay_signaling_sessions", 1)
	if got := r.counter(t, "relay_signaling_parked"); got != 0 {
		t.Fatalf("relay_signaling_parked %g with a TLS connection, want 0", got)
	}
	w := &raw{t: t, conn: conn}
	w.join(joinMsg("tls", "secure"))
	_ = conn.Close()
	r.waitValue(ctx, t, "relay_signaling_sessions", 0)
}
