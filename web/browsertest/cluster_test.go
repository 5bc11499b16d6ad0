package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// TestClusterRedirect: two relays on one NATS server. The host's page
// opens relay a, the listener's page relay b; b redirects the listener's
// join to a, where the room lives, and the page joins there without
// showing anything of it: it hears the host. Then a drains: it hands the
// room to b and both pages, told the room moved, rejoin at b and the
// listener hears the host again.
func TestClusterRedirect(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	nats := natstest.Start(t)
	var relays []*relaytest.Relay
	for _, id := range []string{"a", "b"} {
		r := relaytest.Start(t, relaytest.Options{NATS: nats.URL(), NodeID: id, ClusterTTL: time.Second, ClusterOpTimeout: 500 * time.Millisecond})
		natstest.Eventually(ctx, t, "relay "+id+" to reach the directory", func() bool {
			return r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") >= 1
		})
		relays = append(relays, r)
	}
	a, b := relays[0], relays[1]
	browser, _ := startBrowser(t, ctx)
	host := newPage(t, browser, "host")
	aud := newPage(t, browser, "audience")
	const room = "cluster"
	host.join(a.HTTPURL, room, "Mei", "host")
	aud.join(b.HTTPURL, room, "Jun", "audience")
	if v := b.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 1 {
		t.Errorf("relay b routed %v listeners of a's room, want 1 (redirected)", v)
	}
	aud.waitFor("the listener (redirected to a) hears the host", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 20*time.Second)

	host.recordEvents("rejoined", "reconnectfailed", "close")
	aud.recordEvents("rejoined", "reconnectfailed", "close")
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		a.Drain(ctx, 20*time.Second)
	}()
	t.Cleanup(func() { <-drained })
	for _, p := range []*page{host, aud} {
		p.waitFor("rejoined at b", `window.__events.some(e => e.type === "rejoined")`, 20*time.Second)
		for _, e := range p.events() {
			if e.Type != "rejoined" {
				t.Errorf("%s page: unexpected %s", p.name, e.Type)
			}
		}
	}
	aud.waitFor("the listener hears the host again, on b", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 20*time.Second)
	for _, p := range []*page{host, aud} {
		if errs := eval[string](p, `document.querySelector("#errors").innerText`); errs != "" {
			t.Errorf("%s page shows errors %q: the redirects should be invisible", p.name, errs)
		}
	}
	if v := b.Value(t, "relay_cluster_rooms_owned"); v != 1 {
		t.Errorf("relay b owns %v rooms after the handover, want 1", v)
	}
}
