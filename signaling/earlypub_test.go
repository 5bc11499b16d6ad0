package signaling_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

// framer sends one participant's real Opus frames from one packetizer
// (one continuous RTP stream), keeping each frame's payload by phase.
type framer struct {
	pub *client.Publisher
	pk  *opusgen.Packetizer
	src *opusgen.Source
}

func newFramer(t *testing.T, pub *client.Publisher, seed int64) *framer {
	t.Helper()
	src, err := opusgen.NewSource(seed, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &framer{pub: pub, pk: opusgen.NewPacketizer(111, rand.Uint32()), src: src}
}

// send sends n frames 10 ms apart and returns their payloads.
func (f *framer) send(ctx context.Context, t *testing.T, n int) map[string]bool {
	t.Helper()
	sent := make(map[string]bool, n)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range n {
		frame, err := f.src.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		sent[string(frame)] = true
		if err := f.pub.WriteRTP(f.pk.Packet(frame)); err != nil {
			t.Fatalf("write: %v", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("deadline while sending")
		}
	}
	return sent
}

// payloadsOf returns what r received of publisher id, payload by payload.
func payloadsOf(r *receiver, id string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.tracks[id]
	if rec == nil {
		return nil
	}
	var out [][]byte
	for _, p := range rec.payloads {
		out = append(out, p)
	}
	return out
}

// stage3 joins a host and audience members A and B to room.
func (r *relay) stage3(ctx context.Context, t *testing.T, room string) (host, a, b *client.Client) {
	t.Helper()
	return r.join(ctx, t, room, "Host", protocol.RoleHost), r.join(ctx, t, room, "A", protocol.RoleAudience), r.join(ctx, t, room, "B", protocol.RoleAudience)
}

// earlyPublish publishes c while its request or invitation is pending
// and waits for the connection.
func earlyPublish(ctx context.Context, t *testing.T, c *client.Client) *client.Publisher {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("%s early pub: %v", c.ID(), err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatalf("%s early pub connects: %v", c.ID(), err)
	}
	return pub
}

// TestEarlyPubAccept: an audience member asks for the mic and negotiates
// its pub connection at once; the packets it sends while pending reach
// nobody (the relay reads and drops every one of them, and nobody gets a
// track or track_published); once the host accepts, the host and another
// listener receive exactly the payloads sent after, byte for byte, on the
// track track_published names. The same holds for an invitation.
func TestEarlyPubAccept(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	for i, invited := range []bool{false, true} {
		name := map[bool]string{false: "request", true: "invitation"}[invited]
		t.Run(name, func(t *testing.T) {
			room := fmt.Sprintf("early%d", i)
			host, a, b := r.stage3(ctx, t, room)
			recvCtx, stopRecv := context.WithCancel(ctx)
			defer stopRecv()
			hostRecv, bRecv := receive(recvCtx, host), receive(recvCtx, b)

			if invited {
				mustOK(ctx, t, host, micMsg("mic_invite", a.ID()))
				waitEvent[*protocol.MicInvited](ctx, t, a, nil)
			} else {
				mustOK(ctx, t, a, micMsg("mic_request", ""))
				waitEvent(ctx, t, host, func(e *protocol.MicRequested) bool { return e.Participant == a.ID() })
			}
			dropped0 := r.counter(t, "relay_early_pub_packets_dropped_total")
			pub := earlyPublish(ctx, t, a)
			f := newFramer(t, pub, int64(40+i))
			before := f.send(ctx, t, 30)
			waitFor(ctx, t, "the relay to read and drop the 30 packets sent while pending", func() bool {
				return r.counter(t, "relay_early_pub_packets_dropped_total")-dropped0 >= 30
			})
			if got := len(payloadsOf(hostRecv, a.ID())) + len(payloadsOf(bRecv, a.ID())); got != 0 {
				t.Fatalf("%d packets sent while pending were forwarded", got)
			}

			if invited {
				mustOK(ctx, t, a, micMsg("mic_accept", ""))
			} else {
				mustOK(ctx, t, host, micMsg("mic_accept", a.ID()))
			}
			waitEvent(ctx, t, a, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleGuest })
			// Announced at the acceptance: the track already sent packets.
			tp := waitEvent(ctx, t, host, func(e *protocol.TrackPublished) bool { return e.Participant == a.ID() })
			after := f.send(ctx, t, 60)
			for k := range after {
				if before[k] {
					t.Fatal("the voice repeated a frame: pending and accepted payloads must differ for this test")
				}
			}
			waitFor(ctx, t, "host and B to hear the guest", func() bool {
				return len(payloadsOf(hostRecv, a.ID())) >= 50 && len(payloadsOf(bRecv, a.ID())) >= 50
			})
			for who, rc := range map[string]*receiver{"host": hostRecv, "B": bRecv} {
				rc.mu.Lock()
				if id := rc.tracks[a.ID()].trackID; id != tp.Track.ID {
					t.Errorf("%s: track id %q, want %q from track_published", who, id, tp.Track.ID)
				}
				rc.mu.Unlock()
				for _, p := range payloadsOf(rc, a.ID()) {
					switch {
					case before[string(p)]:
						t.Errorf("%s received a payload sent before the acceptance", who)
					case !after[string(p)]:
						t.Errorf("%s received a payload that was never sent (%d bytes)", who, len(p))
					}
				}
			}
			if n := r.counter(t, "relay_early_pubs_total", "outcome", "accepted"); n != float64(i+1) {
				t.Errorf("relay_early_pubs_total{outcome=accepted} = %v, want %d", n, i+1)
			}
		})
	}
}

// TestEarlyPubEnds: an early pub whose request or invitation ends without
// a seat (rejected by the host, cancelled by the requester, declined by
// the invitee, timed out, the last host gone) is closed by the relay: the
// participant gets mic_rejected with pub_closed (even when it ended it
// itself), the client's pub connection closes, nobody ever hears a packet
// of it, a new offer on pub is forbidden, and a new request may negotiate
// a new early pub that works.
func TestEarlyPubEnds(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{MicTimeout: 2 * time.Second})
	tests := []struct {
		name   string
		invite bool
		end    func(host, a *client.Client)
		reason string
	}{
		{"rejected", false, func(host, a *client.Client) { mustOK(ctx, t, host, micMsg("mic_reject", a.ID())) }, protocol.MicReasonRejected},
		{"cancelled", false, func(_, a *client.Client) { mustOK(ctx, t, a, micMsg("mic_reject", "")) }, protocol.MicReasonCancelled},
		{"declined", true, func(_, a *client.Client) { mustOK(ctx, t, a, micMsg("mic_reject", "")) }, protocol.MicReasonRejected},
		{"timeout", false, func(*client.Client, *client.Client) {}, protocol.MicReasonTimeout},
		{"no host", false, func(host, _ *client.Client) { _ = host.Leave(ctx) }, protocol.MicReasonNoHost},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := fmt.Sprintf("ends%d", i)
			host, a, b := r.stage3(ctx, t, room)
			recvCtx, stopRecv := context.WithCancel(ctx)
			defer stopRecv()
			bRecv := receive(recvCtx, b)
			if tt.invite {
				mustOK(ctx, t, host, micMsg("mic_invite", a.ID()))
				waitEvent[*protocol.MicInvited](ctx, t, a, nil)
			} else {
				mustOK(ctx, t, a, micMsg("mic_request", ""))
			}
			closed0 := r.counter(t, "relay_early_pubs_total", "outcome", "closed")
			pub := earlyPublish(ctx, t, a)
			f := newFramer(t, pub, int64(60+i))
			f.send(ctx, t, 10)

			tt.end(host, a)
			rej := waitEvent(ctx, t, a, func(e *protocol.MicRejected) bool { return e.Participant == a.ID() })
			if rej.Reason != tt.reason || !rej.PubClosed {
				t.Fatalf("mic_rejected reason %q pub_closed %t, want %q and true", rej.Reason, rej.PubClosed, tt.reason)
			}
			if n := r.counter(t, "relay_early_pubs_total", "outcome", "closed") - closed0; n != 1 {
				t.Errorf("relay_early_pubs_total{outcome=closed} grew by %v, want 1", n)
			}
			waitFor(ctx, t, "the client's early pub connection to close", func() bool {
				return pub.State() == webrtc.PeerConnectionStateClosed
			})
			// Nothing of it reaches anyone, now or later.
			_ = f.send(ctx, t, 20)
			if got := len(payloadsOf(bRecv, a.ID())); got != 0 {
				t.Errorf("B received %d packets of a pub that was never on the mic", got)
			}
			if code := do(ctx, t, a, map[string]any{"type": "offer", "pc": "pub", "sdp": pub.AnswerSDP()}); code != protocol.CodeForbidden {
				t.Errorf("offer on pub after the request ended: %q, want forbidden", orOK(code))
			}
			if tt.reason == protocol.MicReasonNoHost {
				return
			}

			// A new request: a new early pub, accepted and heard.
			mustOK(ctx, t, a, micMsg("mic_request", ""))
			pub2 := earlyPublish(ctx, t, a)
			mustOK(ctx, t, host, micMsg("mic_accept", a.ID()))
			waitEvent(ctx, t, a, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleGuest })
			sent := newFramer(t, pub2, int64(80+i)).send(ctx, t, 40)
			waitFor(ctx, t, "B to hear the new pub", func() bool { return len(payloadsOf(bRecv, a.ID())) >= 30 })
			for _, p := range payloadsOf(bRecv, a.ID()) {
				if !sent[string(p)] {
					t.Fatalf("B received a payload the new pub did not send")
				}
			}
		})
	}
}

// TestEarlyPubVersion1: a version 1 client is served as before. An
// audience member with nothing pending may not offer on pub (forbidden,
// the contract); one that waits for role_changed before offering goes on
// the mic and is heard; a requester that cancels without an early pub
// gets no mic_rejected itself, and its hosts get reason cancelled without
// pub_closed.
func TestEarlyPubVersion1(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	host := r.join(ctx, t, "v1", "Host", protocol.RoleHost)
	a := r.join(ctx, t, "v1", "A", protocol.RoleAudience)
	if _, err := a.Publish(ctx); err == nil || serverError(t, err).Code != protocol.CodeForbidden {
		t.Fatalf("audience with nothing pending publishes: %v, want forbidden", err)
	}

	mustOK(ctx, t, a, micMsg("mic_request", ""))
	mustOK(ctx, t, a, micMsg("mic_reject", ""))
	rej := waitEvent(ctx, t, host, func(e *protocol.MicRejected) bool { return e.Participant == a.ID() })
	if rej.Reason != protocol.MicReasonCancelled || rej.PubClosed {
		t.Errorf("host got reason %q pub_closed %t, want cancelled and false", rej.Reason, rej.PubClosed)
	}
	ping(ctx, t, a)
	for {
		select {
		case ev := <-a.Events():
			if e, ok := ev.(*protocol.MicRejected); ok {
				t.Errorf("the requester got mic_rejected for its own cancel without an early pub: %+v", e)
			}
			continue
		default:
		}
		break
	}

	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	hostRecv := receive(recvCtx, host)
	mustOK(ctx, t, a, micMsg("mic_request", ""))
	mustOK(ctx, t, host, micMsg("mic_accept", a.ID()))
	waitEvent(ctx, t, a, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleGuest })
	pub, err := a.Publish(ctx)
	if err != nil {
		t.Fatalf("the new guest publishes: %v", err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	sent := newFramer(t, pub, 99).send(ctx, t, 40)
	waitFor(ctx, t, "the host to hear the guest", func() bool { return len(payloadsOf(hostRecv, a.ID())) >= 30 })
	for _, p := range payloadsOf(hostRecv, a.ID()) {
		if !sent[string(p)] {
			t.Fatal("the host received a payload the guest did not send")
		}
	}
	if n := r.counter(t, "relay_early_pubs_total", "outcome", "accepted"); n != 0 {
		t.Errorf("relay_early_pubs_total{outcome=accepted} = %v for a version 1 flow, want 0", n)
	}
}
