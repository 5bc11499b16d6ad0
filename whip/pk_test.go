package whip_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

// TestWHEPRemote: a WHEP player (slots, ?listen=tracks) in room wb hears
// the WHIP publisher of room wa once the rooms are linked, unchanged; a
// host of wb mutes it there and the player's slot goes silent while a
// player in wa goes on hearing it (by packets).
func TestWHEPRemote(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	hostA := r.Dial(ctx, t, client.Config{Room: "wa", Name: "HA", Role: protocol.RoleHost})
	hostB := r.Dial(ctx, t, client.Config{Room: "wb", Name: "HB", Role: protocol.RoleHost})
	pub := whiptest.Publish(ctx, t, r.HTTPURL, "wa", whiptest.Options{Query: "name=OBS"})
	playA := whiptest.Play(ctx, t, r.HTTPURL, "wa", whiptest.Options{Query: "listen=tracks"})
	playB := whiptest.Play(ctx, t, r.HTTPURL, "wb", whiptest.Options{Query: "listen=tracks"})
	stop := make(chan struct{})
	sent, done := pub.SendOpus(ctx, 7, stop)
	trA := <-trackOf(ctx, t, playA)

	if err := hostA.PKInvite(ctx, "wb"); err != nil {
		t.Fatal(err)
	}
	relaytest.WaitEvent(ctx, t, hostB, func(e *protocol.PKInvited) bool { return e.Room == "wa" })
	if err := hostB.PKAccept(ctx, "wa"); err != nil {
		t.Fatal(err)
	}
	remote := relaytest.WaitEvent(ctx, t, hostB, func(e *protocol.ParticipantJoined) bool {
		return e.Participant.Role == protocol.RoleRemote && e.Participant.Name == "OBS"
	}).Participant
	trB := <-trackOf(ctx, t, playB)
	for _, p := range whiptest.ReadRTP(ctx, t, trB, 50) {
		if !sent.HasPayload(p.Payload) {
			t.Fatalf("room wb's player got a payload the publisher of wa never sent")
		}
	}

	// Count what each player hears from here on, as it arrives (the
	// tracks' buffers hold what came before: drained first).
	var heardA, heardB atomic.Int64
	var readers sync.WaitGroup
	for _, c := range []struct {
		tr *webrtc.TrackRemote
		n  *atomic.Int64
	}{{trA, &heardA}, {trB, &heardB}} {
		_ = c.tr.SetReadDeadline(time.Time{}) // ReadRTP set one; these readers last as long as the players
		readers.Go(func() {
			for {
				pkt, _, err := c.tr.ReadRTP()
				if err != nil {
					return
				}
				if len(pkt.Payload) > 0 {
					c.n.Add(1)
				}
			}
		})
	}
	// ticks waits for n more packets at room wa's player.
	ticks := func(n int64) {
		t.Helper()
		from := heardA.Load()
		waitFor(ctx, t, "packets at room wa's player", func() bool { return heardA.Load() >= from+n })
	}
	// Both players hear the publisher before the mute (waited for, not
	// compared with wa's count: under load one reader may run late).
	waitFor(ctx, t, "packets at room wb's player before the mute", func() bool { return heardB.Load() >= 10 })
	ticks(10)
	if err := hostB.Command(ctx, map[string]any{"type": "mute", "participant": remote.ID, "muted": true}); err != nil {
		t.Fatal(err)
	}
	ticks(10) // what was on the way
	before := heardB.Load()
	ticks(30)
	if n := heardB.Load() - before; n != 0 {
		t.Errorf("room wb's player got %d packets of the muted remote publisher while room wa's got 30, want none", n)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = playA.PC.Close()
	_ = playB.PC.Close()
	readers.Wait()
}
