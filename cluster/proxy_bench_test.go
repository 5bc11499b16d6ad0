package cluster_test

import (
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// BenchmarkProxyPresence measures how long a host on the owner waits to
// see a listener that joins on an edge: from the listener's dial to the
// host's participant_joined for it (the edge's join, its report on the
// link, the owner's proxy). The edge's link is open (another listener
// keeps it); each listener leaves after, and the host sees it go before
// the next op.
func BenchmarkProxyPresence(b *testing.B) {
	owner, edge, ctx := benchEdge(b)
	watcher, err := client.Dial(ctx, client.Config{URL: owner.URL, Room: "live", Name: "Watcher", Role: protocol.RoleHost, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = watcher.Close() })
	keep, err := client.Dial(ctx, client.Config{URL: edge.URL, Room: "live", Name: "Keep", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = keep.Close() })
	relaytest.WaitEvent(ctx, b, watcher, func(ev *protocol.ParticipantJoined) bool { return ev.Participant.ID == keep.ID() })
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c, err := client.Dial(ctx, client.Config{URL: edge.URL, Room: "live", Name: "L", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		relaytest.WaitEvent(ctx, b, watcher, func(ev *protocol.ParticipantJoined) bool { return ev.Participant.ID == c.ID() })
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if err := c.Leave(ctx); err != nil {
			b.Fatal(err)
		}
		relaytest.WaitEvent(ctx, b, watcher, func(ev *protocol.ParticipantLeft) bool { return ev.Participant == c.ID() })
		_ = c.Close()
		b.StartTimer()
	}
	b.StopTimer()
	percentiles(b, lat)
}
