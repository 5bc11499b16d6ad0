package browsertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// TestEarlyPubPage: the page's early pub in Chromium. A request makes
// the page negotiate its microphone on pub at once, disabled; cancelling
// the request closes that connection (and the relay closes its side). An
// invitation accepted on the page negotiates pub first, then sends
// mic_accept: the new guest's microphone is enabled and the host hears
// it.
func TestEarlyPubPage(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{})
	browser, _ := startBrowser(t, ctx)
	host := newPage(t, browser, "host")
	aud := newPage(t, browser, "audience")
	const room = "earlypub"
	host.join(relay.HTTPURL, room, "Mei", "host")
	aud.join(relay.HTTPURL, room, "Jun", "audience")
	audID := eval[string](aud, `window.relayPage.client.self.id`)
	pubUp := `["connected", "completed"].includes(window.relayPage.client.state.pub)`

	t.Run("request, then cancel", func(t *testing.T) {
		aud.click("#request-mic")
		aud.waitFor("early pub connected", pubUp, 15*time.Second)
		if eval[bool](aud, `window.relayPage.client.micTrack.enabled`) {
			t.Error("the early pub's microphone is enabled while the request is pending")
		}
		aud.click("#cancel-request")
		aud.waitFor("early pub closed", `window.relayPage.client.state.pub === "none"`, 5*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for relay.Value(t, "relay_early_pubs_total", "outcome", "closed") != 1 {
			if time.Now().After(deadline) {
				t.Fatal("relay_early_pubs_total{outcome=closed} did not reach 1: the relay did not close the early pub")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("invitation accepted", func(t *testing.T) {
		invite := fmt.Sprintf(`#audience-list [data-id=%q] button[data-action=invite]`, audID)
		host.waitFor("invite button", fmt.Sprintf(`!!document.querySelector('%s')`, invite), 10*time.Second)
		host.click(invite)
		aud.waitFor("invitation shown", `!document.querySelector("#accept-invite").hidden`, 10*time.Second)
		aud.click("#accept-invite")
		aud.waitFor("became guest", `window.relayPage.client.self.role === "guest"`, 15*time.Second)
		aud.waitFor("microphone enabled", `window.relayPage.client.micTrack?.enabled === true`, 5*time.Second)
		if n := relay.Value(t, "relay_early_pubs_total", "outcome", "accepted"); n != 1 {
			t.Errorf("relay_early_pubs_total{outcome=accepted} = %v, want 1: the page did not negotiate pub before accepting", n)
		}
		host.waitFor("host receives the guest", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 50)`, 15*time.Second)
	})
}
