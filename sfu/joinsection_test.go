package sfu_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// TestJoinSection: in a room with nothing published, the first sub offer
// has one receive-only audio m-section and no data channel; ICE and DTLS
// complete on it at join; the client surfaces no track from it; and the
// first track published takes it over, so that the offer carrying the
// track still has one m-section.
func TestJoinSection(t *testing.T) {
	r, ctx := relaytest.StartChecked(t, relaytest.Options{}, 60*time.Second)
	host := r.Dial(ctx, t, client.Config{Room: "join", Name: "host", Role: protocol.RoleHost})
	aud := r.Dial(ctx, t, client.Config{Room: "join", Name: "aud", Role: protocol.RoleAudience})
	if err := aud.SubConnected(ctx); err != nil {
		t.Fatal(err)
	}
	first := aud.SubOfferSDP()
	if n := strings.Count(first, "m="); n != 1 || !strings.Contains(first, "m=audio ") ||
		!strings.Contains(first, "a=recvonly") {
		t.Fatalf("first sub offer has %d m-sections, want one receive-only audio section:\n%s", n, first)
	}
	if strings.Contains(first, "m=application") || strings.Contains(first, "webrtc-datachannel") {
		t.Fatalf("first sub offer has a data channel:\n%s", first)
	}

	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := opusgen.NewSource(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relaytest.SendOpus(sendCtx, pub, src, nil) }()
	defer func() { stop(); <-done }()

	published := relaytest.WaitEvent(ctx, t, aud, func(e *protocol.TrackPublished) bool { return e.Participant == host.ID() })
	// The first track the client surfaces is the published one: a track
	// from the join section would come before it.
	var rt *client.RemoteTrack
	select {
	case rt = <-aud.Tracks():
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	if rt.StreamID != host.ID() || rt.TrackID != published.Track.ID {
		t.Fatalf("first remote track %q/%q, want the published %q/%q", rt.StreamID, rt.TrackID, host.ID(), published.Track.ID)
	}
	if _, _, err := rt.Track.ReadRTP(); err != nil {
		t.Fatal(err)
	}
	offer := aud.SubOfferSDP()
	if n := strings.Count(offer, "m="); n != 1 || !strings.Contains(offer, "a=msid:"+host.ID()+" "+published.Track.ID) {
		t.Fatalf("the offer carrying the track has %d m-sections, want the join section carrying it:\n%s", n, offer)
	}
}
