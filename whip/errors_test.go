package whip_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/webrtc/v4"
)

// offerSDP is a real offer with its candidates: sending audio for WHIP,
// receiving for WHEP.
func offerSDP(ctx context.Context, t *testing.T, kind string) string {
	t.Helper()
	pc := whiptest.NewPC(t, false)
	defer func() { _ = pc.Close() }()
	dir := webrtc.RTPTransceiverDirectionSendonly
	if kind == "whep" {
		dir = webrtc.RTPTransceiverDirectionRecvonly
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("no ICE gathering before the deadline")
	}
	return pc.LocalDescription().SDP
}

// nothingLeft checks that a refused request left no session, participant
// or room behind.
func nothingLeft(t *testing.T, r *relaytest.Relay, what string, participants float64) {
	t.Helper()
	for _, kind := range []string{"whip", "whep"} {
		if got := r.Value(t, "relay_http_sessions", "kind", kind); got != 0 && participants == 0 {
			t.Errorf("%s: relay_http_sessions{kind=%s} = %g, want 0", what, kind, got)
		}
	}
	var n float64
	for _, role := range []string{"host", "guest", "audience"} {
		n += r.Value(t, "relay_participants", "role", role)
	}
	if n != participants {
		t.Errorf("%s: %g participants in the relay, want %g", what, n, participants)
	}
}

// TestRequestErrors: every malformed or refused request gets its status
// and a body saying what to do, and leaves nothing behind.
func TestRequestErrors(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	whipOffer, whepOffer := offerSDP(ctx, t, "whip"), offerSDP(ctx, t, "whep")
	base := r.HTTPURL
	tests := []struct {
		name, method, url, ctype, body string
		hdr                            []string
		want                           int
		says                           string
	}{
		{"wrong content type", "POST", "/whip/live", "text/plain", whipOffer, nil, http.StatusUnsupportedMediaType, "application/sdp"},
		{"missing content type", "POST", "/whip/live", "", whipOffer, nil, http.StatusBadRequest, "Content-Type is missing"},
		{"not SDP", "POST", "/whip/live", "application/sdp", "hello", nil, http.StatusBadRequest, "not an SDP offer"},
		{"empty body", "POST", "/whep/live", "application/sdp", "", nil, http.StatusBadRequest, "empty"},
		{"too large", "POST", "/whip/live", "application/sdp", whipOffer + strings.Repeat("a=x:y\r\n", 3000), nil, http.StatusRequestEntityTooLarge, "larger than"},
		{"WHIP offer that sends nothing", "POST", "/whip/live", "application/sdp", whepOffer, nil, http.StatusBadRequest, "sends no audio"},
		{"WHEP offer that receives nothing", "POST", "/whep/live", "application/sdp", whipOffer, nil, http.StatusBadRequest, "receives no audio"},
		{"bad listen", "POST", "/whep/live?listen=loud", "application/sdp", whepOffer, nil, http.StatusBadRequest, "listen must be"},
		{"bad room", "POST", "/whip/no%20spaces", "application/sdp", whipOffer, nil, http.StatusBadRequest, "room name"},
		{"audience cannot publish", "POST", "/whip/live?role=audience", "application/sdp", whipOffer, nil, http.StatusBadRequest, "host or guest"},
		{"bad name", "POST", "/whep/live?name=%07", "application/sdp", whepOffer, nil, http.StatusBadRequest, "name must be"},
		{"GET", "GET", "/whip/live", "", "", nil, http.StatusMethodNotAllowed, ""},
		{"foreign origin", "POST", "/whip/live", "application/sdp", whipOffer, []string{"Origin", "https://elsewhere.example"}, http.StatusForbidden, "-allowed-origins"},
		{"PATCH unknown session", "PATCH", "/whip/live/nosuch", "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", nil, http.StatusNotFound, "no such session"},
		{"DELETE unknown session", "DELETE", "/whep/live/nosuch", "", "", nil, http.StatusNotFound, "no such session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := whiptest.Request(ctx, t, tt.method, base+tt.url, tt.ctype, "", tt.body, tt.hdr...)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.says) {
				t.Errorf("%s %s: %s %q, want %d saying %q", tt.method, tt.url, resp.Status, body, tt.want, tt.says)
			}
			nothingLeft(t, r, tt.name, 0)
		})
	}
}

// TestPreflight: a page on an allowed origin gets the CORS answers it
// needs, Location exposed.
func TestPreflight(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	resp, _ := whiptest.Request(ctx, t, http.MethodOptions, r.HTTPURL+"/whep/live", "", "", "", "Origin", "http://localhost:8000", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("OPTIONS: %s", resp.Status)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:8000" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("preflight headers: %v", h)
	}
}

// TestTokens: with a secret, the bearer token decides who may publish
// and play, as it does for join.
func TestTokens(t *testing.T) {
	const secret = "s3cret"
	r, ctx := start(t, relaytest.Options{AuthSecret: secret})
	mint := func(room, role string) string {
		tok, err := auth.Mint([]byte(secret), room, "Ann", role, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	whipOffer, whepOffer := offerSDP(ctx, t, "whip"), offerSDP(ctx, t, "whep")
	tests := []struct {
		name, url, token, offer string
		want                    int
		says                    string
	}{
		{"no token", "/whip/live", "", whipOffer, http.StatusUnauthorized, "Bearer"},
		{"bad token", "/whep/live", "not-a-token", whepOffer, http.StatusUnauthorized, "token invalid"},
		{"other room", "/whip/live", mint("other", "host"), whipOffer, http.StatusForbidden, "for room"},
		{"audience publishing", "/whip/live", mint("live", "audience"), whipOffer, http.StatusForbidden, "audience only"},
		{"guest asking for host", "/whip/live?role=host", mint("live", "guest"), whipOffer, http.StatusForbidden, "at most guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := whiptest.Request(ctx, t, http.MethodPost, r.HTTPURL+tt.url, "application/sdp", tt.token, tt.offer)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.says) {
				t.Errorf("%s: %s %q, want %d saying %q", tt.url, resp.Status, body, tt.want, tt.says)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
			nothingLeft(t, r, tt.name, 0)
		})
	}
	t.Run("guest token publishes as guest", func(t *testing.T) {
		whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Token: mint("live", "guest")})
		if got := r.Value(t, "relay_participants", "role", "guest"); got != 1 {
			t.Errorf("%g guests, want 1", got)
		}
	})
	t.Run("audience token plays", func(t *testing.T) {
		whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Token: mint("live", "audience")})
		if got := r.Value(t, "relay_participants", "role", "audience"); got != 1 {
			t.Errorf("%g audience members, want 1", got)
		}
	})
}

// TestLimits: a full room is 409, an address over its join rate 429
// with Retry-After, a draining relay 503; a session open before the drain
// plays on until it ends.
func TestLimits(t *testing.T) {
	r, ctx := start(t, relaytest.Options{Seats: 1, Tune: func(c *server.Config) {
		c.Signaling.JoinRatePerAddr, c.Signaling.JoinBurstPerAddr = 0.001, 3
	}})
	whipOffer, whepOffer := offerSDP(ctx, t, "whip"), offerSDP(ctx, t, "whep")
	whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{}) // the room's one seat; 1 of 3 joins

	resp, body := whiptest.Request(ctx, t, http.MethodPost, r.HTTPURL+"/whip/live", "application/sdp", "", whipOffer)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "seats") {
		t.Errorf("second publisher: %s %q, want 409 about seats", resp.Status, body)
	}
	nothingLeft(t, r, "room full", 1)
	player := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{}) // 3 of 3
	resp, body = whiptest.Request(ctx, t, http.MethodPost, r.HTTPURL+"/whep/live", "application/sdp", "", whepOffer)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("fourth join: %s %q (Retry-After %q), want 429 with Retry-After", resp.Status, body, resp.Header.Get("Retry-After"))
	}
	nothingLeft(t, r, "rate limited", 2)

	r.Drain(ctx, 0)
	resp, body = whiptest.Request(ctx, t, http.MethodPost, r.HTTPURL+"/whep/live", "application/sdp", "", whepOffer)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("join while draining: %s %q, want 503 with Retry-After", resp.Status, body)
	}
	resp, body = whiptest.Request(ctx, t, http.MethodDelete, player.Location, "", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE of a session open before the drain: %s %q", resp.Status, body)
	}
}

// TestPatch: on a live session, a fragment of another content type is
// 415, an ICE restart 422, a broken line or candidate 400.
func TestPatch(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	pub := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{})
	tests := []struct {
		name, ctype, body string
		want              int
		says              string
	}{
		{"wrong content type", "application/sdp", "a=end-of-candidates\r\n", http.StatusUnsupportedMediaType, "trickle-ice-sdpfrag"},
		{"ICE restart", "application/trickle-ice-sdpfrag", "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpasswordnew\r\na=mid:0\r\n", http.StatusUnprocessableEntity, "ICE restarts are not supported"},
		{"not a fragment", "application/trickle-ice-sdpfrag", "hello\r\n", http.StatusBadRequest, "not an SDP fragment line"},
		{"broken candidate", "application/trickle-ice-sdpfrag", "a=mid:0\r\na=candidate:garbage\r\n", http.StatusBadRequest, "candidate"},
		{"end of candidates", "application/trickle-ice-sdpfrag", "a=mid:0\r\na=end-of-candidates\r\n", http.StatusNoContent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := whiptest.Request(ctx, t, http.MethodPatch, pub.Location, tt.ctype, "", tt.body)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.says) {
				t.Errorf("PATCH: %s %q, want %d saying %q", resp.Status, body, tt.want, tt.says)
			}
		})
	}
	pub.Connected(ctx, t) // none of it broke the session
}

// TestKicked: a host kicks a WHEP player; its session ends (404 after)
// and its connection closes.
func TestKicked(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	host := r.Dial(ctx, t, client.Config{Room: "live", Name: "boss", Role: protocol.RoleHost})
	player := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=heckler"})
	player.Connected(ctx, t)
	seen := relaytest.WaitEvent(ctx, t, host, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "heckler" })
	kick := &protocol.Targeted{Header: protocol.Header{Type: protocol.TypeKick, ID: "k1"}, Participant: seen.Participant.ID}
	if err := host.Send(kick); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the kicked player's session ends", func() bool { return r.Value(t, "relay_http_sessions", "kind", "whep") == 0 })
	if resp, _ := whiptest.Request(ctx, t, http.MethodDelete, player.Location, "", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE after the kick: %s, want 404", resp.Status)
	}
	waitFor(ctx, t, "the player's connection closes", func() bool {
		s := player.PC.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	})
}

// TestMicReleased: a host takes a WHIP guest off the mic; with nothing to
// hear and no way back to the mic, the guest's session ends and it leaves
// the room (reason left).
func TestMicReleased(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	host := r.Dial(ctx, t, client.Config{Room: "live", Name: "boss", Role: protocol.RoleHost})
	guest := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "role=guest&name=cohost"})
	seen := relaytest.WaitEvent(ctx, t, host, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "cohost" })
	if seen.Participant.Role != protocol.RoleGuest {
		t.Fatalf("joined as %s, want guest", seen.Participant.Role)
	}
	release := &protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicRelease, ID: "r1"}, Participant: seen.Participant.ID}
	if err := host.Send(release); err != nil {
		t.Fatal(err)
	}
	left := relaytest.WaitEvent(ctx, t, host, func(e *protocol.ParticipantLeft) bool { return e.Participant == seen.Participant.ID })
	if left.Reason != "left" {
		t.Errorf("reason %q, want left", left.Reason)
	}
	waitFor(ctx, t, "the session ends", func() bool { return r.Value(t, "relay_http_sessions", "kind", "whip") == 0 })
	if resp, _ := whiptest.Request(ctx, t, http.MethodDelete, guest.Location, "", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE after the release: %s, want 404", resp.Status)
	}
}
