package signaling_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/signaling"
)

// A session's writer is a goroutine only while it has something to write
// (signaling/writer.go; issue 19, goroutines per listener).

// waitIdleWriters waits until the relay runs readers session readers and
// no session writer. It gives up at half the test's deadline, while the
// clients dialled with ctx still run, so that its failure counts them.
func waitIdleWriters(ctx context.Context, t *testing.T, readers int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testDeadline/2)
	defer cancel()
	for {
		r, w := signaling.SessionGoroutines()
		if r == readers && w == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d session readers and %d writers, want %d and none", r, w, readers)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestWriterIdle: joined listeners with nothing to be told have no writer
// goroutine; a message starts one, which ends once it is written.
func TestWriterIdle(t *testing.T) {
	// No pings during the test (each would start a writer for a moment),
	// and so no silence cut-off either: nothing answers a ping.
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) {
		c.Signaling.PingInterval, c.Signaling.SilenceTimeout = time.Hour, time.Hour
	}})
	host := r.join(ctx, t, "idle", "Host", protocol.RoleHost)
	for i := range 3 {
		l := r.join(ctx, t, "idle", fmt.Sprintf("L%d", i), protocol.RoleAudience)
		if err := l.SubConnected(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitIdleWriters(ctx, t, 4)

	t.Run("after a reply", func(t *testing.T) {
		ping(ctx, t, host)
		waitIdleWriters(ctx, t, 4)
	})
	t.Run("after a join", func(t *testing.T) {
		late := r.join(ctx, t, "idle", "Late", protocol.RoleAudience)
		if err := late.SubConnected(ctx); err != nil {
			t.Fatal(err)
		}
		waitIdleWriters(ctx, t, 5)
	})
}

// TestWriterPings: an idle session, with no writer goroutine, is still
// pinged every PingInterval.
func TestWriterPings(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Tune: func(c *server.Config) { c.Signaling.PingInterval = 20 * time.Millisecond }})
	w := r.dialRaw(ctx, t)
	pings := make(chan struct{}, 100)
	w.conn.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return w.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	w.join(`{"type":"join","room":"pings","name":"idle"}`)
	go func() { // control frames are handled while a read waits
		for {
			if _, _, err := w.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	waitIdleWriters(ctx, t, 1)
	for n := range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatalf("%d pings to the idle session, want 3", n)
		}
	}
	waitIdleWriters(ctx, t, 1)
}
