package signaling_test

import (
	"context"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
)

// publishWithLevels sends src's frames from pub with the RFC 6464 audio
// level of each frame in its header extension, until ctx ends.
func publishWithLevels(ctx context.Context, pub *client.Publisher, src *opusgen.Source) error {
	id := pub.AudioLevelExtensionID()
	return relaytest.SendOpus(ctx, pub, src, func(_ []byte, pkt *rtp.Packet) error {
		return pkt.Header.SetExtension(id, []byte{src.LastLevel()})
	})
}

// TestSpeakers: of a loud and a silent publisher, only the loud one is
// reported as speaking, with a level in (0, 1].
func TestSpeakers(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	loud := r.join(ctx, t, "talk", "Loud", protocol.RoleHost)
	quiet := r.join(ctx, t, "talk", "Quiet", protocol.RoleGuest)
	aud := r.join(ctx, t, "talk", "A", protocol.RoleAudience)

	voice, err := opusgen.NewSource(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	silence, err := opusgen.NewSilentSource(1)
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	for _, p := range []struct {
		c   *client.Client
		src *opusgen.Source
	}{{loud, voice}, {quiet, silence}} {
		pub, err := p.c.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pub.AudioLevelExtensionID() == 0 {
			t.Fatal("the relay did not negotiate the audio level extension")
		}
		go func() { _ = publishWithLevels(pubCtx, pub, p.src) }()
	}
	// Both tracks flow before we judge.
	for n := 0; n < 2; n++ {
		waitEvent[*protocol.TrackPublished](ctx, t, aud, nil)
	}
	e := waitEvent(ctx, t, aud, func(e *protocol.Speakers) bool { return len(e.Speakers) > 0 })
	if e.Speakers[0].Participant != loud.ID() {
		t.Fatalf("speakers %+v, want the loud publisher first", e.Speakers)
	}
	deadline := time.After(1500 * time.Millisecond)
	for {
		for _, s := range e.Speakers {
			if s.Participant == quiet.ID() {
				t.Fatalf("the silent publisher is listed as speaking: %+v", e.Speakers)
			}
			if s.Level <= 0 || s.Level > 1 {
				t.Errorf("level %v out of (0, 1]", s.Level)
			}
		}
		select {
		case ev := <-aud.Events():
			if s, ok := ev.(*protocol.Speakers); ok {
				e = s
			}
		case <-deadline:
			if n := r.counter(t, "relay_speaking_participants"); n != 1 {
				t.Errorf("relay_speaking_participants = %v, want 1", n)
			}
			return
		}
	}
}
