package browsertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// TestJoinSectionChromium: Chromium answers the relay's first sub offer,
// one receive-only audio m-section and no data channel, with an inactive
// section that surfaces no track, connects on it at join, and receives
// the first published track on that same transceiver.
func TestJoinSectionChromium(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{})
	browser, stopBrowser := startBrowser(t, ctx)
	defer stopBrowser()
	const room = "joinsection"
	host := relay.Dial(ctx, t, client.Config{Room: room, Name: "host", Role: protocol.RoleHost})
	aud := newPage(t, browser, "audience")
	aud.join(relay.HTTPURL, room, "Jun", "audience")
	aud.waitFor("sub connected", `window.relayPage.client.peerConnections.sub?.connectionState === "connected"`, 15*time.Second)
	const transceivers = `window.relayPage.client.peerConnections.sub.getTransceivers().map(t => t.mid + " " + t.currentDirection).join(",")`
	if got := eval[string](aud, transceivers); got != "0 inactive" {
		t.Fatalf("sub transceivers before any track: %q, want one inactive (no track surfaced)", got)
	}
	if n := eval[int](aud, `document.querySelectorAll("audio").length`); n != 0 {
		t.Fatalf("%d audio elements before any track", n)
	}
	aud.recordEvents("track")

	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := opusgen.NewSource(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relaytest.SendOpus(sendCtx, pub, src, nil) }()
	defer func() { stop(); <-done }()

	aud.waitFor("the host's track", fmt.Sprintf(`window.__events.some(e => e.type === "track" && e.participant === %q)`, host.ID()), 15*time.Second)
	aud.waitFor("audio arrives", `window.relayPage.stats().then(s => s && s.sub && s.sub.packetsReceived > 0)`, 15*time.Second)
	if evs := aud.events(); len(evs) != 1 {
		t.Errorf("track events %+v, want the host's only", evs)
	}
	if got := eval[string](aud, transceivers); got != "0 recvonly" {
		t.Errorf("sub transceivers with the track: %q, want the join section receiving it", got)
	}
}
