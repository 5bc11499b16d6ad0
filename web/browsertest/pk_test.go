package browsertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// receivedJS is a JavaScript promise of the packets a page has received
// on the track of participant id (its audio element's receiver on sub),
// or -1 if it has none.
func receivedJS(id string) string {
	return fmt.Sprintf(`(async () => {
		const a = document.querySelector('#sinks audio[data-participant=%q]');
		const pc = window.relayPage.client?.peerConnections.sub;
		if (!a || !pc) return -1;
		const track = a.srcObject.getAudioTracks()[0];
		const r = pc.getReceivers().find((r) => r.track === track);
		if (!r) return -1;
		let n = -1;
		(await r.getStats()).forEach((s) => { if (s.type === "inbound-rtp") n = s.packetsReceived; });
		return n;
	})()`, id)
}

// TestPKPage: two rooms' host pages link through the page's PK card: host
// A types room B and invites, host B sees the invitation and accepts,
// both show the link and the other host as a remote tile (mute, no kick),
// and each host page hears the other (packets on the other host's own
// track, about 100 per second). Host B ends the link from the card: the
// remote tiles and the other's audio go.
func TestPKPage(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{})
	browser, stopBrowser := startBrowser(t, ctx)

	a := newPage(t, browser, "host A")
	b := newPage(t, browser, "host B")
	a.join(relay.HTTPURL, "pkpagea", "Mei", "host")
	b.join(relay.HTTPURL, "pkpageb", "Lan", "host")
	aID := eval[string](a, `window.relayPage.client.self.id`)
	bID := eval[string](b, `window.relayPage.client.self.id`)

	a.run("type the room", chromedp.SendKeys("#pk-room", "pkpageb"))
	a.click("#pk-invite")
	a.waitFor("inviting shown", `document.querySelector("#pk-card").dataset.state === "inviting"`, 5*time.Second)
	b.waitFor("invitation shown", `!document.querySelector("#pk-incoming").hidden && document.querySelector("#pk-incoming-text").textContent.includes("pkpagea")`, 10*time.Second)
	b.click("#pk-accept")
	for _, c := range []struct {
		p     *page
		other string
		room  string
	}{{a, bID, "pkpageb"}, {b, aID, "pkpagea"}} {
		c.p.waitFor("linked shown", fmt.Sprintf(`document.querySelector("#pk-state").textContent.includes(%q)`, c.room), 10*time.Second)
		tile := fmt.Sprintf(`#tiles .tile[data-id=%q][data-role=remote]`, c.other)
		c.p.waitFor("the other host's remote tile", fmt.Sprintf(`!!document.querySelector('%s')`, tile), 10*time.Second)
		if eval[bool](c.p, fmt.Sprintf(`!!document.querySelector('%s button[data-action=kick]')`, tile)) {
			t.Errorf("%s: a remote tile offers kick", c.p.name)
		}
		if !eval[bool](c.p, fmt.Sprintf(`!!document.querySelector('%s button[data-action=mute]')`, tile)) {
			t.Errorf("%s: a remote tile has no mute", c.p.name)
		}
	}

	// Each host page hears the other: packets on the other host's track.
	hears := func(p *page, other string) {
		t.Helper()
		p.waitFor("the other host's track", fmt.Sprintf(`!!document.querySelector('#sinks audio[data-participant=%q]')`, other), 15*time.Second)
		p.waitFor("its packets", receivedJS(other)+`.then((n) => n > 50)`, 15*time.Second)
		x := eval[float64](p, receivedJS(other))
		time.Sleep(2 * time.Second)
		y := eval[float64](p, receivedJS(other))
		t.Logf("%s: %.0f packets from the other host in 2 s", p.name, y-x)
		if y-x < 100 {
			t.Errorf("%s received %.0f packets from the other host in 2 s, want about 200 (10 ms frames)", p.name, y-x)
		}
	}
	hears(a, bID)
	hears(b, aID)

	b.click("#pk-end")
	for _, c := range []struct {
		p     *page
		other string
	}{{a, bID}, {b, aID}} {
		c.p.waitFor("link ended", `document.querySelector("#pk-card").dataset.state === "none"`, 10*time.Second)
		c.p.waitFor("remote tile gone", fmt.Sprintf(`!document.querySelector('#tiles .tile[data-id=%q]')`, c.other), 10*time.Second)
		c.p.waitFor("its audio gone", fmt.Sprintf(`!document.querySelector('#sinks audio[data-participant=%q]')`, c.other), 10*time.Second)
	}
	stopBrowser()
}
