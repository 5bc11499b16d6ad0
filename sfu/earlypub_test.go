package sfu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// TestEarlyPubClosedByRelay: the relay itself closes an early pub
// connection when the request ends without a seat (rejected, cancelled,
// timed out), tells the participant (MicRejectedEvent.PubClosed), and
// keeps no pub connection for it; on acceptance the early pub becomes the
// guest's pub connection, untouched.
func TestEarlyPubClosedByRelay(t *testing.T) {
	s := newLoopbackSFUWith(t, Config{MicTimeout: 500 * time.Millisecond}) // checks for leaks last
	ctx, serving, done := servingContext()
	defer done()
	api := loopbackAPI(t)

	tests := []struct {
		name   string
		end    func(host, a *Participant) error
		reason MicReason // "" for acceptance
	}{
		{"rejected", func(host, a *Participant) error { return host.MicReject(a.ID()) }, MicRejected},
		{"cancelled", func(_, a *Participant) error { return a.MicReject("") }, MicCancelled},
		{"timeout", func(*Participant, *Participant) error { return nil }, MicTimeout},
		{"accepted", func(host, a *Participant) error { return host.MicAccept(a.ID()) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ctx.Err() != nil {
				t.Fatal("the test's deadline passed in an earlier case")
			}
			room := "early-" + tt.name
			host, err := s.Join(JoinParams{Room: room, Name: "host", Role: RoleHost, Sink: newEventSink()})
			if err != nil {
				t.Fatal(err)
			}
			sink := newEventSink()
			tp := newTestPeer(t, api)
			if tp.p, err = s.Join(JoinParams{Room: room, Name: "a", Role: RoleAudience, Sink: sink}); err != nil {
				t.Fatal(err)
			}
			others := make(chan Event, 64)
			serving.Go(func() { tp.serveEvents(ctx, sink.events, sink, nil, others) })
			track, err := webrtc.NewTrackLocalStaticRTP(media.Opus.RTPCodecCapability, "audio", "a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tp.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
			if err := tp.p.MicRequest(); err != nil {
				t.Fatal(err)
			}
			tp.offerPub(sink, false) // an early pub: the request is pending
			relayPub := func() *webrtc.PeerConnection {
				tp.p.pubMu.Lock()
				defer tp.p.pubMu.Unlock()
				return tp.p.pubPC
			}
			pc := relayPub()
			if pc == nil {
				t.Fatal("the relay made no pub connection for the early offer")
			}
			waitUntil(ctx, t, "the early pub to connect", func() bool { return pc.ConnectionState() == webrtc.PeerConnectionStateConnected })

			if err := tt.end(host, tp.p); err != nil {
				t.Fatal(err)
			}
			if tt.reason == "" {
				if tp.p.Role() != RoleGuest {
					t.Fatalf("role %s after acceptance, want guest", tp.p.Role())
				}
				time.Sleep(100 * time.Millisecond)
				if relayPub() != pc || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					t.Fatalf("the accepted guest's early pub was replaced or closed (state %s)", pc.ConnectionState())
				}
				return
			}
			for {
				var ev Event
				select {
				case ev = <-others:
				case <-ctx.Done():
					t.Fatal("no MicRejectedEvent")
				}
				if e, ok := ev.(MicRejectedEvent); ok {
					if e.Reason != tt.reason || !e.PubClosed {
						t.Fatalf("got %+v, want reason %s with PubClosed", e, tt.reason)
					}
					break
				}
			}
			waitUntil(ctx, t, "the relay to close the early pub", func() bool {
				return relayPub() == nil && pc.ConnectionState() == webrtc.PeerConnectionStateClosed
			})
			if err := tp.p.Offer(sink, "o2", tp.pub.LocalDescription().SDP); err == nil {
				t.Fatal("an offer after the request ended was accepted")
			}
		})
	}
}

// servingContext is a test's deadline and the group of its serve
// goroutines; done (deferred, so before the peers' cleanups close their
// connections) ends them and waits.
func servingContext() (ctx context.Context, serving *sync.WaitGroup, done func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	serving = &sync.WaitGroup{}
	return ctx, serving, func() {
		cancel()
		serving.Wait()
	}
}

// waitUntil polls cond every 10 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
