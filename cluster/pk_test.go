package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// PK across two nodes: room pka owned by relay 0, room pkb by relay 1,
// linked over the cluster (cluster/pk.go).

// publishSeed publishes real Opus from c with a source of its own seed (two
// hosts' payloads differ), keeping what it sends.
func publishSeed(ctx context.Context, t *testing.T, c *client.Client, seed int64) *sentPayloads {
	t.Helper()
	sent := &sentPayloads{seen: make(map[string]struct{})}
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	src, err := opusgen.NewSource(seed, 1)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = relaytest.SendOpus(sctx, pub, src, func(payload []byte, _ *rtp.Packet) error {
			sent.mu.Lock()
			sent.seen[string(payload)] = struct{}{}
			sent.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	return sent
}

// streamLog counts, per publisher (track stream id), the packets a client
// gets whose payload that publisher sent, and those it never sent (a
// track of no known publisher: those no publisher sent).
type streamLog struct {
	mu      sync.Mutex
	ok, bad map[string]int
	wg      sync.WaitGroup
}

func (l *streamLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[id]
}

func logStreams(ctx context.Context, t *testing.T, c *client.Client, sent map[string]*sentPayloads) *streamLog {
	l := &streamLog{ok: map[string]int{}, bad: map[string]int{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case rt := <-c.Tracks():
				id := rt.Track.StreamID()
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					for {
						pkt, _, err := rt.Track.ReadRTP()
						if err != nil {
							return
						}
						if len(pkt.Payload) == 0 {
							continue
						}
						ok := sent[id] != nil && sent[id].has(pkt.Payload)
						if sent[id] == nil { // pion's track for an SSRC a renegotiation just removed has no stream id
							for _, s := range sent {
								ok = ok || s.has(pkt.Payload)
							}
						}
						l.mu.Lock()
						if ok {
							l.ok[id]++
						} else {
							l.bad[id]++
						}
						l.mu.Unlock()
					}
				}()
			case <-c.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		l.wg.Wait()
		for id, n := range l.bad {
			t.Errorf("%s got %d packets of %s with payloads it never sent", c.ID(), n, id)
		}
	})
	return l
}

// pkEvent waits for c's next event of type T that match accepts (nil: any).
func pkEvent[T any](ctx context.Context, t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			if e, ok := ev.(T); ok && (match == nil || match(e)) {
				return e
			}
		case <-c.Done():
			t.Fatalf("%s: connection ended while waiting for an event", c.ID())
		case <-ctx.Done():
			var zero T
			t.Fatalf("%s: timed out waiting for %T", c.ID(), zero)
		}
	}
}

// hearsMore waits until l has n more exact packets of id.
func hearsMore(ctx context.Context, t *testing.T, l *streamLog, id string, n int, what string) {
	t.Helper()
	start := l.count(id)
	eventually(ctx, t, what, func() bool { return l.count(id) >= start+n })
}

// silentWhile checks that quiet gets no packet of id while clock gets 30
// of clockID, after settle there for what was on the way.
func silentWhileClock(ctx context.Context, t *testing.T, quiet *streamLog, id string, clock *streamLog, clockID string, settle int, what string) {
	t.Helper()
	hearsMore(ctx, t, clock, clockID, settle, what+": settle")
	before := quiet.count(id)
	hearsMore(ctx, t, clock, clockID, 30, what+": clock")
	if got := quiet.count(id) - before; got != 0 {
		t.Errorf("%s: %d packets of %s while the clock listener got 30, want none", what, got, id)
	}
}

// pkRooms: room pka on relay 0 (host + audience), room pkb on relay 1
// (host + audience), each host publishing its own Opus; everyone's
// packets logged per publisher.
type pkRooms struct {
	cl                       *cluster
	hostA, audA, hostB, audB *client.Client
	logs                     map[*client.Client]*streamLog
	sent                     map[string]*sentPayloads // by publisher id
}

func startPKRooms(t *testing.T) (*pkRooms, context.Context) {
	cl, ctx := startCluster(t, nil)
	p := &pkRooms{cl: cl, logs: map[*client.Client]*streamLog{}}
	p.hostA = dial(ctx, t, cl.relays[0].URL, "pka", "HostA", protocol.RoleHost)
	p.audA = dial(ctx, t, cl.relays[0].URL, "pka", "AudA", protocol.RoleAudience)
	p.hostB = dial(ctx, t, cl.relays[1].URL, "pkb", "HostB", protocol.RoleHost)
	p.audB = dial(ctx, t, cl.relays[1].URL, "pkb", "AudB", protocol.RoleAudience)
	p.sent = map[string]*sentPayloads{
		p.hostA.ID(): publishSeed(ctx, t, p.hostA, 1),
		p.hostB.ID(): publishSeed(ctx, t, p.hostB, 2),
	}
	for _, c := range []*client.Client{p.hostA, p.audA, p.hostB, p.audB} {
		p.logs[c] = logStreams(ctx, t, c, p.sent)
	}
	return p, ctx
}

// links waits until relays 0 and 1 each have n PK links and n owner
// links (the other's PK link to its room), and relay 2 none: one link
// per room and direction.
func (p *pkRooms) links(ctx context.Context, t *testing.T, n float64) {
	t.Helper()
	for i, r := range p.cl.relays {
		want := n
		if i == 2 {
			want = 0
		}
		eventually(ctx, t, fmt.Sprintf("relay %d to have %v PK and owner links", i, want), func() bool {
			return r.Value(t, "relay_cluster_links", "side", "pk") == want && r.Value(t, "relay_cluster_links", "side", "owner") == want
		})
	}
}

// link: hostA invites pkb, hostB accepts; both hosts get pk_started.
func (p *pkRooms) link(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := p.hostA.PKInvite(ctx, "pkb"); err != nil {
		t.Fatalf("pk_invite across nodes: %v", err)
	}
	inv := pkEvent(ctx, t, p.hostB, func(e *protocol.PKInvited) bool { return e.Room == "pka" })
	if inv.By.ID != p.hostA.ID() {
		t.Errorf("pk_invited %+v, want by %s", inv, p.hostA.ID())
	}
	if err := p.hostB.PKAccept(ctx, "pka"); err != nil {
		t.Fatalf("pk_accept across nodes: %v", err)
	}
	pkEvent(ctx, t, p.hostA, func(e *protocol.PKStarted) bool { return e.Room == "pkb" })
	pkEvent(ctx, t, p.hostB, func(e *protocol.PKStarted) bool { return e.Room == "pka" })
}

// Two rooms on two nodes link: each host hears the other, each audience
// both rooms, byte for byte; the other room's host shows as remote with
// its room; a remote mute silences one side only; pk_end stops the
// cross-forwarding (by packets). Linked again, relay 1 dying (its NATS
// connection gone, then its sessions) ends the link on relay 0 with
// pk_ended link_lost.
func TestPKAcrossNodes(t *testing.T) {
	p, ctx := startPKRooms(t)
	a, b := p.hostA.ID(), p.hostB.ID()
	hearsMore(ctx, t, p.logs[p.audA], a, 20, "pka's audience hears its host")
	p.link(ctx, t)
	pj := pkEvent(ctx, t, p.audA, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == b })
	if want := (protocol.Participant{ID: b, Name: "HostB", Role: protocol.RoleRemote, Room: "pkb"}); pj.Participant != want {
		t.Errorf("participant_joined in pka %+v, want %+v", pj.Participant, want)
	}
	for _, row := range []struct {
		c    *client.Client
		from string
		what string
	}{
		{p.hostA, b, "pka's host hears pkb's host"}, {p.hostB, a, "pkb's host hears pka's host"},
		{p.audA, a, "pka's audience hears pka's host"}, {p.audA, b, "pka's audience hears pkb's host"},
		{p.audB, a, "pkb's audience hears pka's host"}, {p.audB, b, "pkb's audience hears pkb's host"},
	} {
		hearsMore(ctx, t, p.logs[row.c], row.from, 50, row.what)
	}
	if n := p.logs[p.hostA].count(a) + p.logs[p.hostB].count(b); n != 0 {
		t.Errorf("a host got %d packets of its own track", n)
	}
	p.links(ctx, t, 1)

	// pkb's host mutes pka's host in pkb: silent there, heard in pka.
	if err := p.hostB.Command(ctx, map[string]any{"type": "mute", "participant": a, "muted": true}); err != nil {
		t.Fatalf("mute the remote host: %v", err)
	}
	silentWhileClock(ctx, t, p.logs[p.audB], a, p.logs[p.audA], a, 10, "pka's host muted in pkb")
	hearsMore(ctx, t, p.logs[p.audA], a, 20, "pka still hears its host")
	hearsMore(ctx, t, p.logs[p.audA], b, 20, "pka still hears pkb's host")
	if err := p.hostB.Command(ctx, map[string]any{"type": "mute", "participant": a, "muted": false}); err != nil {
		t.Fatal(err)
	}
	hearsMore(ctx, t, p.logs[p.audB], a, 20, "pkb hears pka's host again")

	// pk_end from pka: no more cross-forwarding either way.
	if err := p.hostA.PKEnd(ctx, "pkb"); err != nil {
		t.Fatalf("pk_end: %v", err)
	}
	for c, room := range map[*client.Client]string{p.audA: "pkb", p.audB: "pka", p.hostB: "pka"} {
		e := pkEvent(ctx, t, c, func(e *protocol.PKEnded) bool { return e.Room == room })
		if e.Reason != protocol.PKReasonEnded {
			t.Errorf("pk_ended %+v, want reason ended", e)
		}
	}
	pl := pkEvent(ctx, t, p.audB, func(e *protocol.ParticipantLeft) bool { return e.Participant == a })
	if pl.Reason != protocol.ReasonPKEnded {
		t.Errorf("participant_left %+v, want reason pk_ended", pl)
	}
	silentWhileClock(ctx, t, p.logs[p.audB], a, p.logs[p.audA], a, 3, "after pk_end, pka's host in pkb")
	silentWhileClock(ctx, t, p.logs[p.audA], b, p.logs[p.audB], b, 0, "after pk_end, pkb's host in pka")
	p.links(ctx, t, 0)

	// Linked again (the previous link's remote publishers are gone);
	// then relay 1 closes.
	p.link(ctx, t)
	hearsMore(ctx, t, p.logs[p.audA], b, 20, "pka hears pkb's host once linked again")
	hearsMore(ctx, t, p.logs[p.audB], a, 20, "pkb hears pka's host once linked again")
	p.cl.relays[1].Cluster().Conn().Close() // relay 1 dies: it tells nobody
	p.cl.relays[1].Stop()
	e := pkEvent(ctx, t, p.audA, func(e *protocol.PKEnded) bool { return e.Room == "pkb" })
	if e.Reason != protocol.PKReasonLinkLost {
		t.Errorf("pk_ended %+v after relay 1 closed, want reason link_lost", e)
	}
	pkEvent(ctx, t, p.audA, func(e *protocol.ParticipantLeft) bool { return e.Participant == b })
	hearsMore(ctx, t, p.logs[p.audA], a, 20, "pka still hears its own host")
}

// Refusals across nodes keep their one-node codes: an unknown room
// anywhere in the cluster is not_found, a guest's accept forbidden, a
// second invitation of a room with one pending conflict; a reject reaches
// the inviting host as pk_rejected rejected.
func TestPKAcrossNodesErrors(t *testing.T) {
	p, ctx := startPKRooms(t)
	guestB := dial(ctx, t, p.cl.relays[1].URL, "pkb", "GuestB", protocol.RoleGuest)
	hostC := dial(ctx, t, p.cl.relays[2].URL, "pkc", "HostC", protocol.RoleHost)
	code := func(err error) string {
		if se := serverError(err); se != nil {
			return se.Code
		}
		return fmt.Sprint(err)
	}
	if got := code(p.hostA.PKInvite(ctx, "nowhere")); got != protocol.CodeNotFound {
		t.Errorf("invite of a room no relay has: %q, want not_found", got)
	}
	if err := p.hostA.PKInvite(ctx, "pkb"); err != nil {
		t.Fatal(err)
	}
	pkEvent(ctx, t, p.hostB, func(e *protocol.PKInvited) bool { return e.Room == "pka" })
	if got := code(guestB.PKAccept(ctx, "pka")); got != protocol.CodeForbidden {
		t.Errorf("a guest accepts: %q, want forbidden", got)
	}
	if got := code(hostC.PKInvite(ctx, "pkb")); got != protocol.CodeConflict {
		t.Errorf("a second invitation of pkb (from relay 2): %q, want conflict", got)
	}
	if got := code(hostC.PKInvite(ctx, "pka")); got != protocol.CodeConflict {
		t.Errorf("an invitation of pka, which has one out: %q, want conflict", got)
	}
	if err := p.hostB.PKReject(ctx, "pka"); err != nil {
		t.Fatal(err)
	}
	e := pkEvent(ctx, t, p.hostA, func(e *protocol.PKRejected) bool { return e.Room == "pkb" })
	if e.Reason != protocol.PKReasonRejected {
		t.Errorf("pk_rejected %+v, want reason rejected", e)
	}
	// Both rooms are free again: pkc may invite pkb.
	if err := hostC.PKInvite(ctx, "pkb"); err != nil {
		t.Errorf("invite after the reject: %v", err)
	}
	pkEvent(ctx, t, p.hostB, func(e *protocol.PKInvited) bool { return e.Room == "pkc" })
}

// A linked room's last host leaving ends the link across nodes as on one
// node: pk_ended no_host in both rooms, the remote publishers leave with
// reason pk_ended, and both relays close their links. An invitation whose
// inviting room empties is pk_rejected no_host at the invited host.
func TestPKAcrossNodesHostLeaves(t *testing.T) {
	p, ctx := startPKRooms(t)
	p.link(ctx, t)
	hearsMore(ctx, t, p.logs[p.audB], p.hostA.ID(), 20, "pkb hears pka's host")
	p.links(ctx, t, 1)
	if err := p.hostB.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for c, room := range map[*client.Client]string{p.audA: "pkb", p.hostA: "pkb", p.audB: "pka"} {
		e := pkEvent(ctx, t, c, func(e *protocol.PKEnded) bool { return e.Room == room })
		if e.Reason != protocol.PKReasonNoHost {
			t.Errorf("pk_ended %+v, want reason no_host", e)
		}
	}
	pl := pkEvent(ctx, t, p.audA, func(e *protocol.ParticipantLeft) bool { return e.Participant == p.hostB.ID() })
	if pl.Reason != protocol.ReasonPKEnded {
		t.Errorf("participant_left %+v, want reason pk_ended", pl)
	}
	p.links(ctx, t, 0)

	hostC := dial(ctx, t, p.cl.relays[2].URL, "pkc", "HostC", protocol.RoleHost)
	hostB2 := dial(ctx, t, p.cl.relays[1].URL, "pkb", "HostB2", protocol.RoleHost)
	if err := hostC.PKInvite(ctx, "pkb"); err != nil {
		t.Fatal(err)
	}
	pkEvent(ctx, t, hostB2, func(e *protocol.PKInvited) bool { return e.Room == "pkc" })
	if err := hostC.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	e := pkEvent(ctx, t, hostB2, func(e *protocol.PKRejected) bool { return e.Room == "pkc" })
	if e.Reason != protocol.PKReasonNoHost {
		t.Errorf("pk_rejected %+v, want reason no_host", e)
	}
}

// An invitation across nodes that nobody answers expires as on one node:
// pk_rejected timeout to both hosts (each relay runs the mic timeout for
// its own room), and both rooms are free again.
func TestPKAcrossNodesTimeout(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	srv := natstest.Start(t)
	var relays []*relaytest.Relay
	for i := range 2 {
		r := relaytest.Start(t, relaytest.Options{NATS: srv.URL(), NodeID: string(rune('a' + i)),
			ClusterTTL: ttl, ClusterOpTimeout: opTimeout, MicTimeout: 500 * time.Millisecond})
		waitConnected(ctx, t, r)
		relays = append(relays, r)
	}
	hostA := dial(ctx, t, relays[0].URL, "pka", "HostA", protocol.RoleHost)
	hostB := dial(ctx, t, relays[1].URL, "pkb", "HostB", protocol.RoleHost)
	if err := hostA.PKInvite(ctx, "pkb"); err != nil {
		t.Fatal(err)
	}
	pkEvent(ctx, t, hostB, func(e *protocol.PKInvited) bool { return e.Room == "pka" })
	for c, room := range map[*client.Client]string{hostA: "pkb", hostB: "pka"} {
		e := pkEvent(ctx, t, c, func(e *protocol.PKRejected) bool { return e.Room == room })
		if e.Reason != protocol.PKReasonTimeout {
			t.Errorf("pk_rejected %+v, want reason timeout", e)
		}
	}
	if err := hostB.PKAccept(ctx, "pka"); serverError(err) == nil || serverError(err).Code != protocol.CodeNotFound {
		t.Errorf("accept after the timeout: %v, want not_found", err)
	}
	if err := hostB.PKInvite(ctx, "pka"); err != nil {
		t.Errorf("the rooms are free again, yet pkb's invitation of pka: %v", err)
	}
	pkEvent(ctx, t, hostA, func(e *protocol.PKInvited) bool { return e.Room == "pkb" })
}

// A relay that serves a room as an edge (a listener of pkb on relay 0)
// still links with the room's owner: pk_invite finds pkb's hosts on
// relay 1, not the edge room; and the edge listener hears both rooms (the
// remote publishers reach it over the edge link like pkb's own).
func TestPKAcrossNodesEdgeRoom(t *testing.T) {
	p, ctx := startPKRooms(t)
	edgeL := dial(ctx, t, p.cl.relays[0].URL, "pkb", "EdgeB", protocol.RoleAudience)
	if edgeL.URL() != p.cl.relays[0].URL {
		t.Fatalf("pkb's listener through relay 0 was sent to %s; an edge serves it", edgeL.URL())
	}
	log := logStreams(ctx, t, edgeL, p.sent)
	hearsMore(ctx, t, log, p.hostB.ID(), 20, "the edge listener hears pkb's host")
	p.link(ctx, t)
	hearsMore(ctx, t, log, p.hostA.ID(), 50, "the edge listener of pkb hears pka's host")
	hearsMore(ctx, t, p.logs[p.hostB], p.hostA.ID(), 50, "pkb's host hears pka's host")
	hearsMore(ctx, t, p.logs[p.hostA], p.hostB.ID(), 50, "pka's host hears pkb's host")
}
