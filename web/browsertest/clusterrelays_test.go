package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// TestClusterRelaysOption: client.js's relays option. Three relays on one
// NATS server; the host's page publishes on a. A listener made with
// RelayClient({relays: [c]}) joins through b, an edge of a, and hears the
// host. Then b dies: its WebSocket is cut without a close frame (through
// a TCP proxy, as a crash looks to the browser) and the relay stops. The
// client's reconnection finds b unreachable, tries c, joins the room
// afresh there (resume tokens are per relay) and hears the host again,
// with no call from the application.
func TestClusterRelaysOption(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	nats := natstest.Start(t)
	var rs []*relaytest.Relay
	for _, id := range []string{"a", "b", "c"} {
		r := relaytest.Start(t, relaytest.Options{NATS: nats.URL(), NodeID: id})
		natstest.Eventually(ctx, t, "relay "+id+" to reach the directory", func() bool {
			return r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") >= 1
		})
		rs = append(rs, r)
	}
	a, b, c := rs[0], rs[1], rs[2]
	bURL, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	bWS := natstest.NewProxy(t, bURL.Host)

	browser, _ := startBrowser(t, ctx)
	host := newPage(t, browser, "host")
	const room = "relaysopt"
	host.join(a.HTTPURL, room, "Mei", "host")
	aud := newPage(t, browser, "listener")
	aud.run("open", chromedp.Navigate(a.HTTPURL+"/?room="+room))
	eval[bool](aud, fmt.Sprintf(`(async () => {
		const { RelayClient } = await import("/client.js");
		const c = new RelayClient({ relays: [%q], reconnectDelay: 100 });
		window.__listener = c;
		window.__events = [];
		for (const type of ["rejoined", "resumed", "reconnectfailed", "close"]) {
			c.addEventListener(type, () => window.__events.push({ type }));
		}
		await c.connect(%q);
		await c.join({ room: %q, name: "Jun", role: "audience" });
		return true;
	})()`, c.URL, "ws://"+bWS.Addr()+"/ws", room))
	heard := `window.__listener.stats().then(s => s && s.sub && s.sub.packetsReceived > %d)`
	aud.waitFor("the listener (on b, an edge of a) hears the host", fmt.Sprintf(heard, 0), 20*time.Second)
	if v := b.Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
		t.Fatalf("relay b has %v edge links, want 1 (the listener is served there)", v)
	}

	bWS.Cut()
	b.Cluster().Conn().Close()
	b.Stop()
	aud.waitFor("the client to rejoin through c", `window.__events.some(e => e.type === "rejoined")`, 20*time.Second)
	if v := c.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 1 {
		t.Errorf("relay c routed %v listeners as an edge, want 1", v)
	}
	before := eval[float64](aud, `window.__listener.stats().then(s => s.sub.packetsReceived)`)
	aud.waitFor("the listener hears the host again, through c", fmt.Sprintf(heard, int(before)+100), 20*time.Second)
	for _, e := range eval[[]struct{ Type string }](aud, `window.__events`) {
		if e.Type != "rejoined" {
			t.Errorf("listener: unexpected %s", e.Type)
		}
	}
	eval[bool](aud, `window.__listener.leave().then(() => true)`)
}
