package whip_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
)

// withTURN runs the relay's TURN server on loopback UDP and TCP.
func withTURN(c *server.Config) {
	c.TURN = &server.TURNConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Host: "127.0.0.1"}
}

// transportIs accepts the TURN URLs of one transport.
func transportIs(tr string) func(string) bool {
	return func(u string) bool { return strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport="+tr) }
}

// TestLinksTURN: with TURN on, the 201 of a WHIP and of a WHEP POST
// carries one rel="ice-server" Link per TURN URL, with password
// credentials named after the session's participant that the relay's
// TURN server accepts; two WHEP players that may use only relay
// candidates, gathered through nothing but those Link headers (one over
// TURN/UDP, one over TURN/TCP), hear the WHIP publisher byte for byte.
func TestLinksTURN(t *testing.T) {
	r, ctx := start(t, relaytest.Options{Tune: withTURN})
	ear := r.Dial(ctx, t, client.Config{Room: "live", Name: "watcher", Role: protocol.RoleHost, IgnoreICEServers: true})
	pub := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=OBS"})
	pubID := relaytest.WaitEvent(ctx, t, ear, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "OBS" }).Participant.ID
	checkLinks(t, pub.Links, pubID)

	udp := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "listen=tracks&name=viaudp", ViaLinks: transportIs("udp")})
	udpID := relaytest.WaitEvent(ctx, t, ear, func(e *protocol.ParticipantJoined) bool { return e.Participant.Name == "viaudp" }).Participant.ID
	checkLinks(t, udp.Links, udpID)
	tcp := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "listen=tracks&name=viatcp", ViaLinks: transportIs("tcp")})

	// The credentials open an allocation on the relay's TURN server (its
	// own HMAC check); changed by one character they do not.
	udpURL := udp.Links[0].URL
	user, pass := udp.Links[0].Params["username"], udp.Links[0].Params["credential"]
	if err := allocate(t, udpURL, user, pass+"x"); err == nil {
		t.Error("an allocation with a wrong credential was granted")
	}
	if err := allocate(t, udpURL, user, pass); err != nil {
		t.Errorf("allocation with the Link header's credentials: %v", err)
	}

	pub.Connected(ctx, t)
	stop := make(chan struct{})
	sent, done := pub.SendOpus(ctx, 5, stop)
	for _, p := range []*whiptest.Peer{udp, tcp} {
		p.Connected(ctx, t)
		if got := matchSender(ctx, t, <-trackOf(ctx, t, p), sent); got != sent {
			t.Fatal("a player did not hear the publisher")
		}
		for _, c := range strings.Split(p.PC.LocalDescription().SDP, "\r\n") {
			if strings.HasPrefix(c, "a=candidate:") && !strings.Contains(c, " typ relay") {
				t.Errorf("a relay-only player offered %q", c)
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{"udp", "tcp"} {
		if v := r.Value(t, "relay_turn_allocations", "transport", tr); v < 1 {
			t.Errorf("relay_turn_allocations{transport=%q} = %v, want at least 1", tr, v)
		}
	}
}

// checkLinks: one ice-server link per TURN URL (UDP and TCP), each with
// password credentials for participant, expiring in the future.
func checkLinks(t *testing.T, links []whiptest.Link, participant string) {
	t.Helper()
	if len(links) != 2 || !transportIs("udp")(links[0].URL) || !transportIs("tcp")(links[1].URL) {
		t.Fatalf("Link headers %+v, want a turn: UDP and a turn: TCP URL", links)
	}
	for _, l := range links {
		p := l.Params
		if p["rel"] != "ice-server" || p["credential-type"] != "password" || p["credential"] == "" {
			t.Errorf("Link %+v: want rel=ice-server, a credential, credential-type=password", l)
		}
		exp, id, _ := strings.Cut(p["username"], ":")
		sec, err := strconv.ParseInt(exp, 10, 64)
		if id != participant || err != nil || sec <= time.Now().Unix() {
			t.Errorf("username %q, want a future expiry and participant %s", p["username"], participant)
		}
	}
}

// allocate asks the TURN server at turnURL (UDP) for an allocation.
func allocate(t *testing.T, turnURL, user, pass string) error {
	t.Helper()
	relayed, err := relaytest.TURNClient(t, turnURL, user, pass).Allocate()
	if err != nil {
		return err
	}
	return relayed.Close()
}

// TestLinksCORS: a page of an allowed origin may read Link and Location;
// the OPTIONS answer carries no Link (the credentials need a
// participant, which only the POST makes).
func TestLinksCORS(t *testing.T) {
	r, ctx := start(t, relaytest.Options{Tune: withTURN})
	resp, _ := whiptest.Request(ctx, t, http.MethodOptions, r.HTTPURL+"/whep/live", "", "", "",
		"Origin", r.HTTPURL, "Access-Control-Request-Method", "POST")
	exposed := resp.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"Link", "Location"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if l := resp.Header.Values("Link"); len(l) != 0 {
		t.Errorf("OPTIONS answered with Link %q", l)
	}
}

// TestNoTURNNoLinks: without TURN the 201 has no Link header.
func TestNoTURNNoLinks(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	if l := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{}).Links; len(l) != 0 {
		t.Errorf("Link headers without TURN: %+v", l)
	}
}
