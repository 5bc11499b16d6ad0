package browsertest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// subResponses is the STUN responses Chromium's sub connection got on its
// nominated pair (its consent checks, answered).
const subResponses = `window.relayPage.client.peerConnections.sub.getStats().then(r => {
  let n = 0;
  r.forEach(s => { if (s.type === "candidate-pair" && s.nominated) n = Math.max(n, s.responsesReceived || 0); });
  return n;
})`

// TestTakeoverConsent: Chromium's sub connections, taken over from pion
// by the relay (sfu/takeover.go), stay up past Chromium's 30 s consent
// timeout (RFC 7675): the relay answers its consent checks itself, the
// audience keeps hearing the host, and a guest brought on the mic after
// the takeover is heard by the host, whose sub connection the relay
// renegotiates itself.
func TestTakeoverConsent(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{})
	browser, stopBrowser := startBrowser(t, ctx)
	t.Cleanup(stopBrowser)
	host := newPage(t, browser, "host")
	aud := newPage(t, browser, "audience")
	host.join(relay.HTTPURL, "consent", "Mei", "host")
	aud.join(relay.HTTPURL, "consent", "Jun", "audience")
	aud.waitFor("audience hears the host", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 15*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for relay.Value(t, "relay_sub_takeovers_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%v sub connections taken over, want the host's and the audience's", relay.Value(t, "relay_sub_takeovers_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := eval[float64](aud, subResponses)

	// Past Chromium's consent timeout, the connection is up and audio flows.
	time.Sleep(35 * time.Second)
	if st := eval[string](aud, `window.relayPage.client.peerConnections.sub.connectionState`); st != "connected" {
		t.Fatalf("the audience's sub connection is %s 35 s after the takeover, want connected", st)
	}
	if after := eval[float64](aud, subResponses); after <= before {
		t.Errorf("the audience's consent checks got %v responses before and %v after 35 s: the relay answered none", before, after)
	}
	received := eval[float64](aud, `window.relayPage.stats().then(s => s.sub.packetsReceived)`)
	aud.waitFor("audio still flowing", `window.relayPage.stats().then(s => s.sub.packetsReceived > `+strconv.Itoa(int(received)+100)+`)`, 10*time.Second)

	// A guest after the takeover: the host's sub gets the guest's track
	// through the relay's own offer.
	aud.click("#request-mic")
	audID := eval[string](aud, `window.relayPage.client.self.id`)
	approve := `#queue li[data-id="` + audID + `"] button[data-action=approve]`
	host.waitFor("request queued", `!!document.querySelector('`+approve+`')`, 10*time.Second)
	host.click(approve)
	aud.waitFor("became guest", `window.relayPage.client.self.role === "guest"`, 10*time.Second)
	host.waitFor("the host hears the guest", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 50)`, 15*time.Second)
	if st := eval[string](host, `window.relayPage.client.peerConnections.sub.connectionState`); st != "connected" {
		t.Errorf("the host's sub connection is %s after the relay's renegotiation, want connected", st)
	}
}
