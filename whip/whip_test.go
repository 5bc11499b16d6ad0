package whip_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/webrtc/v4"
)

// testDeadline bounds every test that starts peers; the race detector and
// a shared machine make pion slow, so it is generous.
const testDeadline = 60 * time.Second

// start starts a relay for t, with a goroutine-leak check and a
// context bounded by testDeadline.
func start(t *testing.T, o relaytest.Options) (*relaytest.Relay, context.Context) {
	t.Helper()
	return relaytest.StartChecked(t, o, testDeadline)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not before the deadline", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWHIPPublish: OBS's shape of offer (audio and video, all candidates
// in it) publishes as host; the answer asks for 10 ms frames and rejects
// the video; a WebSocket audience member hears every payload unchanged;
// DELETE makes the participant leave with reason left and a second
// DELETE finds nothing.
func TestWHIPPublish(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	listener := r.Dial(ctx, t, client.Config{Room: "live", Name: "ear", Role: protocol.RoleAudience})
	pub := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Video: true, Query: "name=OBS"})

	if !strings.Contains(pub.Answer, "a=ptime:10") {
		t.Errorf("the answer does not ask for 10 ms frames:\n%s", pub.Answer)
	}
	if !strings.Contains(pub.Answer, "m=video 0 ") {
		t.Errorf("the answer does not reject the video m-section with port 0:\n%s", pub.Answer)
	}
	if !strings.Contains(pub.Answer, "a=candidate:") {
		t.Errorf("the answer carries no candidates (the relay cannot trickle to a WHIP client):\n%s", pub.Answer)
	}
	joined := relaytest.WaitEvent(ctx, t, listener, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "OBS" })
	if joined.Participant.Role != protocol.RoleHost {
		t.Errorf("the WHIP publisher joined as %s, want host", joined.Participant.Role)
	}
	if got := r.Value(t, "relay_http_sessions", "kind", "whip"); got != 1 {
		t.Errorf("relay_http_sessions{kind=whip} = %g, want 1", got)
	}
	pub.Connected(ctx, t)
	stop := make(chan struct{})
	sent, done := pub.SendOpus(ctx, 7, stop)

	var rt *client.RemoteTrack
	select {
	case rt = <-listener.Tracks():
	case <-ctx.Done():
		t.Fatal("the audience member got no track")
	}
	if rt.StreamID != joined.Participant.ID {
		t.Errorf("track stream %q, want the publisher %q", rt.StreamID, joined.Participant.ID)
	}
	for _, pkt := range whiptest.ReadRTP(ctx, t, rt.Track, 100) {
		// Without loss the relay keeps the publisher's numbering.
		want, ok := sent.Get(pkt.SequenceNumber)
		if !ok {
			t.Fatalf("received sequence %d, never sent", pkt.SequenceNumber)
		}
		if string(want) != string(pkt.Payload) {
			t.Fatalf("payload of %d differs from what was sent", pkt.SequenceNumber)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	resp, body := whiptest.Request(ctx, t, http.MethodDelete, pub.Location, "", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %s: %s", resp.Status, body)
	}
	left := relaytest.WaitEvent(ctx, t, listener, func(e *protocol.ParticipantLeft) bool { return e.Participant == joined.Participant.ID })
	if left.Reason != "left" {
		t.Errorf("left with reason %q, want left", left.Reason)
	}
	if got := r.Value(t, "relay_http_sessions", "kind", "whip"); got != 0 {
		t.Errorf("relay_http_sessions{kind=whip} = %g after DELETE, want 0", got)
	}
	if resp, _ := whiptest.Request(ctx, t, http.MethodDelete, pub.Location, "", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %s, want 404", resp.Status)
	}
}

// TestWHIPTrickle: an ICE-lite WHIP client (it sends no checks, so the
// relay must know its candidates) offers without candidates and sends
// them by PATCH: the session connects only through them.
func TestWHIPTrickle(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	pub := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Trickle: true, Lite: true})
	pub.Connected(ctx, t)
}

// TestWHEPMix: a WHEP player that joins an empty room, offering to
// receive audio and video as players do (the answer rejects the video and
// still has the audio m-section the mix fills later), hears the host who
// publishes by WHIP afterwards, through the real libopus mix; a host on
// the WebSocket sees the player (Presence) and the audience count.
func TestWHEPMix(t *testing.T) {
	if !server.MixAvailable {
		t.Skip("this build has no mixer (no cgo)")
	}
	r, ctx := start(t, relaytest.Options{Tune: func(c *server.Config) { c.NewMixer = server.LibopusMixer }})
	host := r.Dial(ctx, t, client.Config{Room: "live", Name: "watcher", Role: protocol.RoleHost})
	player := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=speaker", Video: true})
	if !strings.Contains(player.Answer, "a=sendonly") {
		t.Fatalf("the answer to an empty room has no sendonly audio:\n%s", player.Answer)
	}
	if !strings.Contains(player.Answer, "m=video 0 ") {
		t.Errorf("the answer does not reject the video the player offered to receive:\n%s", player.Answer)
	}
	seen := relaytest.WaitEvent(ctx, t, host, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "speaker" })
	if seen.Participant.Role != protocol.RoleAudience {
		t.Errorf("the WHEP player joined as %s, want audience", seen.Participant.Role)
	}
	relaytest.WaitEvent(ctx, t, host, func(e *protocol.Audience) bool { return e.Count == 1 })
	player.Connected(ctx, t)

	pub := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{})
	pub.Connected(ctx, t)
	stop := make(chan struct{})
	_, done := pub.SendOpus(ctx, 3, stop)
	var tr *webrtc.TrackRemote
	select {
	case tr = <-player.Tracks:
	case <-ctx.Done():
		t.Fatal("the player got no track")
	}
	loud := whiptest.Heard(ctx, t, tr, 150)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if loud == 0 {
		t.Fatal("the player heard only silence from the mix")
	}
	if got := r.Value(t, "relay_http_sessions", "kind", "whep"); got != 1 {
		t.Errorf("relay_http_sessions{kind=whep} = %g, want 1", got)
	}
}
