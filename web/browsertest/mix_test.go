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

// TestAudienceMixPage: the page's side of the audience mix. An audience
// tab asks for the mix by default, receives one track (stream id mix),
// plays it with packets flowing and says so; a tab that ticks Separate
// tracks gets the host's own track; the choice is off limits for hosts and
// guests. The relay runs the PASS-THROUGH MIXER TEST DOUBLE
// (relaytest.PassMixes: the newest input's packets re-stamped as the
// mix's stream), which tests the page and the room logic, not the mixing.
func TestAudienceMixPage(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{PassMix: true})
	browser, _ := startBrowser(t, ctx)
	const room = "mixpage"

	host := newPage(t, browser, "host")
	host.run("open", chromedp.Navigate(fmt.Sprintf("%s/?room=%s&name=Mei&role=host", relay.HTTPURL, room)))
	host.waitFor("choice disabled for a host", `document.querySelector("#separate-tracks").disabled`, 5*time.Second)
	host.click("#join-button")
	host.waitFor("joined", `!document.querySelector("#room-view").hidden`, 10*time.Second)
	hostID := eval[string](host, `window.relayPage.client.self.id`)

	mix := newPage(t, browser, "mix listener")
	mix.join(relay.HTTPURL, room, "Jun", "audience")
	mix.waitFor("on the mix", `window.relayPage.client.listen === "mix"`, 10*time.Second)
	mix.waitFor("the mix plays", `!!document.querySelector('#sinks audio[data-participant="mix"]')`, 15*time.Second)
	mix.waitFor("says so", `document.querySelector("#listener-state").textContent.includes("mix")`, 5*time.Second)

	sep := newPage(t, browser, "tracks listener")
	sep.run("open", chromedp.Navigate(fmt.Sprintf("%s/?room=%s&name=Lan&role=audience&listen=tracks", relay.HTTPURL, room)))
	sep.waitFor("separate tracks ticked from the link", `document.querySelector("#separate-tracks").checked && !document.querySelector("#separate-tracks").disabled`, 5*time.Second)
	sep.click("#join-button")
	sep.waitFor("joined", `!document.querySelector("#room-view").hidden`, 10*time.Second)
	sep.waitFor("on tracks", `window.relayPage.client.listen === "tracks"`, 5*time.Second)
	sep.waitFor("the host's track plays", fmt.Sprintf(`!!document.querySelector('#sinks audio[data-participant=%q]')`, hostID), 15*time.Second)

	for _, p := range []*page{mix, sep} {
		p.waitFor("packets arrive", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 100)`, 15*time.Second)
		a := p.stats()
		time.Sleep(2 * time.Second)
		b := p.stats()
		recv := b.Sub.PacketsReceived - a.Sub.PacketsReceived
		t.Logf("%s: %.0f packets in 2 s", p.name, recv)
		if recv < 100 {
			t.Errorf("%s received %.0f packets in 2 s, want about 200 (10 ms frames)", p.name, recv)
		}
	}
	if n := eval[int](mix, `document.querySelectorAll("#sinks audio").length`); n != 1 {
		t.Errorf("the mix listener plays %d audio elements, want the mix alone", n)
	}
}
