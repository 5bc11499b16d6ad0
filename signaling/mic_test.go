package signaling_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

func micMsg(typ, participant string) map[string]any {
	m := map[string]any{"type": typ}
	if participant != "" {
		m["participant"] = participant
	}
	return m
}

// TestMicCycle: an audience member asks for the mic, the host accepts, the
// new guest publishes on the same session and the host and another
// audience member hear it; the host takes it off the mic, its track leaves
// their sub connections, its packets stop, and its next offer is
// forbidden.
func TestMicCycle(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	host := r.join(ctx, t, "cycle", "Host", protocol.RoleHost)
	a := r.join(ctx, t, "cycle", "A", protocol.RoleAudience)
	b := r.join(ctx, t, "cycle", "B", protocol.RoleAudience)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	hostRecv, bRecv := receive(recvCtx, host), receive(recvCtx, b)

	mustOK(ctx, t, a, micMsg("mic_request", ""))
	if e := waitEvent[*protocol.MicRequested](ctx, t, host, nil); e.Participant != a.ID() {
		t.Fatalf("mic_requested for %s, want %s", e.Participant, a.ID())
	}
	mustOK(ctx, t, host, micMsg("mic_accept", a.ID()))
	for _, c := range []*client.Client{a, host} { // they knew A: role_changed
		waitEvent(ctx, t, c, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleGuest })
	}
	// B did not see A as audience: it learns of A now.
	waitEvent(ctx, t, b, func(e *protocol.ParticipantJoined) bool {
		return e.Participant.ID == a.ID() && e.Participant.Role == protocol.RoleGuest
	})

	pub, err := a.Publish(ctx)
	if err != nil {
		t.Fatalf("the new guest publishes: %v", err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go func() { _, _ = publish(pubCtx, pub, 21, 100000) }()
	tp := waitEvent(ctx, t, b, func(e *protocol.TrackPublished) bool { return e.Participant == a.ID() })
	waitFor(ctx, t, "host and B to hear the guest", func() bool {
		return hostRecv.count(a.ID()) > 20 && bRecv.count(a.ID()) > 20
	})

	mustOK(ctx, t, host, micMsg("mic_release", a.ID()))
	for _, c := range []*client.Client{host, b, a} {
		waitEvent(ctx, t, c, func(e *protocol.TrackUnpublished) bool { return e.Track == tp.Track.ID })
		waitEvent(ctx, t, c, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleAudience })
	}
	waitFor(ctx, t, "the track to leave the sub offers", func() bool {
		return !strings.Contains(host.SubOfferSDP(), tp.Track.ID) && !strings.Contains(b.SubOfferSDP(), tp.Track.ID)
	})
	stopped := bRecv.count(a.ID())
	time.Sleep(300 * time.Millisecond)
	if got := bRecv.count(a.ID()); got != stopped {
		t.Errorf("B still received %d packets after the guest left the mic", got-stopped)
	}
	if code := do(ctx, t, a, map[string]any{"type": "offer", "pc": "pub", "sdp": pub.AnswerSDP()}); code != protocol.CodeForbidden {
		t.Errorf("offer after leaving the mic: %q, want forbidden", orOK(code))
	}
	if n := r.counter(t, "relay_participants", "role", "guest"); n != 0 {
		t.Errorf("relay_participants{role=guest} = %v, want 0", n)
	}
}

// TestMicTimeoutAndSeats: an unanswered request expires with reason
// timeout; accepting when every seat is taken is room_full and the request
// stands; the last host leaving rejects what is pending with no_host.
func TestMicTimeoutAndSeats(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Seats: 2, MicTimeout: 300 * time.Millisecond})
	host := r.join(ctx, t, "seats", "Host", protocol.RoleHost)
	a := r.join(ctx, t, "seats", "A", protocol.RoleAudience)

	t.Run("timeout", func(t *testing.T) {
		mustOK(ctx, t, a, micMsg("mic_request", ""))
		for _, c := range []*client.Client{a, host} {
			e := waitEvent(ctx, t, c, func(e *protocol.MicRejected) bool { return e.Participant == a.ID() })
			if e.Reason != protocol.MicReasonTimeout {
				t.Errorf("reason %q, want timeout", e.Reason)
			}
		}
		if code := do(ctx, t, host, micMsg("mic_accept", a.ID())); code != protocol.CodeNotFound {
			t.Errorf("accepting an expired request: %q, want not_found", orOK(code))
		}
	})
	t.Run("seats exhausted", func(t *testing.T) {
		_ = r.join(ctx, t, "seats", "Guest", protocol.RoleGuest) // the second and last seat
		mustOK(ctx, t, a, micMsg("mic_request", ""))
		waitEvent[*protocol.MicRequested](ctx, t, host, nil)
		if code := do(ctx, t, host, micMsg("mic_accept", a.ID())); code != protocol.CodeRoomFull {
			t.Errorf("accept with no seat: %q, want room_full", orOK(code))
		}
		if code := do(ctx, t, a, micMsg("mic_request", "")); code != protocol.CodeConflict {
			t.Errorf("the request should stand after room_full; a second one got %q, want conflict", orOK(code))
		}
	})
	t.Run("last host leaves", func(t *testing.T) {
		if err := host.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		e := waitEvent(ctx, t, a, func(e *protocol.MicRejected) bool { return e.Participant == a.ID() })
		if e.Reason != protocol.MicReasonNoHost {
			t.Errorf("reason %q, want no_host", e.Reason)
		}
	})
}

// TestMuteAndKick: a host's mute stops forwarding the guest's audio, the
// guest cannot lift it, the host's unmute resumes it; a kicked guest gets
// kicked, is disconnected, and the others see reason kicked.
func TestMuteAndKick(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	host := r.join(ctx, t, "mute", "Host", protocol.RoleHost)
	guest := r.join(ctx, t, "mute", "Guest", protocol.RoleGuest)
	aud := r.join(ctx, t, "mute", "A", protocol.RoleAudience)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	rc := receive(recvCtx, aud)
	pub, err := guest.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go func() { _, _ = publish(pubCtx, pub, 5, 100000) }()
	waitFor(ctx, t, "audio from the guest", func() bool { return rc.count(guest.ID()) > 20 })

	mute := func(from *client.Client, muted bool) string {
		return do(ctx, t, from, map[string]any{"type": "mute", "participant": guest.ID(), "muted": muted})
	}
	if code := mute(host, true); code != "" {
		t.Fatalf("host mutes guest: %s", code)
	}
	for _, c := range []*client.Client{guest, aud} {
		e := waitEvent(ctx, t, c, func(e *protocol.Muted) bool { return e.Participant == guest.ID() })
		if !e.Muted || e.By != host.ID() {
			t.Errorf("muted event %+v, want muted by the host", e)
		}
	}
	time.Sleep(100 * time.Millisecond) // packets already queued
	before := rc.count(guest.ID())
	time.Sleep(500 * time.Millisecond)
	if got := rc.count(guest.ID()); got != before {
		t.Errorf("%d packets forwarded while muted", got-before)
	}
	if code := mute(guest, false); code != protocol.CodeForbidden {
		t.Errorf("guest lifts the host's mute: %q, want forbidden", orOK(code))
	}
	if code := mute(host, false); code != "" {
		t.Fatalf("host unmutes: %s", code)
	}
	waitFor(ctx, t, "audio to resume after unmute", func() bool { return rc.count(guest.ID()) > before+20 })

	mustOK(ctx, t, host, map[string]any{"type": "kick", "participant": guest.ID(), "reason": "bye"})
	if e := waitEvent[*protocol.Kicked](ctx, t, guest, nil); e.Reason != "bye" {
		t.Errorf("kicked reason %q, want bye", e.Reason)
	}
	select {
	case <-guest.Done():
	case <-ctx.Done():
		t.Fatal("kicked guest still connected")
	}
	e := waitEvent(ctx, t, aud, func(e *protocol.ParticipantLeft) bool { return e.Participant == guest.ID() })
	if e.Reason != protocol.ReasonKicked {
		t.Errorf("participant_left reason %q, want kicked", e.Reason)
	}
}
