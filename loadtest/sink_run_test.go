//go:build linux

package loadtest

import (
	"context"
	"testing"

	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// TestRunSinks: sink listeners join and stay connected, the relay writes
// to them as to anyone (its packets out count them), and they are left out
// of the receive figures: no stream, no missing publisher.
func TestRunSinks(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("run", func(t *testing.T) { // the relay's shutdown (a cleanup) before the leak check
		relay := relaytest.Start(t, relaytest.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		sc := Scenario{Name: "sinks", Rooms: 1, Hosts: 1, Audience: 1, SinkAudience: 3, BareReceivers: true,
			JoinRate: 50, JoinConcurrency: 4, Settle: Duration(1e9), Duration: Duration(3e9)}.WithDefaults()
		sc.DecodePerRoom = 0
		rep, err := Run(ctx, sc, Config{URL: relay.URL, Loopback: true, Logger: testLogger(), ClientLog: testLogger()})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Joins.Failed != 0 || rep.Joins.Succeeded != 5 {
			t.Fatalf("joins: %d succeeded, %d failed, want 5: %v", rep.Joins.Succeeded, rep.Joins.Failed, rep.Joins.Failures)
		}
		if rep.Audio.Streams != 1 || rep.Audio.Receivers != 1 || rep.Audio.MissingPublishers != 0 {
			t.Fatalf("%d streams, %d receivers, %d missing; want the one measured listener only", rep.Audio.Streams, rep.Audio.Receivers, rep.Audio.MissingPublishers)
		}
		// Four listeners per packet read: the measured one and the sinks.
		if in, out := rep.Relay.PacketsIn, rep.Relay.PacketsOut; in == 0 || out < 3.5*in {
			t.Fatalf("relay packets in %v, out %v: want about 4 out per packet in (the sinks are written to)", in, out)
		}
		// What the load generator read: the measured listener's 100
		// packets a second, none of the sinks' (their filter dropped them).
		if pps := rep.Loadgen.PacketsPerSec; pps == 0 || pps > 150 {
			t.Fatalf("the load generator read %v packets a second, want the one listener's 100: the sinks' media reached them", pps)
		}
		if rep.Audio.LostFrames != 0 {
			t.Errorf("the measured listener lost %d frames", rep.Audio.LostFrames)
		}
	})
}
