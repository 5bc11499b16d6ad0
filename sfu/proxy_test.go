package sfu

import (
	"context"
	"errors"
	"testing"
	"time"
)

// nextEvent returns the first event of type T on sink, skipping others,
// or fails when ctx ends.
func nextEvent[T Event](ctx context.Context, t *testing.T, sink *eventSink, match func(T) bool) T {
	t.Helper()
	for {
		select {
		case ev := <-sink.events:
			if e, ok := ev.(T); ok && (match == nil || match(e)) {
				return e
			}
		case <-ctx.Done():
			var zero T
			t.Fatalf("no %T came", zero)
			return zero
		}
	}
}

// noEvent fails if sink holds an event of type T (what was sent before).
func noEvent[T Event](t *testing.T, sink *eventSink, what string) {
	t.Helper()
	for {
		select {
		case ev := <-sink.events:
			if _, ok := ev.(T); ok {
				t.Errorf("%s: got %+v", what, ev)
			}
		default:
			return
		}
	}
}

// TestProxyOnOwner: a link's proxies are audience members its hosts see
// (participant_joined/left; others do not); a proxy whose id is taken
// gets another; a host's kick and invitation go to the proxy's sink (the
// invitation with a ticket); the ticket makes a later audience member a
// guest once, and no other ticket does; the link's end takes its proxies.
func TestProxyOnOwner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newLoopbackSFU(t, time.Second)
	defer func() { _ = s.Close() }()
	join := func(name string, role Role, hidden bool) (*Participant, *eventSink) {
		t.Helper()
		return joinNoSub(t, s, name, role, hidden)
	}
	host, hs := join("host", RoleHost, false)
	aud, as := join("aud", RoleAudience, false)
	link, _ := join("edge b", RoleAudience, true)

	if _, err := aud.AddProxy(ProxyParams{ID: "x", Name: "x", Sink: newEventSink()}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a proxy added by an audience member: %v, want forbidden", err)
	}
	if _, err := link.AddProxy(ProxyParams{Name: "no id", Sink: newEventSink()}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a proxy without an id: %v, want bad_request", err)
	}

	ps := newEventSink()
	proxy, err := link.AddProxy(ProxyParams{ID: "p_edge1", Name: "Edge listener", Sink: ps})
	if err != nil {
		t.Fatal(err)
	}
	if proxy.ID() != "p_edge1" || proxy.ProxyID() != "p_edge1" {
		t.Errorf("proxy id %s (edge %s), want p_edge1 for both", proxy.ID(), proxy.ProxyID())
	}
	pj := nextEvent(ctx, t, hs, func(e ParticipantJoinedEvent) bool { return e.Participant.ID == "p_edge1" })
	if pj.Participant.Role != RoleAudience || pj.Participant.Name != "Edge listener" {
		t.Errorf("the host saw %+v, want an audience member named Edge listener", pj.Participant)
	}
	noEvent[ParticipantJoinedEvent](t, as, "an audience member told of another")

	// Ids taken here: by a local participant, by another proxy.
	for _, taken := range []string{aud.ID(), host.ID(), "p_edge1"} {
		q, err := link.AddProxy(ProxyParams{ID: taken, Name: "twin", Sink: newEventSink()})
		if err != nil {
			t.Fatal(err)
		}
		if q.ID() == taken || q.ProxyID() != taken {
			t.Errorf("a proxy with the taken id %s: id %s, edge id %s; want a new id here and %s on the edge", taken, q.ID(), q.ProxyID(), taken)
		}
		nextEvent(ctx, t, hs, func(e ParticipantJoinedEvent) bool { return e.Participant.ID == q.ID() })
	}
	if ids := map[string]bool{}; true {
		for _, q := range host.room.snapshot() {
			if ids[q.id] {
				t.Errorf("two participants have the id %s", q.id)
			}
			ids[q.id] = true
		}
	}

	// A late host sees the proxies in joined.
	late, ls := join("late host", RoleHost, false)
	j := nextEvent[JoinedEvent](ctx, t, ls, nil)
	seen := 0
	for _, o := range j.Others {
		if o.Role == RoleAudience && o.ID != aud.ID() {
			seen++
		}
	}
	if seen != 4 {
		t.Errorf("a host joining saw %d proxies in joined, want 4", seen)
	}

	// A host's invitation goes to the proxy's sink with a ticket.
	if err := host.MicInvite(proxy.ID()); err != nil {
		t.Fatal(err)
	}
	inv := nextEvent[MicInvitedEvent](ctx, t, ps, nil)
	if inv.By != host.ID() || inv.Ticket == "" {
		t.Fatalf("the proxy's invitation: %+v, want by the host with a ticket", inv)
	}
	// The listener moves here: its proxy leaves, a new audience member
	// joins and accepts with the ticket, once.
	if err := aud.AcceptTicket("not-a-ticket"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a made-up ticket: %v, want not_found", err)
	}
	proxy.Leave()
	nextEvent(ctx, t, hs, func(e ParticipantLeftEvent) bool { return e.ID == proxy.ID() && e.Reason == ReasonLeft })
	moved, _ := join("Edge listener", RoleAudience, false)
	if err := moved.AcceptTicket(inv.Ticket); err != nil {
		t.Fatalf("accept with the ticket: %v", err)
	}
	nextEvent(ctx, t, hs, func(e RoleChangedEvent) bool { return e.Participant == moved.ID() && e.Role == RoleGuest })
	if err := aud.AcceptTicket(inv.Ticket); !errors.Is(err, ErrNotFound) {
		t.Errorf("a ticket used twice: %v, want not_found", err)
	}
	if err := moved.AcceptTicket(inv.Ticket); !errors.Is(err, ErrForbidden) {
		t.Errorf("a guest accepting: %v, want forbidden", err)
	}

	// A kick: the proxy's sink gets kicked, the hosts participant_left.
	q2 := host.room.snapshot()
	var victim *Participant
	for _, q := range q2 {
		if q.via != nil {
			victim = q
			break
		}
	}
	vs := victim.sink.current().(*eventSink)
	if err := host.Kick(victim.ID(), "spam"); err != nil {
		t.Fatal(err)
	}
	if k := nextEvent[KickedEvent](ctx, t, vs, nil); k.Reason != "spam" {
		t.Errorf("the proxy's kick: %+v, want reason spam", k)
	}
	nextEvent(ctx, t, hs, func(e ParticipantLeftEvent) bool { return e.ID == victim.ID() && e.Reason == ReasonKicked })

	// The link leaves: its last proxies leave with it.
	link.Leave()
	left := 0
	for left < 2 {
		nextEvent(ctx, t, ls, func(e ParticipantLeftEvent) bool { return e.Reason == ReasonLeft })
		left++
	}
	for _, q := range host.room.snapshot() {
		if q.via != nil {
			t.Errorf("proxy %s stayed after its link left", q.id)
		}
	}
	if n := host.room.proxies; n != 0 {
		t.Errorf("room counts %d proxies, want 0", n)
	}
	_ = late
}

// TestProxyInvitationTicketEnds: a proxy's ticket ends with the room's
// last host, and with the invitation's timeout.
func TestProxyInvitationTicketEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newLoopbackSFUWith(t, Config{GracePeriod: time.Second, MicTimeout: 200 * time.Millisecond})
	defer func() { _ = s.Close() }()
	join := func(name string, role Role, hidden bool) (*Participant, *eventSink) {
		t.Helper()
		return joinNoSub(t, s, name, role, hidden)
	}
	host, _ := join("host", RoleHost, false)
	link, _ := join("edge", RoleAudience, true)
	aud, _ := join("aud", RoleAudience, false)
	invite := func(id string) (string, *eventSink) {
		ps := newEventSink()
		q, err := link.AddProxy(ProxyParams{ID: id, Name: id, Sink: ps})
		if err != nil {
			t.Fatal(err)
		}
		if err := host.MicInvite(q.ID()); err != nil {
			t.Fatal(err)
		}
		return nextEvent[MicInvitedEvent](ctx, t, ps, nil).Ticket, ps
	}

	t.Run("timeout", func(t *testing.T) {
		ticket, ps := invite("e1")
		if e := nextEvent[MicRejectedEvent](ctx, t, ps, nil); e.Reason != MicTimeout {
			t.Errorf("the proxy's invitation ended with %s, want timeout", e.Reason)
		}
		if err := aud.AcceptTicket(ticket); !errors.Is(err, ErrNotFound) {
			t.Errorf("a timed-out ticket: %v, want not_found", err)
		}
	})
	t.Run("last host leaves", func(t *testing.T) {
		ticket, ps := invite("e2")
		host.Leave()
		if e := nextEvent[MicRejectedEvent](ctx, t, ps, nil); e.Reason != MicNoHost {
			t.Errorf("the proxy's invitation ended with %s, want no_host", e.Reason)
		}
		if err := aud.AcceptTicket(ticket); !errors.Is(err, ErrNotFound) {
			t.Errorf("the ticket of a room without hosts: %v, want not_found", err)
		}
	})
}

// TestProxyOnEdge: an edge room tells its hooks each listener's join and
// leave; an invitation from the owner reaches the listener (mic_invited),
// its early pub is refused, its mic_accept is a MicElsewhereError with
// the ticket, its decline is told to the hooks; the owner's kick expels
// it as a kick does (kicked, connection closed with reason kicked).
func TestProxyOnEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newLoopbackSFU(t, time.Second)
	defer func() { _ = s.Close() }()
	changes := make(chan ListenerChange, 32)
	hooks := EdgeHooks{OwnerURL: "ws://owner/ws", OnListener: func(c ListenerChange) { changes <- c }}
	join := func(name string) (*Participant, *eventSink) {
		t.Helper()
		sink := newEventSink()
		p, _, err := s.JoinEdgeRoom(JoinParams{Room: "r", Name: name, Role: RoleAudience, Sink: sink, Sub: SubNone}, hooks)
		if err != nil {
			t.Fatal(err)
		}
		return p, sink
	}
	change := func(want ListenerChangeKind, id string) {
		t.Helper()
		select {
		case c := <-changes:
			if c.Kind != want || c.Info.ID != id {
				t.Errorf("listener change %+v, want kind %d for %s", c, want, id)
			}
		case <-ctx.Done():
			t.Fatalf("no listener change %d for %s", want, id)
		}
	}
	a, as := join("A")
	change(ListenerJoined, a.ID())
	b, bs := join("B")
	change(ListenerJoined, b.ID())
	r := a.Room()

	if err := r.LocalInvited("nobody", "h", "T"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an invitation of nobody: %v, want not_found", err)
	}
	if err := r.LocalInvited(a.ID(), "h_1", "ticket-a"); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent[MicInvitedEvent](ctx, t, as, nil); e.By != "h_1" || e.Ticket != "" || !e.Elsewhere {
		t.Errorf("the listener's invitation: %+v, want by h_1, from elsewhere, and no ticket shown", e)
	}
	if err := r.LocalInvited(a.ID(), "h_1", "again"); !errors.Is(err, ErrConflict) {
		t.Errorf("a second invitation: %v, want conflict", err)
	}
	if err := a.Offer(as, "", "v=0"); !errors.Is(err, ErrForbidden) {
		t.Errorf("an early pub on the edge: %v, want forbidden", err)
	}
	var me *MicElsewhereError
	if err := a.MicAccept(""); !errors.As(err, &me) || me.Ticket != "ticket-a" || me.URL != "ws://owner/ws" {
		t.Errorf("mic_accept on the edge: %v, want a MicElsewhereError with ticket-a and the owner's URL", err)
	}

	if err := r.LocalInvited(b.ID(), "h_1", "ticket-b"); err != nil {
		t.Fatal(err)
	}
	if err := b.MicReject(""); err != nil {
		t.Fatal(err)
	}
	change(ListenerDeclined, b.ID())
	if err := r.LocalInvited(b.ID(), "h_1", "ticket-b2"); err != nil {
		t.Fatal(err)
	}
	r.LocalInvitationEnded(b.ID(), MicTimeout)
	if e := nextEvent(ctx, t, bs, func(e MicRejectedEvent) bool { return e.Reason == MicTimeout }); e.Participant != b.ID() {
		t.Errorf("mic_rejected %+v, want b's", e)
	}

	if r.LocalKick("nobody", "") {
		t.Error("a kick of nobody reported done")
	}
	if !r.LocalKick(b.ID(), "") {
		t.Fatal("kick of b not done")
	}
	if e := nextEvent[KickedEvent](ctx, t, bs, nil); e.Reason != "removed by a host" {
		t.Errorf("kicked %+v, want the default reason", e)
	}
	select {
	case reason := <-bs.closed:
		if reason != ReasonKicked {
			t.Errorf("b's connection closed with %s, want kicked", reason)
		}
	case <-ctx.Done():
		t.Fatal("b's connection stayed open")
	}
	change(ListenerLeft, b.ID())
	a.Leave()
	change(ListenerLeft, a.ID())
}

// TestProxyNotInRoomLimit: proxies (an edge's listeners) do not take the
// owner's places: with a limit of 3 participants, a host, a link and
// five proxies leave room for one local listener, and refuse the next.
func TestProxyNotInRoomLimit(t *testing.T) {
	s := newLoopbackSFUWith(t, Config{GracePeriod: time.Second, MaxParticipants: 3})
	defer func() { _ = s.Close() }()
	join := func(name string, role Role, hidden bool) (*Participant, error) {
		return s.Join(JoinParams{Room: "r", Name: name, Role: role, Sink: newEventSink(), Sub: SubNone, Hidden: hidden})
	}
	if _, err := join("host", RoleHost, false); err != nil {
		t.Fatal(err)
	}
	link, err := join("edge", RoleAudience, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := link.AddProxy(ProxyParams{ID: newID("p_"), Name: "x", Sink: newEventSink()}); err != nil {
			t.Fatalf("proxy %d: %v", i, err)
		}
	}
	if _, err := join("local", RoleAudience, false); err != nil {
		t.Errorf("a local listener with five proxies in the room: %v, want joined", err)
	}
	if _, err := join("one more", RoleAudience, false); !errors.Is(err, ErrRoomFull) {
		t.Errorf("a fourth local participant: %v, want room_full", err)
	}
}

// joinNoSub joins name to room "r" of s without a sub connection (a
// proxy's link, a host or listener whose events alone matter here).
func joinNoSub(t *testing.T, s *SFU, name string, role Role, hidden bool) (*Participant, *eventSink) {
	t.Helper()
	sink := newEventSink()
	p, err := s.Join(JoinParams{Room: "r", Name: name, Role: role, Sink: sink, Sub: SubNone, Hidden: hidden})
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	return p, sink
}
