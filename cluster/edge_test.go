package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// sentPayloads keeps every payload a publisher sent, to check that
// listeners get them byte for byte.
type sentPayloads struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (s *sentPayloads) has(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[string(p)]
	return ok
}

// publishKept publishes real Opus from c until the test ends, keeping what
// it sends.
func publishKept(ctx context.Context, t testing.TB, c *client.Client) *sentPayloads {
	t.Helper()
	sent := &sentPayloads{seen: make(map[string]struct{})}
	publishInto(ctx, t, c, sent)
	return sent
}

// publishInto is publishKept keeping what c sends in sent.
func publishInto(ctx context.Context, t testing.TB, c *client.Client, sent *sentPayloads) {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	src, err := opusgen.NewSource(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		level := pub.AudioLevelExtensionID()
		_ = relaytest.SendOpus(sctx, pub, src, func(payload []byte, pkt *rtp.Packet) error {
			sent.mu.Lock()
			sent.seen[string(payload)] = struct{}{}
			sent.mu.Unlock()
			if level == 0 {
				return nil
			}
			return pkt.Header.SetExtension(level, []byte{src.LastLevel()}) // RFC 6464, for speakers
		})
	}()
	t.Cleanup(func() { stop(); <-done })
}

// liveRoom starts the cluster and a host on relay 0 who publishes in
// room "live", keeping what it sends.
func liveRoom(t *testing.T) (*cluster, context.Context, *client.Client, *sentPayloads) {
	t.Helper()
	cl, ctx := startCluster(t, nil)
	host := dial(ctx, t, cl.relays[0].URL, "live", "Host", protocol.RoleHost)
	return cl, ctx, host, publishKept(ctx, t, host)
}

// hears waits until k has counted n exact packets in all.
func (k *exactCounter) hears(ctx context.Context, t *testing.T, what string, n int64) {
	t.Helper()
	eventually(ctx, t, what, func() bool { return k.ok.Load() >= n })
}

// exactCounter counts the packets a listener gets whose payload is one the
// publisher sent, and those with a payload it never sent.
type exactCounter struct {
	ok, bad atomic.Int64
	wg      sync.WaitGroup
}

func hearExact(ctx context.Context, t *testing.T, c *client.Client, sent *sentPayloads) *exactCounter {
	k := &exactCounter{}
	readTracks(ctx, t, c, &k.wg, func(pkt *rtp.Packet) {
		switch {
		case len(pkt.Payload) == 0: // padding
		case sent.has(pkt.Payload):
			k.ok.Add(1)
		default:
			k.bad.Add(1)
		}
	})
	return k
}

// One room, its host on relay 0, two listeners on each relay: the
// listeners on relays 1 and 2 are served there (edges: no redirect), each
// edge opens one link however many listeners it has, every listener gets
// the host's payloads byte for byte, and the audience count is the
// room's total. When an edge's last listener leaves, its link closes.
func TestEdgeListenersOnEveryRelay(t *testing.T) {
	cl, ctx, host, sent := liveRoom(t)
	type listener struct {
		c *client.Client
		k *exactCounter
	}
	var ls [3][]listener
	for i, r := range cl.relays {
		for j := range 2 {
			c := dial(ctx, t, r.URL, "live", fmt.Sprintf("L%d%d", i, j), protocol.RoleAudience)
			if c.URL() != r.URL {
				t.Fatalf("a listener through relay %d was sent to %s; an edge serves it", i, c.URL())
			}
			ls[i] = append(ls[i], listener{c, hearExact(ctx, t, c, sent)})
		}
	}
	for i := range ls {
		for j, l := range ls[i] {
			eventually(ctx, t, fmt.Sprintf("listener %d%d to hear 50 of the host's packets", i, j), func() bool { return l.k.ok.Load() >= 50 })
			if bad := l.k.bad.Load(); bad != 0 {
				t.Errorf("listener %d%d got %d packets whose payload the host never sent", i, j, bad)
			}
		}
	}
	for i, r := range cl.relays[1:] {
		if v := r.Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
			t.Errorf("relay %d has %v edge links open, want 1 for its 2 listeners", i+1, v)
		}
		if v := r.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 2 {
			t.Errorf("relay %d routed %v joins as edge, want 2", i+1, v)
		}
	}
	if v := cl.relays[0].Value(t, "relay_cluster_links", "side", "owner"); v != 2 {
		t.Errorf("the owner has %v links open, want 2 (one per edge)", v)
	}
	// The edge's listeners hear what its one link carried: each of them
	// no more than the link's count.
	heard := max(ls[1][0].k.ok.Load(), ls[1][1].k.ok.Load())
	if in := cl.relays[1].Value(t, "relay_cluster_link_packets_in_total"); in < float64(heard) {
		t.Errorf("relay 1's link carried %v packets, fewer than its listener heard (%d)", in, heard)
	}
	// The owner counts what it sent over its links: at least what both
	// edges' links brought in (read first), each packet once per link.
	in := cl.relays[1].Value(t, "relay_cluster_link_packets_in_total") + cl.relays[2].Value(t, "relay_cluster_link_packets_in_total")
	if out := cl.relays[0].Value(t, "relay_cluster_link_packets_out_total"); out < in || in == 0 {
		t.Errorf("the owner sent %v packets over its links, the edges received %v", out, in)
	}
	// Everyone sees the room's total audience: 6.
	for i := range ls {
		c := ls[i][0].c
		relaytest.WaitEvent(ctx, t, c, func(ev *protocol.Audience) bool { return ev.Count == 6 })
	}

	// Edge listeners see the owner's speakers: the host.
	for i := 1; i < 3; i++ {
		relaytest.WaitEvent(ctx, t, ls[i][1].c, func(ev *protocol.Speakers) bool {
			return len(ev.Speakers) > 0 && ev.Speakers[0].Participant == host.Joined().Participant.ID
		})
	}

	// An edge listener's mic request moves it to the owner, where the
	// hosts are: a redirect message naming the owner and mic_request to
	// send again there, and the edge closes the connection. Joined at the
	// owner, its request reaches the host.
	mover := ls[1][0].c
	if err := mover.Send(&protocol.MicRequest{Header: protocol.Header{Type: protocol.TypeMicRequest}}); err != nil {
		t.Fatal(err)
	}
	moved := relaytest.WaitEvent(ctx, t, mover, func(ev *protocol.Redirect) bool { return true })
	if moved.URL != cl.relays[0].URL || moved.Then != protocol.TypeMicRequest || moved.Room != "live" {
		t.Errorf("mic_request on an edge: redirect %+v; want the owner %s and then mic_request", moved, cl.relays[0].URL)
	}
	select {
	case <-mover.Done():
	case <-ctx.Done():
		t.Fatal("the edge kept the moved listener's connection open")
	}
	again := dial(ctx, t, moved.URL, "live", "L10", protocol.RoleAudience)
	if err := again.Send(&protocol.MicRequest{Header: protocol.Header{Type: protocol.TypeMicRequest}}); err != nil {
		t.Fatal(err)
	}
	relaytest.WaitEvent(ctx, t, host, func(ev *protocol.MicRequested) bool { return ev.Participant == again.Joined().Participant.ID })

	// Relay 2's listeners leave: its link closes, the owner's follows,
	// and the count drops to 4 everywhere.
	for _, l := range ls[2] {
		if err := l.c.Leave(ctx); err != nil {
			t.Fatalf("leave: %v", err)
		}
	}
	eventually(ctx, t, "relay 2's link to close", func() bool {
		return cl.relays[2].Value(t, "relay_cluster_links", "side", "edge") == 0 &&
			cl.relays[0].Value(t, "relay_cluster_links", "side", "owner") == 1
	})
	// The owner's packets out keep what the closed link was sent.
	in = cl.relays[1].Value(t, "relay_cluster_link_packets_in_total") + cl.relays[2].Value(t, "relay_cluster_link_packets_in_total")
	if out := cl.relays[0].Value(t, "relay_cluster_link_packets_out_total"); out < in {
		t.Errorf("after relay 2's link closed the owner counts %v packets sent over links, the edges received %v", out, in)
	}
	relaytest.WaitEvent(ctx, t, ls[1][1].c, func(ev *protocol.Audience) bool { return ev.Count == 4 })
	relaytest.WaitEvent(ctx, t, ls[0][0].c, func(ev *protocol.Audience) bool { return ev.Count == 4 })
	from := ls[1][1].k.ok.Load()
	eventually(ctx, t, "relay 1's listener to go on hearing", func() bool { return ls[1][1].k.ok.Load() >= from+20 })
}

// An edge dies (cut from NATS, then stopped: a crash): its listener's
// connection ends; dialing again with its resume token and the cluster's
// other relays, the client finds its relay unreachable, joins afresh
// through another one (the token is that relay's no more) and hears
// again there.
func TestEdgeDies(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	edge := cl.relays[2]
	l := dial(ctx, t, edge.URL, "live", "L", protocol.RoleAudience)
	k := hearExact(ctx, t, l, sent)
	k.hears(ctx, t, "the listener to hear the host through relay 2", 20)

	edge.Cluster().Conn().Close()
	edge.Stop()
	select {
	case <-l.Done():
	case <-ctx.Done():
		t.Fatal("the dead relay's listener stayed connected")
	}
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	again, err := client.Dial(jctx, client.Config{URL: edge.URL, Relays: []string{cl.relays[1].URL}, Room: "live", Name: "L",
		Role: protocol.RoleAudience, Resume: l.Joined().Resume, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		t.Fatalf("dial again with the other relays: %v", err)
	}
	t.Cleanup(func() { _ = again.Close() })
	if again.URL() != cl.relays[1].URL || again.Joined().Resumed {
		t.Fatalf("joined %s (resumed %v), want a fresh join at relay 1 %s", again.URL(), again.Joined().Resumed, cl.relays[1].URL)
	}
	k2 := hearExact(ctx, t, again, sent)
	k2.hears(ctx, t, "the listener to hear again through relay 1", 20)
	if bad := k.bad.Load() + k2.bad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads the host never sent", bad)
	}
	if v := cl.relays[1].Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
		t.Errorf("relay 1 has %v edge links, want 1", v)
	}
}

// NATS goes away: the links already open carry on (their media does not
// cross NATS), so edge listeners keep hearing; when it is back, a new
// listener on a fresh edge gets a link again.
func TestEdgeNATSOutage(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	l := dial(ctx, t, cl.relays[1].URL, "live", "L", protocol.RoleAudience)
	k := hearExact(ctx, t, l, sent)
	k.hears(ctx, t, "the edge listener to hear the host", 20)

	cl.nats.Shutdown()
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to see NATS gone", func() bool { return r.Value(t, "relay_cluster_nats_connected") == 0 })
	}
	from := k.ok.Load()
	eventually(ctx, t, "the edge listener to go on hearing without NATS", func() bool { return k.ok.Load() >= from+100 })
	// A listener joining the same edge needs no directory: it is served
	// by the open link.
	late := dial(ctx, t, cl.relays[1].URL, "live", "Late", protocol.RoleAudience)
	hearExact(ctx, t, late, sent).hears(ctx, t, "a listener joined during the outage to hear through the open link", 20)
	if v := cl.relays[1].Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
		t.Errorf("relay 1 has %v edge links during the outage, want its 1", v)
	}

	cl.nats.Restart()
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to reconnect", func() bool { return r.Value(t, "relay_cluster_nats_reconnects_total") >= 1 })
	}
	l2 := dialEventually(ctx, t, cl.relays[2].URL, "live", "L2", protocol.RoleAudience)
	if l2.URL() != cl.relays[2].URL {
		t.Fatalf("a listener through relay 2 after the outage joined %s", l2.URL())
	}
	k2 := hearExact(ctx, t, l2, sent)
	k2.hears(ctx, t, "a listener on a new edge after the outage to hear", 20)
	if bad := k.bad.Load() + k2.bad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads the host never sent", bad)
	}
}

// A drain of an edge moves its listeners to another relay (message
// redirect): they join there and hear again, and the drained relay's
// link closes.
func TestDrainEdge(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	edge := cl.relays[2]
	l := dial(ctx, t, edge.URL, "live", "L", protocol.RoleAudience)
	k := hearExact(ctx, t, l, sent)
	k.hears(ctx, t, "the listener to hear the host through relay 2", 20)

	drained := make(chan struct{})
	go func() {
		defer close(drained)
		edge.Drain(ctx, 5*ttl)
	}()
	t.Cleanup(func() { <-drained })
	rd := relaytest.WaitEvent[*protocol.Redirect](ctx, t, l, nil)
	if rd.URL != cl.relays[0].URL && rd.URL != cl.relays[1].URL {
		t.Fatalf("redirect to %s, want another live relay", rd.URL)
	}
	<-drained
	eventually(ctx, t, "the drained relay's link to close", func() bool { return edge.Value(t, "relay_cluster_links", "side", "edge") == 0 })
	moved := dial(ctx, t, rd.URL, "live", "L", protocol.RoleAudience)
	k2 := hearExact(ctx, t, moved, sent)
	k2.hears(ctx, t, "the moved listener to hear again", 20)
	if bad := k.bad.Load() + k2.bad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads the host never sent", bad)
	}
}

// The owner is cut off from NATS while its room has listeners on two
// edges, and a host joins again through edge 1: that relay finds the
// owner gone (no answer to its ping) and takes the room over, and its
// edge room becomes the room itself, so the listener there keeps its
// session and hears the new host without reconnecting. Then the old owner
// stops: edge 2's link ends (the owner's DTLS close, or ICE timing out),
// and its listener is told to join again at its own relay (redirect),
// which now routes it to relay 1 as an edge.
func TestOwnerDiesWithEdges(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	a := cl.relays[0]
	host := dial(ctx, t, a.URL, "live", "Host", protocol.RoleHost)
	sent := publishKept(ctx, t, host)
	l1 := dial(ctx, t, cl.relays[1].URL, "live", "L1", protocol.RoleAudience)
	l2 := dial(ctx, t, cl.relays[2].URL, "live", "L2", protocol.RoleAudience)
	k1 := hearExact(ctx, t, l1, sent)
	k1.hears(ctx, t, "listener 1 to hear the host", 20)

	a.Cluster().Conn().Close() // gone, as the cluster sees it
	host2 := dialEventually(ctx, t, cl.relays[1].URL, "live", "Host2", protocol.RoleHost)
	if host2.URL() != cl.relays[1].URL {
		t.Fatalf("the host joined again at %s, want relay 1 (which takes the room over)", host2.URL())
	}
	relaytest.WaitEvent(ctx, t, l1, func(ev *protocol.ParticipantLeft) bool { return ev.Participant == host.Joined().Participant.ID })
	// Both hosts' payloads count as sent (a listener's reader takes every
	// track it gets); l1 keeps its connection and goes on hearing.
	from := k1.ok.Load()
	publishInto(ctx, t, host2, sent)
	eventually(ctx, t, "listener 1 to hear the new host without reconnecting", func() bool { return k1.ok.Load() >= from+50 })
	if v := cl.relays[1].Value(t, "relay_cluster_links", "side", "edge"); v != 0 {
		t.Errorf("relay 1 (the new owner) still has %v edge links", v)
	}

	a.Stop()
	rd := relaytest.WaitEvent[*protocol.Redirect](ctx, t, l2, nil)
	if rd.URL != cl.relays[2].URL {
		t.Fatalf("edge 2's listener was sent to %s, want its own relay %s (which routes afresh)", rd.URL, cl.relays[2].URL)
	}
	l2b := dialEventually(ctx, t, rd.URL, "live", "L2", protocol.RoleAudience)
	k2 := hearExact(ctx, t, l2b, sent)
	k2.hears(ctx, t, "listener 2 to hear the new host through relay 2 again", 20)
	if v := cl.relays[1].Value(t, "relay_cluster_links", "side", "owner"); v != 1 {
		t.Errorf("relay 1 (the new owner) has %v links, want 1 (relay 2's)", v)
	}
	if bad := k1.bad.Load() + k2.bad.Load(); bad != 0 {
		t.Errorf("%d packets with payloads no host sent", bad)
	}
}

// An edge's link closes when its last listener leaves and opens again
// with the next one, over and over.
func TestEdgeLinkReopens(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	edge := cl.relays[1]
	for i := range 3 {
		l := dial(ctx, t, edge.URL, "live", "L", protocol.RoleAudience)
		k := hearExact(ctx, t, l, sent)
		k.hears(ctx, t, fmt.Sprintf("listener %d to hear the host", i), 20)
		if err := l.Leave(ctx); err != nil {
			t.Fatalf("leave: %v", err)
		}
		eventually(ctx, t, "the link to close", func() bool {
			return edge.Value(t, "relay_cluster_links", "side", "edge") == 0 &&
				cl.relays[0].Value(t, "relay_cluster_links", "side", "owner") == 0
		})
	}
}

// Listeners join an edge all at once, before and while its link opens:
// every one of them hears the host and the guest.
func TestEdgeConcurrentJoins(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	guest := dial(ctx, t, cl.relays[0].URL, "live", "Guest", protocol.RoleGuest)
	publishInto(ctx, t, guest, sent)
	const n = 6
	var wg sync.WaitGroup
	cs := make([]*client.Client, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs[i], errs[i] = tryDial(ctx, cl.relays[1+i%2].URL, "live", fmt.Sprintf("L%d", i), protocol.RoleAudience)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
		t.Cleanup(func() { _ = cs[i].Close() })
	}
	for i, c := range cs {
		tracks := 0
		for tracks < 2 {
			select {
			case rt := <-c.Tracks():
				tracks++
				go func() {
					for {
						if _, _, err := rt.Track.ReadRTP(); err != nil {
							return
						}
					}
				}()
			case <-ctx.Done():
				t.Fatalf("listener %d got %d of the 2 tracks", i, tracks)
			}
		}
	}
}

// Two rooms with the same owner and the same edge: two links between the
// same two relays, each carrying its own room's tracks only. (Links that
// shared the edge's media port mixed rooms up; this small case did not
// show it, TestEdgeRoomsApart does.)
func TestEdgeTwoRoomsSameRelays(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	var ks []*exactCounter
	for _, room := range []string{"r0", "r1"} {
		host := dial(ctx, t, cl.relays[0].URL, room, "Host", protocol.RoleHost)
		sent := publishKept(ctx, t, host)
		l := dial(ctx, t, cl.relays[1].URL, room, "L", protocol.RoleAudience)
		ks = append(ks, hearExact(ctx, t, l, sent))
	}
	eventually(ctx, t, "relay 1 to open both links", func() bool { return cl.relays[1].Value(t, "relay_cluster_links", "side", "edge") == 2 })
	for i, k := range ks {
		from := k.ok.Load() // both links are up from here on
		eventually(ctx, t, fmt.Sprintf("the listener of r%d to hear its host", i), func() bool { return k.ok.Load() >= from+50 })
		if bad := k.bad.Load(); bad != 0 {
			t.Errorf("the listener of r%d got %d packets its host never sent (the other room's?)", i, bad)
		}
	}
}

// A WHEP player of a room owned elsewhere is served on its relay as an
// edge listener: it hears the host's payloads byte for byte.
func TestWHEPOnEdge(t *testing.T) {
	cl, ctx, _, sent := liveRoom(t)
	player := whiptest.Play(ctx, t, cl.relays[2].HTTPURL, "live", whiptest.Options{})
	var tr *webrtc.TrackRemote
	select {
	case tr = <-player.Tracks:
	case <-ctx.Done():
		t.Fatal("the WHEP player got no track")
	}
	got := 0
	for _, pkt := range whiptest.ReadRTP(ctx, t, tr, 50) {
		if len(pkt.Payload) > 0 && !sent.has(pkt.Payload) {
			t.Fatalf("the WHEP player got a payload the host never sent")
		}
		got++
	}
	if v := cl.relays[2].Value(t, "relay_cluster_links", "side", "edge"); v != 1 || got < 50 {
		t.Fatalf("relay 2: %v edge links (want 1), %d packets read", v, got)
	}
}

// Two rooms, both owned by relay 0, each with a host and a guest, and
// listeners of both joining all three relays at once: every listener gets
// exactly its own room's two publishers (a link that delivered another
// room's tracks, as links sharing the edge's media port did, fails it).
func TestEdgeRoomsApart(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	pubs := map[string]map[string]bool{}
	for _, room := range []string{"r0", "r1"} {
		pubs[room] = map[string]bool{}
		for _, role := range []string{protocol.RoleHost, protocol.RoleGuest} {
			c := dial(ctx, t, cl.relays[0].URL, room, role, role)
			publish(ctx, t, c)
			pubs[room][c.Joined().Participant.ID] = true
		}
	}
	type joined struct {
		room string
		c    *client.Client
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ls []joined
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := []string{"r0", "r1"}[i%2]
			c, err := tryDial(ctx, cl.relays[(i/2)%3].URL, room, fmt.Sprintf("L%d", i), protocol.RoleAudience)
			if err != nil {
				t.Errorf("listener %d: %v", i, err)
				return
			}
			mu.Lock()
			ls = append(ls, joined{room, c})
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, l := range ls {
		t.Cleanup(func() { _ = l.c.Close() })
	}
	for i, l := range ls {
		for got := 0; got < 2; got++ {
			select {
			case rt := <-l.c.Tracks():
				if !pubs[l.room][rt.Track.StreamID()] {
					t.Fatalf("listener %d of %s on %s got a track of %s, not of its room", i, l.room, l.c.URL(), rt.Track.StreamID())
				}
				go func() {
					for {
						if _, _, err := rt.Track.ReadRTP(); err != nil {
							return
						}
					}
				}()
			case <-ctx.Done():
				t.Fatalf("listener %d of %s on %s got %d of its room's 2 tracks", i, l.room, l.c.URL(), got)
			}
		}
	}
}
