package browsertest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// TestClusterRedirect: two relays on one NATS server. The host's page
// opens relay a, the listener's page relay b; b serves the listener as an
// edge of a (one link), and the page hears the host. Then a drains: it
// hands the room to b and the host's page, told the room moved, rejoins
// at b without showing anything of it; b, now the owner, turns its edge
// room into the room itself, so the listener keeps its session (no
// reconnection) and hears the host again, now on b.
func TestClusterRedirect(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	a, b := twoRelays(ctx, t, relaytest.Options{ClusterTTL: time.Second, ClusterOpTimeout: 500 * time.Millisecond})
	browser, _ := startBrowser(t, ctx)
	host := newPage(t, browser, "host")
	aud := newPage(t, browser, "audience")
	const room = "cluster"
	host.join(a.HTTPURL, room, "Mei", "host")
	aud.join(b.HTTPURL, room, "Jun", "audience")
	if v := b.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 1 {
		t.Errorf("relay b routed %v listeners of a's room, want 1 (served as an edge)", v)
	}
	aud.waitFor("the listener (on b, an edge of a) hears the host", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 20*time.Second)
	if v := b.Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
		t.Errorf("relay b has %v edge links, want 1", v)
	}

	host.recordEvents("rejoined", "reconnectfailed", "close")
	aud.recordEvents("rejoined", "reconnectfailed", "close")
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		a.Drain(ctx, 20*time.Second)
	}()
	t.Cleanup(func() { <-drained })
	host.waitFor("rejoined at b", `window.__events.some(e => e.type === "rejoined")`, 20*time.Second)
	for _, e := range host.events() {
		if e.Type != "rejoined" {
			t.Errorf("host page: unexpected %s", e.Type)
		}
	}
	// The host publishes again from b (its tracks on a ended with its
	// session there): the listener's packet count grows.
	before := eval[float64](aud, `window.relayPage.stats().then(s => s.sub.packetsReceived)`)
	aud.waitFor("the listener hears the host again, on b", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > `+strconv.Itoa(int(before)+100)+`)`, 20*time.Second)
	for _, e := range aud.events() {
		t.Errorf("listener page: unexpected %s (it keeps its session on b)", e.Type)
	}
	for _, p := range []*page{host, aud} {
		if errs := eval[string](p, `document.querySelector("#errors").innerText`); errs != "" {
			t.Errorf("%s page shows errors %q: the redirects should be invisible", p.name, errs)
		}
	}
	if v := b.Value(t, "relay_cluster_rooms_owned"); v != 1 {
		t.Errorf("relay b owns %v rooms after the handover, want 1", v)
	}
}

// TestClusterMicFromEdge: a listener served by an edge asks for the mic.
// The edge moves it to the room's owner (the hosts are there); the page
// joins there as audience and asks again without the user doing anything
// more, and the host's page queues the request and approves it: the
// listener, a guest now on the owner, is heard by the host.
func TestClusterMicFromEdge(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	_, b, host, aud := hostAndEdgeListener(t, "edgemic")

	aud.click("#request-mic")
	aud.waitFor("the page to rejoin at the owner", `window.__events.some(e => e.type === "rejoined")`, 20*time.Second)
	audID := eval[string](aud, `window.relayPage.client.self.id`)
	approve := fmt.Sprintf(`#queue li[data-id=%q] button[data-action=approve]`, audID)
	host.waitFor("the moved listener's request queued at the host", fmt.Sprintf(`!!document.querySelector('%s')`, approve), 20*time.Second)
	host.click(approve)
	aud.waitFor("the listener on the mic", `window.relayPage.client.self.role === "guest"`, 20*time.Second)
	host.waitFor("the host hears the new guest", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 100)`, 20*time.Second)
	// (Whether the page's pub was negotiated early depends on how fast the
	// host approves: not checked here; TestCoStreaming checks the early pub.)
	if v := b.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 1 {
		t.Errorf("relay b routed %v listeners as edge, want 1", v)
	}
	movedInvisibly(t, host, aud)
}

// TestClusterInviteFromEdge: a listener served by an edge is in the
// host's audience list on the owner (a proxy participant), and the host
// invites it with one click. The listener accepts with one click: the
// edge moves it to the owner (redirect, then mic_accept with a ticket),
// the page joins there and accepts again by itself, and the listener, a
// guest on the owner now, is heard by the host. Neither page shows an
// error.
func TestClusterInviteFromEdge(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	a, _, host, aud := hostAndEdgeListener(t, "edgeinvite")

	audID := eval[string](aud, `window.relayPage.client.self.id`)
	invite := fmt.Sprintf(`li[data-id=%q] button[data-action=invite]`, audID)
	host.waitFor("the edge listener in the host's audience list", fmt.Sprintf(`!!document.querySelector('%s')`, invite), 20*time.Second)
	host.click(invite)
	aud.waitFor("the invitation shown to the listener", `!document.querySelector("#accept-invite").hidden`, 20*time.Second)
	aud.click("#accept-invite")
	aud.waitFor("the page to rejoin at the owner", `window.__events.some(e => e.type === "rejoined")`, 20*time.Second)
	aud.waitFor("the listener on the mic", `window.relayPage.client.self.role === "guest"`, 20*time.Second)
	host.waitFor("the host hears the new guest", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 100)`, 20*time.Second)
	if v := a.Value(t, "relay_participants", "role", "guest"); v != 1 {
		t.Errorf("relay a has %v guests, want the moved listener", v)
	}
	movedInvisibly(t, host, aud)
}

// movedInvisibly checks that the listener's page, moved to the owner,
// saw nothing but its rejoin, and that neither page shows an error.
func movedInvisibly(t *testing.T, host, aud *page) {
	t.Helper()
	for _, e := range aud.events() {
		if e.Type != "rejoined" {
			t.Errorf("listener page: unexpected %s", e.Type)
		}
	}
	for _, p := range []*page{host, aud} {
		if errs := eval[string](p, `document.querySelector("#errors").innerText`); errs != "" {
			t.Errorf("%s page shows errors %q: the move should be invisible", p.name, errs)
		}
	}
}

// hostAndEdgeListener starts relays a and b on one NATS server, opens a
// host's page on a and a listener's page on b (an edge of a) in room, and
// waits until the listener hears the host; the listener's page records
// rejoined, reconnectfailed and close events.
func hostAndEdgeListener(t *testing.T, room string) (a, b *relaytest.Relay, host, aud *page) {
	t.Helper()
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	a, b = twoRelays(ctx, t, relaytest.Options{})
	browser, _ := startBrowser(t, ctx)
	host = newPage(t, browser, "host")
	aud = newPage(t, browser, "audience")
	host.join(a.HTTPURL, room, "Mei", "host")
	aud.join(b.HTTPURL, room, "Jun", "audience")
	aud.waitFor("the listener (on b, an edge of a) hears the host", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 20*time.Second)
	aud.recordEvents("rejoined", "reconnectfailed", "close")
	return a, b, host, aud
}

// twoRelays starts an embedded NATS server and relays a and b on it (opts
// with their NATS URL and node ids), each once it has reached the
// directory.
func twoRelays(ctx context.Context, t *testing.T, opts relaytest.Options) (a, b *relaytest.Relay) {
	nats := natstest.Start(t)
	var relays []*relaytest.Relay
	for _, id := range []string{"a", "b"} {
		o := opts
		o.NATS, o.NodeID = nats.URL(), id
		r := relaytest.Start(t, o)
		natstest.Eventually(ctx, t, "relay "+id+" to reach the directory", func() bool {
			return r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") >= 1
		})
		relays = append(relays, r)
	}
	return relays[0], relays[1]
}
