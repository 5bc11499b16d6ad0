package whip_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/internal/whiptest"
	"github.com/pion/webrtc/v4"
)

// TestWHEPTracks: a player with ?listen=tracks and two receiving audio
// m-sections gets the two WHIP publishers' streams unchanged, one in
// each; when one publisher ends, the next one to publish takes its slot
// (no renegotiation) and is heard unchanged too.
func TestWHEPTracks(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	a := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=A"})
	b := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=B"})
	player := whiptest.Play(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "listen=tracks", Slots: 2})
	stopA, stopB := make(chan struct{}), make(chan struct{})
	sentA, doneA := a.SendOpus(ctx, 1, stopA)
	sentB, doneB := b.SendOpus(ctx, 2, stopB)

	tracks := []*webrtc.TrackRemote{<-trackOf(ctx, t, player), <-trackOf(ctx, t, player)}
	got := map[*whiptest.Sent]bool{}
	for _, tr := range tracks {
		got[matchSender(ctx, t, tr, sentA, sentB)] = true
	}
	if !got[sentA] || !got[sentB] {
		t.Fatalf("the two slots did not carry both publishers")
	}

	close(stopA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if resp, body := whiptest.Request(ctx, t, http.MethodDelete, a.Location, "", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE A: %s %s", resp.Status, body)
	}
	c := whiptest.Publish(ctx, t, r.HTTPURL, "live", whiptest.Options{Query: "name=C"})
	stopC := make(chan struct{})
	sentC, doneC := c.SendOpus(ctx, 3, stopC)
	// C is heard in one of the slots that exist (the player made no new
	// track), unchanged but renumbered to continue the slot's stream.
	// Read both until one carries one of C's payloads.
	found := make(chan struct{})
	var readers sync.WaitGroup
	for _, tr := range tracks {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for ctx.Err() == nil {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if sentC.HasPayload(pkt.Payload) {
					select {
					case found <- struct{}{}:
					default:
					}
					return
				}
			}
		}()
	}
	select {
	case <-found:
	case <-ctx.Done():
		t.Fatal("the third publisher was not heard in a freed slot")
	}
	close(stopB)
	close(stopC)
	_ = player.PC.Close() // ends the readers
	readers.Wait()
	for _, done := range []<-chan error{doneB, doneC} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// trackOf is the next track the player gets.
func trackOf(ctx context.Context, t *testing.T, hp *whiptest.Peer) <-chan *webrtc.TrackRemote {
	t.Helper()
	ch := make(chan *webrtc.TrackRemote, 1)
	select {
	case tr := <-hp.Tracks:
		ch <- tr
	case <-ctx.Done():
		t.Fatal("the player got no track")
	}
	return ch
}

// matchSender reads 50 packets of tr and returns the one sender whose
// payloads they all are, byte for byte, under the same sequence numbers.
func matchSender(ctx context.Context, t *testing.T, tr *webrtc.TrackRemote, senders ...*whiptest.Sent) *whiptest.Sent {
	t.Helper()
	pkts := whiptest.ReadRTP(ctx, t, tr, 50)
	for _, s := range senders {
		all := true
		for _, p := range pkts {
			all = all && s.Has(p.SequenceNumber, p.Payload)
		}
		if all {
			return s
		}
	}
	t.Fatalf("the packets of track %s are not all one sender's, unchanged", tr.ID())
	return nil
}
