package loadtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

// A run against a cluster of three relays on one NATS server: hosts and
// guests join relay 0, the audience is spread over all three
// (Config.ListenerURLs). Every join succeeds, every receiver gets every
// publisher without losing a frame, and the relays that do not own a room
// serve its listeners over one link each.
func TestRunSpreadOverCluster(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("run", testRunSpreadOverCluster)
}

func testRunSpreadOverCluster(t *testing.T) {
	srv := natstest.Start(t)
	var relays []*relaytest.Relay
	var urls []string
	for _, id := range []string{"a", "b", "c"} {
		r := relaytest.Start(t, relaytest.Options{NATS: srv.URL(), NodeID: id, ClusterTTL: time.Second, ClusterOpTimeout: 500 * time.Millisecond})
		relays, urls = append(relays, r), append(urls, r.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	for _, r := range relays { // every relay has reached the directory
		for r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") < 1 {
			if ctx.Err() != nil {
				t.Fatal("a relay did not reach the directory")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sc := ciScenario(t)
	rep, err := Run(ctx, sc, Config{URL: urls[0], ListenerURLs: urls, Loopback: true, Logger: testLogger(), ClientLog: testLogger()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var summary strings.Builder
	_ = rep.WriteSummary(&summary)
	t.Logf("run:\n%s", summary.String())
	if rep.Joins.Failed != 0 || rep.Joins.Succeeded != sc.Participants() {
		t.Fatalf("joins: %d succeeded, %d failed of %d planned: %v", rep.Joins.Succeeded, rep.Joins.Failed, sc.Participants(), rep.Joins.Failures)
	}
	pubs := sc.Hosts + sc.Guests
	if want := sc.Rooms * ((pubs+sc.Audience)*pubs - pubs); rep.Audio.Streams != want || rep.Audio.MissingPublishers != 0 {
		t.Errorf("streams %d (want %d), publishers missing %d", rep.Audio.Streams, want, rep.Audio.MissingPublishers)
	}
	if rep.Audio.LostFrames != 0 {
		t.Errorf("%d frames lost", rep.Audio.LostFrames)
	}
	var edge float64
	for _, r := range relays {
		edge += r.Value(t, "relay_cluster_routes_total", "route", "edge")
	}
	// Each room's owner serves a third of its audience; the other two
	// relays serve the rest as edges.
	if edge < float64(sc.Rooms*sc.Audience)/2 {
		t.Errorf("%v listeners served by edges, want about two thirds of %d", edge, sc.Rooms*sc.Audience)
	}
}

// A listener URL that is not a WebSocket URL is refused before the run,
// naming it; the audience is spread over the list in turn.
func TestListenerURLs(t *testing.T) {
	cfg := Config{URL: "ws://a:1/ws", ListenerURLs: []string{"ws://a:1/ws", "http://b:2/ws"}}
	if err := cfg.validate(); !errors.Is(err, ErrBadScenario) || !strings.Contains(err.Error(), "http://b:2/ws") {
		t.Fatalf("validate: %v, want ErrBadScenario naming the bad URL", err)
	}
	cfg.ListenerURLs[1] = "ws://b:2/ws"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	next := func() uint64 { n++; return n - 1 }
	var got []string
	for _, role := range []string{roleAudience, "host", roleAudience, roleAudience} {
		got = append(got, cfg.joinURL(role, next))
	}
	if want := []string{"ws://a:1/ws", "ws://a:1/ws", "ws://b:2/ws", "ws://a:1/ws"}; !slices.Equal(got, want) {
		t.Fatalf("join URLs %q, want %q", got, want)
	}
}
