package cluster_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/nats-io/nats.go"
	"github.com/pion/rtp"
)

// Proxy participants (docs/cluster-edges.md, "Edge listeners on the
// owner"): three relays on a real NATS server, the host on relay 0 (the
// owner), listeners on the edges, real pion peers and real Opus.

// joinedSeen waits until the host has been told of each of cs
// (participant_joined, role audience, its id and name), in any order.
func joinedSeen(ctx context.Context, t *testing.T, host *client.Client, cs ...*client.Client) {
	t.Helper()
	want := map[string]string{}
	for _, c := range cs {
		want[c.ID()] = c.Joined().Participant.Name
	}
	for len(want) > 0 {
		ev := relaytest.WaitEvent(ctx, t, host, func(ev *protocol.ParticipantJoined) bool { _, ok := want[ev.Participant.ID]; return ok })
		if name := want[ev.Participant.ID]; ev.Participant.Name != name || ev.Participant.Role != protocol.RoleAudience {
			t.Errorf("the host saw %+v join, want %s as audience", ev.Participant, name)
		}
		delete(want, ev.Participant.ID)
	}
}

// leftSeen waits until the host has been told that id left with reason.
func leftSeen(ctx context.Context, t *testing.T, host *client.Client, id, reason string) {
	t.Helper()
	relaytest.WaitEvent(ctx, t, host, func(ev *protocol.ParticipantLeft) bool {
		if ev.Participant == id && ev.Reason != reason {
			t.Errorf("the host saw %s leave with reason %s, want %s", id, ev.Reason, reason)
		}
		return ev.Participant == id
	})
}

// Listeners on every relay: the owner's hosts see each edge listener
// join (participant_joined, its id and name) and leave, as they see the
// owner's own; a host joining later has them in joined.participants; the
// audience count counts each listener once; an audience member on the
// owner is told of none of them (Presence).
func TestProxyListenersSeenByHosts(t *testing.T) {
	cl, ctx, host, _ := liveRoom(t)
	own := dial(ctx, t, cl.relays[0].URL, "live", "Own", protocol.RoleAudience)
	joinedSeen(ctx, t, host, own)
	e1 := dial(ctx, t, cl.relays[1].URL, "live", "Edge one", protocol.RoleAudience)
	e2 := dial(ctx, t, cl.relays[2].URL, "live", "Edge two", protocol.RoleAudience)
	if e1.URL() != cl.relays[1].URL || e2.URL() != cl.relays[2].URL {
		t.Fatalf("the listeners joined %s and %s; edges serve them", e1.URL(), e2.URL())
	}
	joinedSeen(ctx, t, host, e1, e2)

	// The count: 3, once each, on the owner and on the edges.
	relaytest.WaitEvent(ctx, t, host, func(ev *protocol.Audience) bool { return ev.Count == 3 })
	relaytest.WaitEvent(ctx, t, e1, func(ev *protocol.Audience) bool { return ev.Count == 3 })
	late := dial(ctx, t, cl.relays[0].URL, "live", "Late host", protocol.RoleHost)
	j := late.Joined()
	if j.Audience != 3 {
		t.Errorf("a late host's joined counts %d listeners, want 3", j.Audience)
	}
	names := map[string]string{}
	for _, p := range j.Participants {
		if p.Role == protocol.RoleAudience {
			names[p.ID] = p.Name
		}
	}
	for _, c := range []*client.Client{own, e1, e2} {
		if names[c.ID()] != c.Joined().Participant.Name {
			t.Errorf("a late host's joined.participants lack %s (%s): %v", c.ID(), c.Joined().Participant.Name, names)
		}
	}
	if len(names) != 3 {
		t.Errorf("a late host's joined.participants list %d audience members, want 3: %v", len(names), names)
	}

	// An edge listener leaves: participant_left (left) to the hosts.
	if err := e1.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	leftSeen(ctx, t, host, e1.ID(), "left")
	leftSeen(ctx, t, late, e1.ID(), "left")
	relaytest.WaitEvent(ctx, t, host, func(ev *protocol.Audience) bool { return ev.Count == 2 })
	relaytest.WaitEvent(ctx, t, e2, func(ev *protocol.Audience) bool { return ev.Count == 2 })

	// The owner's own audience member heard of none of them.
	for {
		select {
		case ev := <-own.Events():
			switch e := ev.(type) {
			case *protocol.ParticipantJoined:
				if e.Participant.Role == protocol.RoleAudience {
					t.Errorf("an audience member was told of listener %s", e.Participant.ID)
				}
			case *protocol.ParticipantLeft:
				if e.Participant == e1.ID() {
					t.Errorf("an audience member was told that listener %s left", e.Participant)
				}
			}
			continue
		default:
		}
		break
	}
}

// A host kicks an edge listener: the listener gets kicked with the reason
// and its connection closes with 1008, as a kick on one relay does; the
// hosts get participant_left with reason kicked; the edge's link closes
// with its last listener.
func TestProxyKick(t *testing.T) {
	cl, ctx, host, _ := liveRoom(t)
	e := dial(ctx, t, cl.relays[1].URL, "live", "Noisy", protocol.RoleAudience)
	joinedSeen(ctx, t, host, e)
	if err := host.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeKick}, Participant: e.ID(), Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	k := relaytest.WaitEvent[*protocol.Kicked](ctx, t, e, nil)
	if k.Reason != "bye" {
		t.Errorf("the edge listener was kicked with %q, want bye", k.Reason)
	}
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("the kicked edge listener's connection stayed open")
	}
	if code := e.CloseCode(); code != protocol.ClosePolicy {
		t.Errorf("the kicked edge listener's connection closed with %d, want %d as on one relay", code, protocol.ClosePolicy)
	}
	leftSeen(ctx, t, host, e.ID(), "kicked")
	eventually(ctx, t, "the edge's link to close with its last listener", func() bool {
		return cl.relays[1].Value(t, "relay_cluster_links", "side", "edge") == 0
	})
}

// A host invites an edge listener: it gets mic_invited on its edge; its
// mic_accept there moves it to the owner (redirect, then mic_accept, with
// a ticket); joined there as audience, its mic_accept with the ticket
// makes it a guest (role_changed to the host), and the host and a
// listener on the other edge hear what it publishes, byte for byte.
func TestProxyInvite(t *testing.T) {
	cl, ctx, host, hostSent := liveRoom(t)
	e := dial(ctx, t, cl.relays[1].URL, "live", "Singer", protocol.RoleAudience)
	other := dial(ctx, t, cl.relays[2].URL, "live", "Other", protocol.RoleAudience)
	joinedSeen(ctx, t, host, e, other)

	if err := host.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicInvite}, Participant: e.ID()}); err != nil {
		t.Fatal(err)
	}
	if inv := relaytest.WaitEvent[*protocol.MicInvited](ctx, t, e, nil); inv.By != host.ID() || !inv.Elsewhere {
		t.Errorf("mic_invited %+v, want by the host %s and elsewhere", inv, host.ID())
	}
	if err := e.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicAccept}}); err != nil {
		t.Fatal(err)
	}
	moved := relaytest.WaitEvent[*protocol.Redirect](ctx, t, e, nil)
	if moved.URL != cl.relays[0].URL || moved.Then != protocol.TypeMicAccept || moved.Ticket == "" || moved.Room != "live" {
		t.Fatalf("mic_accept on an edge: redirect %+v; want the owner %s, then mic_accept and a ticket", moved, cl.relays[0].URL)
	}
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("the edge kept the moved listener's connection open")
	}
	leftSeen(ctx, t, host, e.ID(), "left")

	again := dial(ctx, t, moved.URL, "live", "Singer", protocol.RoleAudience)
	// A made-up ticket is refused; the redirect's is taken.
	if err := again.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicAccept, ID: "bad"}, Ticket: "made-up"}); err != nil {
		t.Fatal(err)
	}
	if bad := relaytest.WaitEvent(ctx, t, again, func(ev *protocol.Error) bool { return ev.ID == "bad" }); bad.Code != protocol.CodeNotFound {
		t.Errorf("mic_accept with a made-up ticket: %s, want not_found", bad.Code)
	}
	if err := again.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicAccept}, Ticket: moved.Ticket}); err != nil {
		t.Fatal(err)
	}
	relaytest.WaitEvent(ctx, t, again, func(ev *protocol.RoleChanged) bool {
		return ev.Participant == again.ID() && ev.Role == protocol.RoleGuest
	})
	relaytest.WaitEvent(ctx, t, host, func(ev *protocol.RoleChanged) bool {
		return ev.Participant == again.ID() && ev.Role == protocol.RoleGuest
	})

	sent := &sentPayloads{seen: make(map[string]struct{})}
	hostHears := hearExact(ctx, t, host, sent)
	// The other listener hears the host too: its packets are the host's
	// or the guest's, nothing else.
	var otherGuest, otherBad atomic.Int64
	var wg sync.WaitGroup
	readTracks(ctx, t, other, &wg, func(pkt *rtp.Packet) {
		switch {
		case len(pkt.Payload) == 0: // padding
		case sent.has(pkt.Payload):
			otherGuest.Add(1)
		case !hostSent.has(pkt.Payload):
			otherBad.Add(1)
		}
	})
	publishInto(ctx, t, again, sent)
	hostHears.hears(ctx, t, "the host to hear the new guest", 20)
	eventually(ctx, t, "the other edge's listener to hear the new guest", func() bool { return otherGuest.Load() >= 20 })
	if bad := hostHears.bad.Load() + otherBad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads neither the guest nor the host sent", bad)
	}
}

// An edge dies (cut from NATS, then stopped: a crash): the owner's hosts
// see its listeners leave (reason timeout), and the others stay.
func TestProxyEdgeDies(t *testing.T) {
	cl, ctx, host, _ := liveRoom(t)
	gone := dial(ctx, t, cl.relays[2].URL, "live", "Doomed", protocol.RoleAudience)
	stays := dial(ctx, t, cl.relays[1].URL, "live", "Stays", protocol.RoleAudience)
	joinedSeen(ctx, t, host, gone, stays)

	edge := cl.relays[2]
	edge.Cluster().Conn().Close()
	edge.Stop()
	leftSeen(ctx, t, host, gone.ID(), "timeout")
	late := dial(ctx, t, cl.relays[0].URL, "live", "Late host", protocol.RoleHost)
	if n := late.Joined().Audience; n != 1 {
		t.Errorf("a late host's joined counts %d listeners, want the live edge's 1", n)
	}
	for _, p := range late.Joined().Participants {
		if p.ID == gone.ID() {
			t.Errorf("the dead edge's listener is still in a host's joined")
		}
	}
	found := false
	for _, p := range late.Joined().Participants {
		found = found || p.ID == stays.ID()
	}
	if !found {
		t.Errorf("the live edge's listener is missing from a host's joined")
	}
}

// Two relays gave out the same participant id: an edge reports a
// listener whose id is the host's (here an edge's listener_joined put on
// the link by hand, on the real NATS server, since real ids are random).
// The owner shows it under an id of its own: the host sees a new
// participant, never two with one id, and its leave is matched by the
// edge's id; the edge's real listener is still shown, and its kick
// reaches it. Reports without a listener or of an unknown link change
// nothing.
func TestProxyIDCollision(t *testing.T) {
	cl, ctx, host, _ := liveRoom(t)
	nc, err := nats.Connect(cl.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The edge's link id, from its first message to the owner.
	ops, err := nc.SubscribeSync("relay.link.a")
	if err != nil {
		t.Fatal(err)
	}
	e := dial(ctx, t, cl.relays[1].URL, "live", "Edge", protocol.RoleAudience)
	joinedSeen(ctx, t, host, e)
	var link string
	for link == "" {
		msg, err := ops.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatalf("no link message: %v", err)
		}
		var req struct{ Op, Link string }
		if json.Unmarshal(msg.Data, &req) == nil && req.Op == "listener_list" {
			link = req.Link
		}
	}
	_ = ops.Unsubscribe()

	put := func(op string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"op": op, "link": link, "listener": map[string]string{"id": host.ID(), "name": "Twin"}})
		if err := nc.Publish("relay.link.a", b); err != nil {
			t.Fatal(err)
		}
	}
	// Bad reports change nothing: no listener, an unknown link.
	for _, bad := range []map[string]any{
		{"op": "listener_joined", "link": link},
		{"op": "listener_joined", "link": "0000000000000000", "listener": map[string]string{"id": "p_x", "name": "Ghost"}},
	} {
		b, _ := json.Marshal(bad)
		if err := nc.Publish("relay.link.a", b); err != nil {
			t.Fatal(err)
		}
	}
	put("listener_joined")
	twin := relaytest.WaitEvent(ctx, t, host, func(ev *protocol.ParticipantJoined) bool {
		if ev.Participant.Name != "Twin" {
			t.Errorf("a bad report showed %+v", ev.Participant)
		}
		return ev.Participant.Name == "Twin"
	})
	if twin.Participant.ID == host.ID() || twin.Participant.ID == "" {
		t.Fatalf("the listener with the host's id was shown as %q; want an id of its own", twin.Participant.ID)
	}
	late := dial(ctx, t, cl.relays[0].URL, "live", "Late host", protocol.RoleHost)
	seen := map[string]int{}
	for _, p := range late.Joined().Participants {
		seen[p.ID]++
	}
	for id, k := range seen {
		if k > 1 {
			t.Errorf("%d participants with id %s in joined", k, id)
		}
	}
	if seen[twin.Participant.ID] != 1 || seen[host.ID()] != 1 || seen[e.ID()] != 1 {
		t.Errorf("joined lists %v; want the host, the edge listener and its twin once each", seen)
	}
	put("listener_left")
	leftSeen(ctx, t, host, twin.Participant.ID, "left")
	if err := host.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeKick}, Participant: e.ID()}); err != nil {
		t.Fatal(err)
	}
	leftSeen(ctx, t, host, e.ID(), "kicked")
	relaytest.WaitEvent[*protocol.Kicked](ctx, t, e, nil)
}

// NATS goes away and comes back: the edge's listeners that changed
// meanwhile (one left, one joined through the open link) are what the
// owner's hosts see afterwards.
func TestProxyNATSOutage(t *testing.T) {
	cl, ctx, host, sent := liveRoom(t)
	before := dial(ctx, t, cl.relays[1].URL, "live", "Before", protocol.RoleAudience)
	joinedSeen(ctx, t, host, before)
	// The link's negotiation crosses NATS: cut once it is set up.
	hearExact(ctx, t, before, sent).hears(ctx, t, "the edge's listener to hear the host", 20)

	cl.nats.Shutdown()
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to see NATS gone", func() bool { return r.Value(t, "relay_cluster_nats_connected") == 0 })
	}
	during := dial(ctx, t, cl.relays[1].URL, "live", "During", protocol.RoleAudience)
	if err := before.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	cl.nats.Restart()
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to reconnect", func() bool { return r.Value(t, "relay_cluster_nats_reconnects_total") >= 1 })
	}
	eventually(ctx, t, "a host joining to see the edge's listeners as they are now", func() bool {
		late, err := tryDial(ctx, cl.relays[0].URL, "live", "Late host", protocol.RoleHost)
		if err != nil {
			return false
		}
		defer func() { _ = late.Close() }()
		ids := map[string]bool{}
		for _, p := range late.Joined().Participants {
			ids[p.ID] = true
		}
		return ids[during.ID()] && !ids[before.ID()] && late.Joined().Audience == 1
	})
}

// An edge cut from NATS alone: its link's media goes on (the listener
// keeps hearing), but it does not answer the owner's ping, so the hosts
// see its listener leave (reason timeout); once it is back, it sends its
// list again and the hosts see the listener join again.
func TestProxyEdgeCutFromNATS(t *testing.T) {
	var px *natstest.Proxy
	cl, ctx := startCluster(t, func(i int, srv *natstest.Server) string {
		if i == 1 {
			px = natstest.NewProxy(t, srv.Addr())
			return px.URL()
		}
		return srv.URL()
	})
	host := dial(ctx, t, cl.relays[0].URL, "live", "Host", protocol.RoleHost)
	sent := publishKept(ctx, t, host)
	e := dial(ctx, t, cl.relays[1].URL, "live", "Cut off", protocol.RoleAudience)
	if e.URL() != cl.relays[1].URL {
		t.Fatalf("the listener joined %s; relay 1 serves it as an edge", e.URL())
	}
	k := hearExact(ctx, t, e, sent)
	joinedSeen(ctx, t, host, e)
	// Cut once the link is set up: its negotiation crosses NATS (a link
	// that cannot answer an offer fails, and its listeners move).
	k.hears(ctx, t, "the edge's listener to hear the host", 20)

	px.Cut()
	leftSeen(ctx, t, host, e.ID(), "timeout")
	k.hears(ctx, t, "the cut-off edge's listener to go on hearing", k.ok.Load()+20)
	px.Heal()
	joinedSeen(ctx, t, host, e)
	if bad := k.bad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads the host never sent", bad)
	}
}
