package loadtest

import (
	"context"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest/report"
	"go.uber.org/goleak"
)

// TestRunMixInProcess runs one room whose audience is split between the
// mix and tracks against an in-process relay: each mix listener must get
// exactly the mix (no publisher's track), measured as a class of its own,
// with nothing lost and real Opus decoded; the tracks listeners and the
// publishers get the publishers' tracks as before. A relay that answers
// joined but never sends the mix fails it (missing listeners), and so
// does one that sends the publishers' tracks instead (tracks_instead).
func TestRunMixInProcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("run", testRunMixInProcess)
}

func testRunMixInProcess(t *testing.T) {
	// PassMix: the room layer's mix with its pass-through mixer double
	// (one input re-stamped as the mixer's own stream: real Opus, the
	// mixer's SSRC, sequence numbers and timestamps). What is measured
	// here is the load generator's mix path against the relay's; the real
	// mixer's figures come from make bench (scenarios mix, mix9).
	relay := relaytest.Start(t, relaytest.Options{PassMix: true})
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()

	sc := Scenario{
		Name: "ci-mix", Rooms: 1, Hosts: 1, Guests: 1, Audience: 4,
		AudienceListen: ListenTracks, MixAudience: 2, DecodePerRoom: 1,
		JoinRate: 50, JoinConcurrency: 4, Settle: Duration(2 * time.Second), Duration: Duration(4 * time.Second),
	}
	const stutterBound = 1 // percent, as TestLossRepair's: the mix adds a jitter buffer and a tick
	rep := runRetried(ctx, t, sc, relay.URL,
		func(rep *report.Report) bool {
			x := rep.Audio.Mix
			return x.StutterPct < stutterBound && x.Decoded.StutterPct < stutterBound
		},
		func(rep *report.Report) bool {
			x := rep.Audio.Mix
			return rep.Joins.Failed > 0 || x.MissingListeners > 0 || x.TracksInstead > 0 || x.LostPackets > 0
		})

	x, a := rep.Audio.Mix, rep.Audio
	mixPerRoom, tracksPerRoom, pubs := sc.MixAudience, sc.Audience-sc.MixAudience, sc.Hosts+sc.Guests
	t.Run("every join succeeded", func(t *testing.T) {
		if rep.Joins.Failed != 0 || rep.Joins.Succeeded != sc.Participants() {
			t.Fatalf("joins: %d succeeded, %d failed of %d: %v", rep.Joins.Succeeded, rep.Joins.Failed, sc.Participants(), rep.Joins.Failures)
		}
	})
	t.Run("every mix listener got the mix and only the mix", func(t *testing.T) {
		want := sc.Rooms * mixPerRoom
		if x.Listeners != want || x.Receivers != want || x.Streams != want || x.MissingListeners != 0 || x.TracksInstead != 0 {
			t.Fatalf("mix: %d listeners, %d receivers, %d streams, %d missing (%v), %d got tracks instead; want %d, %d, %d, 0, 0",
				x.Listeners, x.Receivers, x.Streams, x.MissingListeners, x.Missing, x.TracksInstead, want, want, want)
		}
	})
	t.Run("the tracks class is the publishers' tracks only", func(t *testing.T) {
		// Publishers hear each other, tracks listeners every publisher.
		want := sc.Rooms * (pubs*(pubs-1) + tracksPerRoom*pubs)
		if a.Streams != want || a.Receivers != sc.Rooms*(pubs+tracksPerRoom) || a.MissingPublishers != 0 || a.LostFrames != 0 {
			t.Fatalf("tracks: %d streams (want %d), %d receivers, %d missing (%v), %d lost", a.Streams, want, a.Receivers, a.MissingPublishers, a.Missing, a.LostFrames)
		}
	})
	t.Run("no mix packet lost, none out of place", func(t *testing.T) {
		if x.ExpectedPackets == 0 || x.ExpectedFrames == 0 {
			t.Fatalf("nothing of the mix measured: %+v", x)
		}
		if x.LostPackets != 0 || x.UnknownPackets != 0 {
			t.Fatalf("mix: %d of %d packets lost, %d out of place", x.LostPackets, x.ExpectedPackets, x.UnknownPackets)
		}
		t.Logf("mix: %d frames skipped by the mix clock, lateness %+v, join to first packet %+v", x.SkippedFrames, x.LatenessMs, x.FirstPacketMs)
	})
	t.Run("the mix decodes", func(t *testing.T) {
		d := x.Decoded
		if d.Streams != sc.Rooms || d.FramesDecoded == 0 || d.DecodeErrors != 0 {
			t.Fatalf("decoded sample of the mix: %+v", d)
		}
	})
	t.Run("mix stutter under 1%", func(t *testing.T) {
		if x.StutterPct < stutterBound && x.Decoded.StutterPct < stutterBound {
			return
		}
		skipIfSaturated(t, rep, "mix stutter")
		t.Fatalf("mix stutter %.3f%% (%d late, %d skipped by the mix clock), decoded sample %.3f%%",
			x.StutterPct, x.LateFrames, x.SkippedFrames, x.Decoded.StutterPct)
	})
}
