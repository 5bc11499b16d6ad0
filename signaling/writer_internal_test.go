package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// The session's writer (writer.go), driven directly: one session over a
// real WebSocket on loopback, with no relay behind it, whose send and
// closeWith the tests call from their own goroutines.

const writerTestDeadline = 60 * time.Second

// SessionGoroutines counts this process's goroutines in a session's read
// loop and in its writer, from a goroutine profile with full stacks.
func SessionGoroutines() (readers, writers int) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		panic(err) // writes to a bytes.Buffer do not fail
	}
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "signaling.(*session).readLoop(") {
			readers++
		}
		if strings.Contains(g, "signaling.(*session).writeLoop(") {
			writers++
		}
	}
	return readers, writers
}

// waitNoWriter waits until no session has a writer goroutine.
func waitNoWriter(ctx context.Context, t *testing.T) {
	t.Helper()
	for {
		_, w := SessionGoroutines()
		if w == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d writer goroutines still run with nothing to write", w)
		case <-time.After(time.Millisecond):
		}
	}
}

// seqMsg is what the tests send through a session.
type seqMsg struct {
	Seq int `json:"seq"`
}

// peer is the client end of a session: a goroutine reads it and hands
// on its messages and how it ended, in the order read, and its pings.
type peer struct {
	conn  *websocket.Conn
	read  chan peerRead
	pings chan struct{}
}

// peerRead is a message read, or the read error that ended the
// connection (a *websocket.CloseError for a close frame).
type peerRead struct {
	msg seqMsg
	err error
}

// startSessionPeer serves one session on loopback with cfg and dials it.
// Unless cfg says otherwise, the session neither pings nor times out for
// silence within the test: only the test's own calls make it write.
// Cleanup closes the client, waits for the session to end, then checks
// for leaked goroutines.
func startSessionPeer(t *testing.T, cfg Config) (context.Context, *session, *peer) {
	t.Helper()
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Hour
	}
	if cfg.SilenceTimeout == 0 {
		cfg.SilenceTimeout = time.Hour
	}
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	ctx, cancel := context.WithTimeout(context.Background(), writerTestDeadline)
	t.Cleanup(cancel)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := NewServer(Params{Config: cfg})
	sessions := make(chan *session, 1)
	var running sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := srv.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ss := newSession(srv, conn, r.RemoteAddr, netip.Addr{})
		running.Add(1)
		go func() {
			defer running.Done()
			ss.run(time.Now().Add(time.Hour))
		}()
		sessions <- ss
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(running.Wait)
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p := &peer{conn: conn, read: make(chan peerRead, 4096), pings: make(chan struct{}, 64)}
	conn.SetPingHandler(func(data string) error {
		select {
		case p.pings <- struct{}{}:
		default:
		}
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			var m seqMsg
			if err == nil {
				err = json.Unmarshal(data, &m)
			}
			p.read <- peerRead{msg: m, err: err}
			if err != nil {
				return
			}
		}
	}()
	select {
	case ss := <-sessions:
		return ctx, ss, p
	case <-ctx.Done():
		t.Fatal("no session for the dialled connection")
		return nil, nil, nil
	}
}

// expect reads messages from..to (inclusive), in order.
func (p *peer) expect(ctx context.Context, t *testing.T, from, to int) {
	t.Helper()
	for want := from; want <= to; want++ {
		select {
		case r := <-p.read:
			if r.err != nil {
				t.Fatalf("connection ended (%v) before message %d of %d", r.err, want, to)
			}
			if r.msg.Seq != want {
				t.Fatalf("got message %d, want %d: out of order or lost", r.msg.Seq, want)
			}
		case <-ctx.Done():
			t.Fatalf("message %d of %d never came", want, to)
		}
	}
}

// expectClose waits for the close frame, which must follow the messages
// read so far with nothing between.
func (p *peer) expectClose(ctx context.Context, t *testing.T, code int, text string) {
	t.Helper()
	select {
	case r := <-p.read:
		if r.err == nil {
			t.Fatalf("message %d after the last one queued before the close", r.msg.Seq)
		}
		var ce *websocket.CloseError
		if !errors.As(r.err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", r.err)
		}
		if ce.Code != code || ce.Text != text {
			t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Text, code, text)
		}
	case <-ctx.Done():
		t.Fatal("no close frame")
	}
}

// setWriterIdleHook sets testHookWriterIdle for the test.
func setWriterIdleHook(t *testing.T, f func()) {
	testHookWriterIdle.Store(&f)
	t.Cleanup(func() { testHookWriterIdle.Store(nil) })
}

// TestWriterOrder: messages sent from several goroutines, with gaps in
// which the writer runs out of work and exits, all arrive, in the order
// they were queued.
func TestWriterOrder(t *testing.T) {
	const senders, each = 4, 300
	// A queue that holds them all: a burst past the bound would rightly
	// cut the client off (TestLimits, "slow reader").
	ctx, ss, p := startSessionPeer(t, Config{SendQueue: senders * each})
	var idles atomic.Int64
	setWriterIdleHook(t, func() { idles.Add(1) })
	var (
		mu  sync.Mutex // the queue's order is the order of seq
		seq int
		wg  sync.WaitGroup
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				mu.Lock()
				seq++
				ss.send(seqMsg{Seq: seq})
				mu.Unlock()
				// Mostly back to back, now and then a gap long enough
				// for the writer to empty the queue and stop.
				if i%8 == 0 {
					time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
				}
			}
		}()
	}
	p.expect(ctx, t, 1, senders*each)
	wg.Wait()
	waitNoWriter(ctx, t)
	if idles.Load() == 0 {
		t.Fatal("the writer never ran out of work: the test did not exercise its exit")
	}
	t.Logf("%d messages; the writer found nothing more to write %d times", senders*each, idles.Load())
	ss.closeWith(protocol.CloseNormal, "done")
	p.expectClose(ctx, t, protocol.CloseNormal, "done")
}

// TestWriterHandOff: work that arrives just as the writer finds nothing
// more to do, after its last look and before it gives up the ownership
// (so that no other writer starts), is still written.
func TestWriterHandOff(t *testing.T) {
	tests := []struct {
		name string
		// arrive adds the work from another goroutine; check sees it
		// written.
		arrive func(ss *session)
		check  func(ctx context.Context, t *testing.T, ss *session, p *peer)
	}{
		{
			name:   "message",
			arrive: func(ss *session) { ss.send(seqMsg{Seq: 2}) },
			check: func(ctx context.Context, t *testing.T, ss *session, p *peer) {
				p.expect(ctx, t, 2, 2)
			},
		},
		{
			name:   "ping",
			arrive: func(ss *session) { ss.pingDue() },
			check: func(ctx context.Context, t *testing.T, ss *session, p *peer) {
				select {
				case <-p.pings:
				case <-ctx.Done():
					t.Fatal("the due ping was never sent")
				}
			},
		},
		{
			name:   "close",
			arrive: func(ss *session) { ss.closeWith(protocol.ClosePolicy, "closed in the hand-off") },
			check: func(ctx context.Context, t *testing.T, ss *session, p *peer) {
				p.expectClose(ctx, t, protocol.ClosePolicy, "closed in the hand-off")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, ss, p := startSessionPeer(t, Config{})
			var once sync.Once
			setWriterIdleHook(t, func() {
				once.Do(func() {
					// The writer is between its last look and giving up
					// the ownership: the work's own attempt to start a
					// writer finds one running.
					done := make(chan struct{})
					go func() {
						defer close(done)
						tt.arrive(ss)
					}()
					<-done
				})
			})
			ss.send(seqMsg{Seq: 1}) // starts the writer, which then idles once
			p.expect(ctx, t, 1, 1)
			tt.check(ctx, t, ss, p)
			waitNoWriter(ctx, t)
		})
	}
}

// TestWriterCloseAfterQueued: closeWith right after messages are queued,
// with the writer idle or busy, sends them all, then the close frame with
// its code and text.
func TestWriterCloseAfterQueued(t *testing.T) {
	for _, queued := range []int{0, 1, 200} {
		t.Run(fmt.Sprintf("%d queued", queued), func(t *testing.T) {
			ctx, ss, p := startSessionPeer(t, Config{})
			for i := 1; i <= queued; i++ {
				ss.send(seqMsg{Seq: i})
			}
			ss.closeWith(protocol.CloseGoingAway, "relay is shutting down")
			p.expect(ctx, t, 1, queued)
			p.expectClose(ctx, t, protocol.CloseGoingAway, "relay is shutting down")
		})
	}
}
