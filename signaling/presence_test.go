package signaling_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

// TestPresence: hosts and guests are visible to everyone; audience members
// to hosts only; everyone else sees the audience count.
func TestPresence(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	host := r.join(ctx, t, "p", "Host", protocol.RoleHost)
	a1 := r.join(ctx, t, "p", "A1", protocol.RoleAudience)

	// The host hears of the audience member; the audience member sees the
	// host in joined.
	e := waitEvent[*protocol.ParticipantJoined](ctx, t, host, nil)
	if e.Participant.ID != a1.ID() || e.Participant.Role != protocol.RoleAudience || e.Participant.Name != "A1" {
		t.Errorf("host got participant_joined %+v, want A1 as audience", e.Participant)
	}
	if ps := a1.Joined().Participants; len(ps) != 1 || ps[0].ID != host.ID() || ps[0].Role != protocol.RoleHost {
		t.Errorf("audience joined.participants = %+v, want only the host", ps)
	}

	guest := r.join(ctx, t, "p", "Guest", protocol.RoleGuest)
	// The guest sees the host but not the audience member, and the count.
	j := guest.Joined()
	if len(j.Participants) != 1 || j.Participants[0].ID != host.ID() {
		t.Errorf("guest joined.participants = %+v, want only the host", j.Participants)
	}
	if j.Audience != 1 {
		t.Errorf("guest joined.audience = %d, want 1", j.Audience)
	}
	if j.Version != protocol.Version || j.Room != "p" || j.Participant.ID != guest.ID() || j.Participant.Role != protocol.RoleGuest {
		t.Errorf("guest joined = %+v", j)
	}
	// Everyone hears of the guest.
	for _, c := range []*client.Client{host, a1} {
		waitEvent(ctx, t, c, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == guest.ID() })
	}

	// A second host sees everyone, the audience member included.
	host2 := r.join(ctx, t, "p", "Host2", protocol.RoleHost)
	seen := map[string]bool{}
	for _, p := range host2.Joined().Participants {
		seen[p.ID] = true
		if p.Tracks == nil {
			t.Errorf("participant %s has tracks null, want []", p.ID)
		}
	}
	for _, c := range []*client.Client{host, a1, guest} {
		if !seen[c.ID()] {
			t.Errorf("second host's joined.participants lacks %s", c.Joined().Participant.Name)
		}
	}

	// A second audience member: the count reaches those who do not see the
	// audience, at most once a second; hosts hear of the member itself.
	a2 := r.join(ctx, t, "p", "A2", protocol.RoleAudience)
	waitEvent(ctx, t, guest, func(e *protocol.Audience) bool { return e.Count == 2 })
	waitEvent(ctx, t, host, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == a2.ID() })

	// The audience member leaves: hosts hear of it, the guest sees the count.
	if err := a2.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	left := waitEvent(ctx, t, host, func(e *protocol.ParticipantLeft) bool { return e.Participant == a2.ID() })
	if left.Reason != protocol.ReasonLeft {
		t.Errorf("reason %q, want left", left.Reason)
	}
	waitEvent(ctx, t, guest, func(e *protocol.Audience) bool { return e.Count == 1 })
	drainFor(guest, 200*time.Millisecond, func(ev any) {
		if e, ok := ev.(*protocol.ParticipantLeft); ok && e.Participant == a2.ID() {
			t.Errorf("the guest was told that an audience member left")
		}
	})
}

// drainFor passes c's events to f for d.
func drainFor(c *client.Client, d time.Duration, f func(any)) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-c.Events():
			f(ev)
		case <-timer.C:
			return
		}
	}
}

// TestLeaveAndVanish: a guest that sends leave and a host that just drops
// its sockets are removed with the right reasons; their tracks leave the
// others' sub connections.
func TestLeaveAndVanish(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Grace: 500 * time.Millisecond})
	host := r.join(ctx, t, "lv", "Host", protocol.RoleHost)
	guest := r.join(ctx, t, "lv", "Guest", protocol.RoleGuest)
	aud := r.join(ctx, t, "lv", "A", protocol.RoleAudience)

	// Both publish; wait until the audience member has both tracks in its
	// sub connection.
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	tracks := map[string]string{}
	for i, c := range []*client.Client{host, guest} {
		p, err := c.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = publish(pubCtx, p, int64(i+10), 3000) }() // ends with an error when the host drops
	}
	for len(tracks) < 2 {
		e := waitEvent[*protocol.TrackPublished](ctx, t, aud, nil)
		tracks[e.Participant] = e.Track.ID
	}
	waitFor(ctx, t, "both tracks in the audience's sub offer", func() bool {
		sdp := aud.SubOfferSDP()
		return strings.Contains(sdp, tracks[host.ID()]) && strings.Contains(sdp, tracks[guest.ID()])
	})

	t.Run("leave", func(t *testing.T) {
		if err := guest.Leave(ctx); err != nil {
			t.Fatalf("leave: %v (close code %d)", err, guest.CloseCode())
		}
		if code := guest.CloseCode(); code != protocol.CloseNormal {
			t.Errorf("close code %d, want 1000", code)
		}
		for _, c := range []*client.Client{host, aud} {
			u := waitEvent(ctx, t, c, func(e *protocol.TrackUnpublished) bool { return e.Participant == guest.ID() })
			if u.Track != tracks[guest.ID()] {
				t.Errorf("track_unpublished for %s, want %s", u.Track, tracks[guest.ID()])
			}
			e := waitEvent(ctx, t, c, func(e *protocol.ParticipantLeft) bool { return e.Participant == guest.ID() })
			if e.Reason != protocol.ReasonLeft {
				t.Errorf("reason %q, want left", e.Reason)
			}
		}
		waitFor(ctx, t, "the guest's track to leave the audience's sub offer", func() bool {
			return !strings.Contains(aud.SubOfferSDP(), tracks[guest.ID()])
		})
	})

	t.Run("vanish", func(t *testing.T) {
		dropped := time.Now()
		host.Drop()
		e := waitEvent(ctx, t, aud, func(e *protocol.ParticipantLeft) bool { return e.Participant == host.ID() })
		if e.Reason != protocol.ReasonTimeout {
			t.Errorf("reason %q, want timeout", e.Reason)
		}
		if time.Since(dropped) < 500*time.Millisecond {
			t.Errorf("removed before the grace period ended")
		}
		waitFor(ctx, t, "the host's track to leave the audience's sub offer", func() bool {
			return !strings.Contains(aud.SubOfferSDP(), tracks[host.ID()])
		})
		waitFor(ctx, t, "relay_tracks to reach 0", func() bool { return r.counter(t, "relay_tracks") == 0 })
		if n := r.counter(t, "relay_participants", "role", "audience"); n != 1 {
			t.Errorf("relay_participants{role=audience} = %v, want 1", n)
		}
		if n := r.counter(t, "relay_participants", "role", "host"); n != 0 {
			t.Errorf("relay_participants{role=host} = %v, want 0", n)
		}
	})
}

// waitFor polls cond until it holds, failing t at ctx's end.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
