package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/server"
	"go.uber.org/goleak"
)

// whepPage plays a room over WHEP with nothing but fetch and
// RTCPeerConnection: no relay JavaScript. It is served from another
// origin than the relay's (the test's own server), so the relay's CORS
// answers are part of what is tested.
const whepPage = `<!doctype html>
<meta charset="utf-8"><title>WHEP player</title>
<audio id="out" autoplay></audio>
<script>
window.player = {state: "new", error: ""};
window.play = async (url) => {
  const pc = new RTCPeerConnection();
  window.player.pc = pc;
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.ontrack = (e) => {
    const out = document.getElementById("out");
    out.srcObject = new MediaStream([e.track]);
    out.play().catch((err) => { window.player.error = "play: " + err; });
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && done());
  });
  const resp = await fetch(url, {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
  if (resp.status !== 201) throw new Error("POST " + resp.status + ": " + await resp.text());
  window.player.location = resp.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: await resp.text()});
  window.player.state = "playing";
  return window.player.location;
};
window.inbound = async () => {
  let out = {packets: 0, energy: 0, level: 0};
  (await window.player.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out = {packets: s.packetsReceived || 0, energy: s.totalAudioEnergy || 0, level: s.audioLevel || 0};
    }
  });
  return out;
};
</script>`

type inbound struct {
	Packets float64 `json:"packets"`
	Energy  float64 `json:"energy"`
	Level   float64 `json:"level"`
}

// TestWHEPPlayer: a page with only fetch and RTCPeerConnection plays a
// room over WHEP in Chromium (the relay's real libopus mix) and hears the
// host, who publishes real Opus over WHIP from Go: packets arrive at
// about 100 a second and carry sound (audio energy grows). The page's
// DELETE ends the session.
func TestWHEPPlayer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	if !server.MixAvailable {
		t.Skip("this build has no mixer (no cgo)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{Tune: func(c *server.Config) { c.NewMixer = server.LibopusMixer }})
	const room = "whepstage"
	host := whiptest.Publish(ctx, t, relay.HTTPURL, room, whiptest.Options{Query: "name=OBS"})
	host.Connected(ctx, t)
	stop := make(chan struct{})
	_, sending := host.SendOpus(ctx, 11, stop)
	t.Cleanup(func() {
		close(stop)
		if err := <-sending; err != nil {
			t.Errorf("the WHIP host stopped sending: %v", err)
		}
	})

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, whepPage)
	}))
	t.Cleanup(site.Close)

	browser, stopBrowser := startBrowser(t, ctx)
	p := newPage(t, browser, "WHEP player")
	p.run("open", chromedp.Navigate(site.URL))
	loc := eval[string](p, fmt.Sprintf(`window.play(%q)`, relay.HTTPURL+"/whep/"+room))
	t.Logf("session %s", loc)
	p.waitFor("packets arrive", `window.inbound().then(s => s.packets > 100)`, 15*time.Second)
	a := eval[inbound](p, `window.inbound()`)
	time.Sleep(2 * time.Second)
	b := eval[inbound](p, `window.inbound()`)
	recv, energy := b.Packets-a.Packets, b.Energy-a.Energy
	t.Logf("in 2 s: %.0f packets, audio energy %.4f, level now %.3f", recv, energy, b.Level)
	if recv < 100 {
		t.Errorf("the player received %.0f packets in 2 s, want about 200 (10 ms frames)", recv)
	}
	if energy <= 0 {
		t.Errorf("the player hears silence: audio energy grew by %g in 2 s", energy)
	}
	if got := relay.Value(t, "relay_participants", "role", "audience"); got != 1 {
		t.Errorf("%g audience members, want the player", got)
	}

	status := eval[int](p, fmt.Sprintf(`fetch(%q, {method: "DELETE"}).then(r => r.status)`, relay.HTTPURL+loc))
	if status != http.StatusOK {
		t.Errorf("the page's DELETE: %d, want 200", status)
	}
	if got := relay.Value(t, "relay_participants", "role", "audience"); got != 0 {
		t.Errorf("%g audience members after DELETE, want 0", got)
	}
	stopBrowser()
}
