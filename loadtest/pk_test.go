package loadtest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestPKScenario: two rooms linked by the pk scenario against an
// in-process relay: one link, both directions' set-up times, every host
// hears the linked room's publishers (remote latency samples beside the
// local ones), nothing missing and no failure.
func TestPKScenario(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("relay", func(t *testing.T) {
		rep := runSmall(t, func(sc *Scenario) { sc.Rooms, sc.PK = 2, true })
		k := rep.PK
		if !k.Enabled || k.Links != 1 || len(k.Failures) > 0 {
			t.Fatalf("pk: %+v", k)
		}
		if k.SetupMs.Count != 2 || k.SetupMs.P50 <= 0 {
			t.Errorf("set-up times %+v, want one per host of the link", k.SetupMs)
		}
		if k.RemoteHostMs.Count == 0 || k.LocalHostMs.Count == 0 {
			t.Errorf("host latency: remote %+v, local %+v; want samples of both", k.RemoteHostMs, k.LocalHostMs)
		}
		if rep.Audio.MissingPublishers != 0 || rep.Joins.Failed != 0 {
			t.Errorf("missing %v, join failures %v", rep.Audio.Missing, rep.Joins.Failures)
		}
		t.Logf("pk_accept to the other room's first packet %+v; host to remote host %+v; host to own room %+v", k.SetupMs, k.RemoteHostMs, k.LocalHostMs)
	})
}
