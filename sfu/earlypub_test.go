package sfu

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestEarlyPubClosedByRelay: the relay itself closes an early pub
// connection when the request ends without a seat (rejected, cancelled,
// timed out), tells the participant (MicRejectedEvent.PubClosed), and
// keeps no pub connection for it; on acceptance the early pub becomes the
// guest's pub connection, untouched.
func TestEarlyPubClosedByRelay(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs last
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var serving sync.WaitGroup
	defer func() {
		cancel()
		serving.Wait()
	}()
	udp, err := media.ListenUDP("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{MicTimeout: 500 * time.Millisecond, ICE: ICEConfig{UDPMux: udp, Loopback: true}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
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
			serving.Go(func() { serveForwarding(ctx, tp, sink, others) })
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

// serveForwarding is testPeer.serve that hands every event it does not
// apply to others.
func serveForwarding(ctx context.Context, tp *testPeer, sink *eventSink, others chan<- Event) {
	for {
		select {
		case ev := <-sink.events:
			switch e := ev.(type) {
			case DescriptionEvent:
				if e.PC == Sub {
					tp.answerSub(sink, e.SDP)
				} else if err := tp.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: e.SDP}); err != nil {
					tp.t.Errorf("set pub answer: %v", err)
				}
			case CandidateEvent:
				if e.Candidate == nil {
					continue
				}
				pc := tp.sub
				if e.PC == Pub {
					pc = tp.pub
				}
				_ = pc.AddICECandidate(*e.Candidate)
			default:
				select {
				case others <- ev:
				default:
				}
			}
		case <-ctx.Done():
			return
		}
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
