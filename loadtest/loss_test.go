package loadtest

import (
	"context"
	"testing"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest/report"
	"go.uber.org/goleak"
)

// The relay NACKs missing packets every sfu.NACKInterval (20 ms): a lost
// packet comes back about 10 ms (the gap is noticed at the next packet)
// plus up to one interval after its send time, inside the receivers' 40 ms
// playout deadline. At pion's default of 100 ms most repairs came too late
// and stutter was about 0.8 × the loss (4% at 5%).

// TestLossRepair: every publisher loses 5% of its packets at random on
// the way to the relay (loss_at "network", after its NACK responder kept
// them). The relay's NACKs must bring them back: listeners lose under
// 0.5%, and the repairs arrive in time: stutter under 1%. A run that misses the
// stutter or the loss bound is repeated (up to 3 runs): a neighbour
// holding the CPU makes every stream late, as in TestRunInProcess, and a
// repair that comes after the receiver's window closed (plus its 250 ms
// tail) counts as lost.
func TestLossRepair(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("run", testLossRepair)
}

func testLossRepair(t *testing.T) {
	relay := relaytest.Start(t, relaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()

	sc := ciScenario(t)
	sc.Name = "ci-loss5"
	sc.LossPct, sc.LossBurst, sc.LossAt = 5, 1, LossNetwork
	const stutterBound = 1 // percent
	rep := runRetried(ctx, t, sc, relay.URL,
		func(rep *report.Report) bool { return rep.Audio.StutterPct < stutterBound && rep.Audio.LossPct < 0.5 },
		func(rep *report.Report) bool { return rep.Joins.Failed > 0 || rep.Audio.MissingPublishers > 0 })

	a, u := rep.Audio, rep.Audio.Uplink
	t.Run("every join succeeded and every stream flowed", func(t *testing.T) {
		if rep.Joins.Failed != 0 || a.MissingPublishers != 0 || a.ExpectedFrames == 0 {
			t.Fatalf("joins failed: %v; missing: %v; %d frames expected", rep.Joins.Failures, a.Missing, a.ExpectedFrames)
		}
	})
	t.Run("5% lost on the uplink", func(t *testing.T) {
		// Over a few thousand packets, 3..7% is more than 3 standard
		// deviations either side.
		if u.Packets < 1000 || u.LossPct < 3 || u.LossPct > 7 || a.FramesDropped != 0 {
			t.Fatalf("uplink: %+v; sender-dropped frames %d", u, a.FramesDropped)
		}
	})
	t.Run("the relay NACKed and the publishers retransmitted", func(t *testing.T) {
		if u.NACKs == 0 || u.NACKedPackets < u.Lost/2 || u.Retransmissions == 0 || a.RepairedFrames == 0 {
			t.Fatalf("uplink %+v, repaired frames %d", u, a.RepairedFrames)
		}
	})
	t.Run("loss as received under 0.5%", func(t *testing.T) {
		if a.LossPct >= 0.5 {
			// A repair that arrives after the receiver's window closed
			// counts as lost: on a saturated machine that is timing.
			skipIfSaturated(t, rep, "loss after repair")
			t.Fatalf("loss %.3f%% (%d of %d frames) after repair; uplink lost %.3f%%",
				a.LossPct, a.LostFrames, a.ExpectedFrames, u.LossPct)
		}
	})
	t.Run("stutter under 1%", func(t *testing.T) {
		if a.StutterPct >= stutterBound {
			skipIfSaturated(t, rep, "stutter")
			t.Fatalf("stutter %.3f%% (%d frames, %d late); repairs took %+v", a.StutterPct, a.StutterFrames, a.LateFrames, a.RepairMs)
		}
	})
}
