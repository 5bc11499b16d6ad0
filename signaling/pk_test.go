package signaling_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

// Cross-room co-streaming (PK) over the real WebSocket with real pion
// peers and real Opus.

func pkMsg(typ, room string) map[string]any { return map[string]any{"type": typ, "room": room} }

// pkFreq, pkAmp: room a's guest's tone, apart from the two hosts' (the mix
// tests' hostFreq and guestFreq), a whole number of periods in 10 ms.
const pkFreq, pkAmp = 500.0, 0.10

// hearsOnly waits until l has at least n payloads of stream and checks
// every one of them byte for byte against what its publisher sent.
func hearsOnly(ctx context.Context, t *testing.T, l *trackLog, stream string, sent *sentStream, n int, what string) {
	t.Helper()
	waitFor(ctx, t, what, func() bool { return l.count(stream) >= n })
	set := sent.payloadSet()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, p := range l.payloads[stream] {
		if len(p) > 0 && !set[string(p)] {
			t.Errorf("%s: payload %d (%d bytes) was never sent by its publisher", what, i, len(p))
			return
		}
	}
}

// silentWhile checks that none of quiet gets a packet of stream while
// clock gets 30 of clockStream, after settle packets there for what was
// on the way when the change was replied to.
func silentWhile(ctx context.Context, t *testing.T, quiet []*trackLog, stream string, clock *trackLog, clockStream string, settle int, what string) {
	t.Helper()
	tick := func(n int) {
		start := clock.count(clockStream)
		waitFor(ctx, t, what+": packets at the clock listener", func() bool { return clock.count(clockStream) >= start+n })
	}
	tick(settle)
	before := make([]int, len(quiet))
	for i, l := range quiet {
		before[i] = l.count(stream)
	}
	tick(30)
	for i, l := range quiet {
		if got := l.count(stream) - before[i]; got != 0 {
			t.Errorf("%s: listener %d got %d packets while the clock listener got 30, want none", what, i, got)
		}
	}
}

// pkEnded waits for pk_ended at each client (the room it names) and checks
// its reason.
func pkEnded(ctx context.Context, t *testing.T, reason string, at map[*client.Client]string) {
	t.Helper()
	for c, room := range at {
		e := waitEvent(ctx, t, c, func(e *protocol.PKEnded) bool { return e.Room == room })
		if e.Reason != reason {
			t.Errorf("%s: pk_ended %+v, want reason %s", c.ID(), e, reason)
		}
	}
}

// leftWith waits for participant_left of every one of ids at c, in any
// order, and checks its reason.
func leftWith(ctx context.Context, t *testing.T, c *client.Client, ids []string, reason string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		pl := waitEvent(ctx, t, c, func(e *protocol.ParticipantLeft) bool { return want[e.Participant] })
		delete(want, pl.Participant)
		if pl.Reason != reason {
			t.Errorf("%s: participant_left %+v, want reason %s", c.ID(), pl, reason)
		}
	}
}

// TestPKLink: room pka (host, guest, 3 audience) and room pkb (host, 2
// audience, a mix listener) link; each host hears the other, every
// audience member hears both rooms' publishers byte for byte, and pkb's
// mix holds both hosts' tones (the real mixer). Remote participants come
// with role remote and their room; a kick of one is forbidden; a mute of
// one in pkb silences it in pkb only; pk_end stops cross-forwarding (by
// packets) and the remote participants leave with reason pk_ended. Linked
// again, pkb's last host leaving ends the link with pk_ended to both.
func TestPKLink(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Mix: true})
	hostA := r.join(ctx, t, "pka", "HostA", protocol.RoleHost)
	guestA := r.join(ctx, t, "pka", "GuestA", protocol.RoleGuest)
	var audA, audB []*client.Client
	for i := range 3 {
		audA = append(audA, r.join(ctx, t, "pka", fmt.Sprintf("A%d", i+1), protocol.RoleAudience))
	}
	hostB := r.join(ctx, t, "pkb", "HostB", protocol.RoleHost)
	for i := range 2 {
		audB = append(audB, r.join(ctx, t, "pkb", fmt.Sprintf("B%d", i+1), protocol.RoleAudience))
	}
	ear := listenMix(ctx, t, r.joinListen(ctx, t, "pkb", "BMix", protocol.RoleAudience, protocol.ListenMix))

	logs := map[*client.Client]*trackLog{}
	for _, c := range append(append([]*client.Client{hostA, guestA, hostB}, audA...), audB...) {
		logs[c] = logTracks(ctx, c)
	}
	sent := map[string]*sentStream{
		hostA.ID():  publishTone(ctx, t, hostA, hostFreq, hostAmp),
		guestA.ID(): publishTone(ctx, t, guestA, pkFreq, pkAmp),
		hostB.ID():  publishTone(ctx, t, hostB, guestFreq, guestAmp),
	}
	hearsOnly(ctx, t, logs[audB[0]], hostB.ID(), sent[hostB.ID()], 20, "pkb hears its host before the link")
	if n := logs[audB[0]].count(hostA.ID()); n != 0 {
		t.Fatalf("pkb's audience got %d packets of pka's host before any link", n)
	}

	mustOK(ctx, t, hostA, pkMsg("pk_invite", "pkb"))
	inv := waitEvent[*protocol.PKInvited](ctx, t, hostB, nil)
	if inv.Room != "pka" || inv.By.ID != hostA.ID() || inv.By.Name != "HostA" {
		t.Errorf("pk_invited %+v, want room pka by %s (HostA)", inv, hostA.ID())
	}
	mustOK(ctx, t, hostB, pkMsg("pk_accept", "pka"))
	for c, room := range map[*client.Client]string{hostA: "pkb", hostB: "pka", audB[0]: "pka", audA[0]: "pkb"} {
		waitEvent(ctx, t, c, func(e *protocol.PKStarted) bool { return e.Room == room })
	}
	pj := waitEvent(ctx, t, audB[0], func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == hostA.ID() })
	if want := (protocol.Participant{ID: hostA.ID(), Name: "HostA", Role: protocol.RoleRemote, Room: "pka"}); pj.Participant != want {
		t.Errorf("participant_joined %+v, want %+v", pj.Participant, want)
	}
	if code := do(ctx, t, hostB, map[string]any{"type": "kick", "participant": hostA.ID()}); code != protocol.CodeForbidden {
		t.Errorf("kick of a remote participant: %q, want forbidden", code)
	}

	// Everyone hears everyone of both rooms but itself, byte for byte.
	hears := map[*client.Client][]*client.Client{
		hostA: {guestA, hostB}, guestA: {hostA, hostB}, hostB: {hostA, guestA},
	}
	for _, c := range append(append([]*client.Client{}, audA...), audB...) {
		hears[c] = []*client.Client{hostA, guestA, hostB}
	}
	for c, froms := range hears {
		for _, from := range froms {
			hearsOnly(ctx, t, logs[c], from.ID(), sent[from.ID()], 50,
				fmt.Sprintf("%s hears %s", c.Joined().Participant.Name, from.Joined().Participant.Name))
		}
		for _, self := range []*client.Client{hostA, guestA, hostB} {
			if c == self && logs[c].count(self.ID()) > 0 {
				t.Errorf("%s receives its own track", self.ID())
			}
		}
	}
	ear.waitBoth(ctx, t, "pkb's mix holds pka's host and pkb's host")

	// A mute of pka's host in pkb: silent in pkb only.
	mustOK(ctx, t, hostB, map[string]any{"type": "mute", "participant": hostA.ID(), "muted": true})
	m := waitEvent(ctx, t, audB[1], func(e *protocol.Muted) bool { return e.Participant == hostA.ID() })
	if !m.Muted || m.By != hostB.ID() {
		t.Errorf("muted %+v, want muted by %s", m, hostB.ID())
	}
	silentWhile(ctx, t, []*trackLog{logs[audB[0]], logs[audB[1]], logs[hostB]}, hostA.ID(), logs[audA[0]], hostA.ID(), 10, "muted in pkb")
	for _, c := range []*client.Client{audA[1], audA[2], guestA} {
		hearsOnly(ctx, t, logs[c], hostA.ID(), sent[hostA.ID()], logs[c].count(hostA.ID())+20, "pka still hears its host")
	}
	hearsOnly(ctx, t, logs[audB[0]], guestA.ID(), sent[guestA.ID()], logs[audB[0]].count(guestA.ID())+20, "pkb still hears pka's guest")
	mustOK(ctx, t, hostB, map[string]any{"type": "mute", "participant": hostA.ID(), "muted": false})
	hearsOnly(ctx, t, logs[audB[0]], hostA.ID(), sent[hostA.ID()], logs[audB[0]].count(hostA.ID())+20, "pkb hears pka's host again")

	// pk_end: no more cross-forwarding, remote participants gone.
	mustOK(ctx, t, hostB, pkMsg("pk_end", "pka"))
	silentWhile(ctx, t, []*trackLog{logs[audB[0]], logs[audB[1]], logs[hostB]}, hostA.ID(), logs[audA[0]], hostA.ID(), 3, "after pk_end, pka's host in pkb")
	silentWhile(ctx, t, []*trackLog{logs[audA[0]], logs[hostA], logs[guestA]}, hostB.ID(), logs[audB[0]], hostB.ID(), 0, "after pk_end, pkb's host in pka")
	pkEnded(ctx, t, protocol.PKReasonEnded, map[*client.Client]string{hostA: "pkb", audA[1]: "pkb", audA[2]: "pkb", audB[1]: "pka"})
	for c, gone := range map[*client.Client][]string{audB[0]: {hostA.ID(), guestA.ID()}, audA[0]: {hostB.ID()}} {
		leftWith(ctx, t, c, gone, protocol.ReasonPKEnded)
	}

	// Linked again; pkb's last host leaves.
	mustOK(ctx, t, hostA, pkMsg("pk_invite", "pkb"))
	waitEvent[*protocol.PKInvited](ctx, t, hostB, nil)
	mustOK(ctx, t, hostB, pkMsg("pk_accept", "pka"))
	hearsOnly(ctx, t, logs[audB[0]], hostA.ID(), sent[hostA.ID()], logs[audB[0]].count(hostA.ID())+20, "pkb hears pka's host once linked again")
	hearsOnly(ctx, t, logs[audA[0]], hostB.ID(), sent[hostB.ID()], logs[audA[0]].count(hostB.ID())+20, "pka hears pkb's host once linked again")
	if err := hostB.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	pkEnded(ctx, t, protocol.PKReasonNoHost, map[*client.Client]string{hostA: "pkb", audA[1]: "pkb", audB[1]: "pka"})
	for c, gone := range map[*client.Client][]string{audB[1]: {hostA.ID(), guestA.ID()}, audA[1]: {hostB.ID()}} {
		leftWith(ctx, t, c, gone, protocol.ReasonPKEnded)
	}
	silentWhile(ctx, t, []*trackLog{logs[audB[0]], logs[audB[1]]}, hostA.ID(), logs[audA[0]], hostA.ID(), 3, "after pkb's host left, pka's host in pkb")
}

// TestPKErrors: every refusal of the link messages, with its code, over
// the real WebSocket; and the invitation's ends without a link (timeout,
// reject, cancel, the invited room emptying), told to both rooms' hosts.
// Each row has rooms of its own.
func TestPKErrors(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{MicTimeout: 2 * time.Second})
	n := 0
	// rooms makes two rooms, a (host, guest, audience) and b (host,
	// guest), with names of their own.
	type pair struct {
		a, b                string
		hostA, guestA, audA *client.Client
		hostB, guestB       *client.Client
	}
	rooms := func() *pair {
		n++
		p := &pair{a: fmt.Sprintf("ea%d", n), b: fmt.Sprintf("eb%d", n)}
		p.hostA = r.join(ctx, t, p.a, "HA", protocol.RoleHost)
		p.guestA = r.join(ctx, t, p.a, "GA", protocol.RoleGuest)
		p.audA = r.join(ctx, t, p.a, "AA", protocol.RoleAudience)
		p.hostB = r.join(ctx, t, p.b, "HB", protocol.RoleHost)
		p.guestB = r.join(ctx, t, p.b, "GB", protocol.RoleGuest)
		return p
	}
	invited := func(p *pair) {
		t.Helper()
		mustOK(ctx, t, p.hostA, pkMsg("pk_invite", p.b))
		waitEvent(ctx, t, p.hostB, func(e *protocol.PKInvited) bool { return e.Room == p.a })
	}
	rejected := func(p *pair, reason string) {
		t.Helper()
		for c, room := range map[*client.Client]string{p.hostA: p.b, p.hostB: p.a} {
			e := waitEvent(ctx, t, c, func(e *protocol.PKRejected) bool { return e.Room == room })
			if e.Reason != reason {
				t.Errorf("pk_rejected %+v, want reason %s", e, reason)
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, p *pair) string // returns the code of the message under test
		want string
	}{
		{"audience invites", func(t *testing.T, p *pair) string { return do(ctx, t, p.audA, pkMsg("pk_invite", p.b)) }, protocol.CodeForbidden},
		{"guest invites", func(t *testing.T, p *pair) string { return do(ctx, t, p.guestA, pkMsg("pk_invite", p.b)) }, protocol.CodeForbidden},
		{"guest accepts", func(t *testing.T, p *pair) string {
			invited(p)
			return do(ctx, t, p.guestB, pkMsg("pk_accept", p.a))
		}, protocol.CodeForbidden},
		{"guest rejects", func(t *testing.T, p *pair) string {
			invited(p)
			return do(ctx, t, p.guestB, pkMsg("pk_reject", p.a))
		}, protocol.CodeForbidden},
		{"audience ends", func(t *testing.T, p *pair) string { return do(ctx, t, p.audA, pkMsg("pk_end", p.b)) }, protocol.CodeForbidden},
		{"own room", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostA, pkMsg("pk_invite", p.a)) }, protocol.CodeBadRequest},
		{"malformed room", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostA, pkMsg("pk_invite", "no such/room")) }, protocol.CodeBadRequest},
		{"missing room", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostA, map[string]any{"type": "pk_invite"}) }, protocol.CodeBadRequest},
		{"nonexistent room", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostA, pkMsg("pk_invite", "nobody-here")) }, protocol.CodeNotFound},
		{"room without host", func(t *testing.T, p *pair) string {
			r.join(ctx, t, p.b+"x", "only-audience", protocol.RoleAudience)
			return do(ctx, t, p.hostA, pkMsg("pk_invite", p.b+"x"))
		}, protocol.CodeNotFound},
		{"accept without invitation", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostB, pkMsg("pk_accept", p.a)) }, protocol.CodeNotFound},
		{"accept the wrong room", func(t *testing.T, p *pair) string {
			invited(p)
			return do(ctx, t, p.hostB, pkMsg("pk_accept", "elsewhere"))
		}, protocol.CodeNotFound},
		{"inviter accepts its own invitation", func(t *testing.T, p *pair) string {
			invited(p)
			return do(ctx, t, p.hostA, pkMsg("pk_accept", p.b))
		}, protocol.CodeNotFound},
		{"end without a link", func(t *testing.T, p *pair) string { return do(ctx, t, p.hostA, pkMsg("pk_end", p.b)) }, protocol.CodeNotFound},
		{"second invitation while one is pending", func(t *testing.T, p *pair) string {
			q := rooms() // first: five joins under load could outlast the invitation
			invited(p)
			if code := do(ctx, t, q.hostA, pkMsg("pk_invite", p.b)); code != protocol.CodeConflict {
				t.Errorf("inviting a room with a pending invitation: %q, want conflict", code)
			}
			return do(ctx, t, p.hostA, pkMsg("pk_invite", q.b))
		}, protocol.CodeConflict},
		{"second link", func(t *testing.T, p *pair) string {
			invited(p)
			mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
			q := rooms()
			if code := do(ctx, t, q.hostA, pkMsg("pk_invite", p.a)); code != protocol.CodeConflict {
				t.Errorf("inviting a linked room: %q, want conflict", code)
			}
			return do(ctx, t, p.hostB, pkMsg("pk_invite", q.a))
		}, protocol.CodeConflict},
		{"kick a remote participant", func(t *testing.T, p *pair) string {
			invited(p)
			mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
			waitEvent(ctx, t, p.hostB, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == p.hostA.ID() })
			return do(ctx, t, p.hostB, map[string]any{"type": "kick", "participant": p.hostA.ID()})
		}, protocol.CodeForbidden},
		{"guest mutes a remote participant", func(t *testing.T, p *pair) string {
			invited(p)
			mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
			waitEvent(ctx, t, p.guestB, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == p.hostA.ID() })
			return do(ctx, t, p.guestB, map[string]any{"type": "mute", "participant": p.hostA.ID(), "muted": true})
		}, protocol.CodeForbidden},
		{"linked again at once", func(t *testing.T, p *pair) string {
			for range 2 {
				invited(p)
				mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
				waitEvent(ctx, t, p.hostB, func(e *protocol.PKStarted) bool { return e.Room == p.a })
				// The remote host joins after pk_started, whatever the
				// last link still had to take out.
				waitEvent(ctx, t, p.hostB, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == p.hostA.ID() })
				mustOK(ctx, t, p.hostA, pkMsg("pk_end", p.b))
			}
			return ""
		}, ""},
		{"timeout", func(t *testing.T, p *pair) string {
			invited(p)
			rejected(p, protocol.PKReasonTimeout)
			return do(ctx, t, p.hostB, pkMsg("pk_accept", p.a)) // expired
		}, protocol.CodeNotFound},
		{"reject", func(t *testing.T, p *pair) string {
			invited(p)
			code := do(ctx, t, p.hostB, pkMsg("pk_reject", p.a))
			rejected(p, protocol.PKReasonRejected)
			return code
		}, ""},
		{"cancel", func(t *testing.T, p *pair) string {
			invited(p)
			code := do(ctx, t, p.hostA, pkMsg("pk_end", p.b))
			rejected(p, protocol.PKReasonCancelled)
			return code
		}, ""},
		{"a mute in its own room reaches the other", func(t *testing.T, p *pair) string {
			invited(p)
			mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
			waitEvent(ctx, t, p.hostB, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == p.guestA.ID() })
			mustOK(ctx, t, p.hostA, map[string]any{"type": "mute", "participant": p.guestA.ID(), "muted": true})
			m := waitEvent(ctx, t, p.guestB, func(e *protocol.Muted) bool { return e.Participant == p.guestA.ID() })
			if !m.Muted || m.By != p.guestA.ID() {
				t.Errorf("muted %+v in the other room, want muted by the remote participant itself", m)
			}
			return ""
		}, ""},
		{"a linked room empties", func(t *testing.T, p *pair) string {
			invited(p)
			mustOK(ctx, t, p.hostB, pkMsg("pk_accept", p.a))
			waitEvent(ctx, t, p.hostA, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == p.hostB.ID() })
			for _, c := range []*client.Client{p.guestB, p.hostB} {
				if err := c.Leave(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pkEnded(ctx, t, protocol.PKReasonNoHost, map[*client.Client]string{p.hostA: p.b, p.audA: p.b})
			leftWith(ctx, t, p.hostA, []string{p.hostB.ID()}, protocol.ReasonPKEnded)
			return do(ctx, t, p.hostA, pkMsg("pk_end", p.b)) // nothing left to end
		}, protocol.CodeNotFound},
		{"the invited room's host leaves", func(t *testing.T, p *pair) string {
			invited(p)
			if err := p.hostB.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			e := waitEvent(ctx, t, p.hostA, func(e *protocol.PKRejected) bool { return e.Room == p.b })
			if e.Reason != protocol.PKReasonNoHost {
				t.Errorf("pk_rejected %+v, want reason no_host", e)
			}
			return do(ctx, t, p.hostA, pkMsg("pk_invite", p.b)) // still no host there
		}, protocol.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.run(t, rooms()); got != tt.want {
				t.Errorf("code %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPKHostToken: with tokens, only a participant whose token made it a
// host links rooms: a guest token's holder is refused, a host token's is
// not.
func TestPKHostToken(t *testing.T) {
	const secret = "pk-secret"
	r, ctx := startRelay(t, relayOpts{AuthSecret: secret})
	dial := func(room, name, role string) *client.Client {
		tok, err := auth.Mint([]byte(secret), room, name, role, time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r.dial(ctx, t, client.Config{Room: room, Name: name, Token: tok})
	}
	dial("tb", "HB", protocol.RoleHost)
	guest := dial("ta", "GA", protocol.RoleGuest)
	if code := do(ctx, t, guest, pkMsg("pk_invite", "tb")); code != protocol.CodeForbidden {
		t.Errorf("pk_invite with a guest token: %q, want forbidden", code)
	}
	host := dial("ta", "HA", protocol.RoleHost)
	mustOK(ctx, t, host, pkMsg("pk_invite", "tb"))
}
