package cluster_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/webrtc/v4"
)

// Two hosts join the same new room at once through different relays:
// exactly one relay owns it, the other redirects its host there (the
// client follows without the caller seeing it), and the two hear each
// other. A listener through the third relay is served there, an edge of
// the owner.
func TestRaceForARoom(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	var wg sync.WaitGroup
	hosts := make([]*client.Client, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hosts[i], errs[i] = tryDial(ctx, cl.relays[i].URL, "race", []string{"H0", "H1"}[i], protocol.RoleHost)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		t.Cleanup(func() { _ = hosts[i].Close() })
	}
	owner := cl.owner(t, hosts[0])
	if o := cl.owner(t, hosts[1]); o != owner {
		t.Fatalf("the hosts joined relays %d and %d: the room has two owners", owner, o)
	}
	if n := cl.roomsOwned(t); n != 1 {
		t.Fatalf("relay_cluster_rooms_owned sums to %v over the relays, want 1", n)
	}
	redirected := 0.0
	for _, r := range cl.relays {
		redirected += r.Value(t, "relay_cluster_routes_total", "route", "redirect")
	}
	if redirected != 1 {
		t.Errorf("redirects counted: %v, want 1 (the host that dialed the other relay)", redirected)
	}
	listener := dial(ctx, t, cl.relays[2].URL, "race", "L", protocol.RoleAudience)
	if got := cl.owner(t, listener); got != 2 {
		t.Fatalf("the listener through relay 2 joined relay %d, want relay 2 (an edge of the owner %d)", got, owner)
	}
	if v := cl.relays[2].Value(t, "relay_cluster_routes_total", "route", "edge"); v != 1 {
		t.Errorf("relay 2 counted %v edge routes, want 1", v)
	}
	heard := count(ctx, t, listener)
	h1 := count(ctx, t, hosts[1])
	publish(ctx, t, hosts[0])
	heard.grows(ctx, t, "the listener to hear host 0", 50)
	h1.grows(ctx, t, "host 1 to hear host 0", 50)
}

// The owner dies without releasing anything (cut from NATS, then
// stopped): its entry ages out within the TTL, and the room is created
// again on the next join, wherever it comes in; the others follow there.
func TestOwnerDies(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	a := cl.relays[0]
	host := dial(ctx, t, a.URL, "stage", "Host", protocol.RoleHost)
	publish(ctx, t, host)
	listener := dial(ctx, t, cl.relays[1].URL, "stage", "L", protocol.RoleAudience)
	count(ctx, t, listener).grows(ctx, t, "the listener to hear the host", 20)

	a.Cluster().Conn().Close() // no release, no goodbye: a crash as the directory sees it
	a.Stop()

	host2 := dialEventually(ctx, t, cl.relays[1].URL, "stage", "Host", protocol.RoleHost)
	if cl.owner(t, host2) != 1 {
		t.Fatalf("the room came back on %s, want relay 1 where it was joined", host2.URL())
	}
	publish(ctx, t, host2)
	listener2 := dial(ctx, t, cl.relays[2].URL, "stage", "L2", protocol.RoleAudience)
	if cl.owner(t, listener2) != 2 {
		t.Fatalf("the listener through relay 2 joined %s, want relay 2 (an edge of relay 1)", listener2.URL())
	}
	count(ctx, t, listener2).grows(ctx, t, "the new listener to hear the re-created room", 20)
}

// NATS goes away: rooms keep forwarding on every relay, a join of a room
// the relay holds still works, a join that needs the directory gets
// unavailable (not a hang); when NATS is back, the directory is rebuilt
// from the relays' rooms without a restart and routes as before.
func TestNATSOutage(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	var heard []*counter
	for i, room := range []string{"r0", "r1"} {
		h := dial(ctx, t, cl.relays[i].URL, room, "Host", protocol.RoleHost)
		publish(ctx, t, h)
		l := dial(ctx, t, cl.relays[i].URL, room, "L", protocol.RoleAudience)
		heard = append(heard, count(ctx, t, l))
	}
	cl.nats.Shutdown()
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to see NATS gone", func() bool { return r.Value(t, "relay_cluster_nats_connected") == 0 })
	}
	for i, k := range heard {
		k.grows(ctx, t, "room r"+string(rune('0'+i))+" to keep forwarding without NATS", 50)
	}
	late := dial(ctx, t, cl.relays[0].URL, "r0", "Late", protocol.RoleAudience) // held here: no directory needed
	count(ctx, t, late).grows(ctx, t, "a listener joined during the outage to hear r0", 20)
	_, err := tryDial(ctx, cl.relays[2].URL, "fresh", "H", protocol.RoleHost)
	if se := serverError(err); se == nil || se.Code != protocol.CodeUnavailable || se.Message == "" {
		t.Fatalf("a join needing the directory during the outage: %v; want error unavailable with a message", err)
	}
	_, err = tryDial(ctx, cl.relays[2].URL, "r0", "H2", protocol.RoleHost)
	if se := serverError(err); se == nil || se.Code != protocol.CodeUnavailable {
		t.Fatalf("a join of another relay's room during the outage: %v; want unavailable", err)
	}

	cl.nats.Restart() // memory-stored buckets: the directory starts empty
	for _, r := range cl.relays {
		eventually(ctx, t, "every relay to reconnect", func() bool { return r.Value(t, "relay_cluster_nats_reconnects_total") >= 1 })
	}
	for i, room := range []string{"r0", "r1"} {
		// Routed by the rebuilt directory: a guest through relay 2 lands
		// on the room's relay.
		g := dialEventually(ctx, t, cl.relays[2].URL, room, "Guest", protocol.RoleGuest)
		if cl.owner(t, g) != i {
			t.Fatalf("after the rebuild a guest of %s joined %s, want relay %d", room, g.URL(), i)
		}
	}
	heard[0].grows(ctx, t, "r0 still forwarding after the rebuild", 20)
}

// A relay cut off from NATS long enough for its entry to age out comes
// back to find its room claimed elsewhere: the directory's owner wins,
// and this relay's participants are told to move there (message
// redirect), then closed.
func TestPartitionedOwnerLosesRoom(t *testing.T) {
	var px *natstest.Proxy
	cl, ctx := startCluster(t, func(i int, srv *natstest.Server) string {
		if i == 0 {
			px = natstest.NewProxy(t, srv.Addr())
			return px.URL()
		}
		return srv.URL()
	})
	old := dial(ctx, t, cl.relays[0].URL, "split", "Old", protocol.RoleHost)
	px.Cut()
	eventually(ctx, t, "relay 0 to see NATS gone", func() bool { return cl.relays[0].Value(t, "relay_cluster_nats_connected") == 0 })
	// While relay 0's entry lives, a join through relay 1 is redirected
	// to relay 0 (which still serves the room); once it has aged out,
	// relay 1 claims the room.
	var newHost *client.Client
	eventually(ctx, t, "relay 1 to claim the room after relay 0's entry aged out", func() bool {
		c, err := tryDial(ctx, cl.relays[1].URL, "split", "New", protocol.RoleHost)
		if err != nil {
			return false
		}
		if c.URL() != cl.relays[1].URL {
			_ = c.Close()
			return false
		}
		newHost = c
		return true
	})
	t.Cleanup(func() { _ = newHost.Close() })
	px.Heal()
	rd := relaytest.WaitEvent[*protocol.Redirect](ctx, t, old, nil)
	if rd.URL != cl.relays[1].URL || rd.Room != "split" || rd.Message == "" {
		t.Fatalf("redirect %+v, want room split at %s", rd, cl.relays[1].URL)
	}
	select {
	case <-old.Done():
	case <-ctx.Done():
		t.Fatal("the moved participant's connection stayed open")
	}
	if code := old.CloseCode(); code != protocol.CloseNormal {
		t.Errorf("close code %d after redirect, want 1000", code)
	}
	moved := dial(ctx, t, rd.URL, "split", "Old", protocol.RoleHost)
	if cl.owner(t, moved) != 1 {
		t.Fatalf("rejoined at %s", moved.URL())
	}
	eventually(ctx, t, "relay 0 to forget the room", func() bool { return cl.relays[0].Value(t, "relay_cluster_rooms_owned") == 0 })
}

// A drain of the owner hands the room to another live relay: the owner's
// participants get redirect with its URL and are closed; they rejoin
// there and the room goes on; joins through any relay follow.
func TestDrainOwner(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	a := cl.relays[0]
	host := dial(ctx, t, a.URL, "show", "Host", protocol.RoleHost)
	listener := dial(ctx, t, a.URL, "show", "L", protocol.RoleAudience)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		a.Drain(ctx, 5*ttl)
	}()
	t.Cleanup(func() { <-drained })
	op := func(result string) float64 {
		return a.Value(t, "relay_cluster_directory_ops_total", "op", "handover", "result", result)
	}
	released := func() float64 {
		return a.Value(t, "relay_cluster_directory_ops_total", "op", "release", "result", "ok")
	}
	eventually(ctx, t, "relay 0 to hand its room over (or release it)", func() bool {
		return op("ok")+op("error")+op("conflict")+released() >= 1
	})
	if op("ok") != 1 {
		t.Fatalf("handover: ok %v, error %v, conflict %v, released %v; want the room handed over", op("ok"), op("error"), op("conflict"), released())
	}
	var to string
	for _, c := range []*client.Client{host, listener} {
		rd := relaytest.WaitEvent[*protocol.Redirect](ctx, t, c, nil)
		if rd.URL != cl.relays[1].URL && rd.URL != cl.relays[2].URL {
			t.Fatalf("redirect to %s, want another live relay", rd.URL)
		}
		if to != "" && rd.URL != to {
			t.Fatalf("the room's participants were sent to %s and %s", to, rd.URL)
		}
		to = rd.URL
	}
	<-drained // every session moved: the drain ends early
	host2 := dial(ctx, t, to, "show", "Host", protocol.RoleHost)
	publish(ctx, t, host2)
	other := cl.relays[1].URL
	if to == other {
		other = cl.relays[2].URL
	}
	l2 := dial(ctx, t, other, "show", "L", protocol.RoleAudience)
	if l2.URL() != other {
		t.Fatalf("a listener through the third relay joined %s, want that relay (an edge of the new owner %s)", l2.URL(), to)
	}
	count(ctx, t, l2).grows(ctx, t, "the listener to hear the room on its new relay", 20)
}

// WHIP and WHEP have no redirect: a WHIP publish on a relay that does not
// own the room is refused with 503, Retry-After and the owner's URL in
// words.
func TestWHIPOnNonOwner(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	dial(ctx, t, cl.relays[0].URL, "w", "Host", protocol.RoleHost)
	pc := whiptest.NewPC(t, false)
	defer func() { _ = pc.Close() }()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := whiptest.Request(ctx, t, http.MethodPost, cl.relays[1].HTTPURL+"/whip/w", "application/sdp", "", offer.SDP)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, cl.relays[0].URL) {
		t.Fatalf("WHIP on a non-owner: %d %q (Retry-After %q); want 503 naming %s", resp.StatusCode, body, resp.Header.Get("Retry-After"), cl.relays[0].URL)
	}
}

// Misconfigured node URLs can make redirects loop: here two clusters
// whose owners of room "loop" claim each other's entry relay as their
// URL. The Go client follows at most client.MaxRedirects hops and then
// fails with an error that says so, instead of looping forever.
func TestRedirectLoop(t *testing.T) {
	cl, ctx := startCluster(t, nil) // cluster 1: relays 0, 1, 2
	other := natstest.Start(t)      // cluster 2
	opts := relaytest.Options{NATS: other.URL(), NodeID: "x", ClusterTTL: ttl, ClusterOpTimeout: opTimeout}
	x := relaytest.Start(t, opts) // cluster 2's entry
	waitConnected(ctx, t, x)
	// p owns "loop" in cluster 1 but gives x's URL as its own; q owns it
	// in cluster 2 and gives relay 1's.
	lying := func(url string) func(*server.Config) {
		return func(c *server.Config) { c.Cluster.NodeURL = url }
	}
	p := relaytest.Start(t, relaytest.Options{NATS: cl.nats.URL(), NodeID: "p", ClusterTTL: ttl, ClusterOpTimeout: opTimeout, Tune: lying(x.URL)})
	q := relaytest.Start(t, relaytest.Options{NATS: other.URL(), NodeID: "q", ClusterTTL: ttl, ClusterOpTimeout: opTimeout, Tune: lying(cl.relays[1].URL)})
	for _, r := range []*relaytest.Relay{p, q} {
		waitConnected(ctx, t, r)
		dial(ctx, t, r.URL, "loop", "Owner", protocol.RoleHost) // claims "loop" in its cluster
	}
	_, err := tryDial(ctx, cl.relays[1].URL, "loop", "H", protocol.RoleHost)
	if err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("a join through a redirect loop: %v; want an error after %d redirects", err, client.MaxRedirects)
	}
	if se := serverError(err); se == nil || se.Code != protocol.CodeRedirect {
		t.Errorf("the error does not carry the last redirect: %v", err)
	}
}
