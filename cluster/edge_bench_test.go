package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// benchEdge is NATS, an owner (relay 0) whose host publishes real Opus in
// room "live", and an edge (relay 1).
func benchEdge(b *testing.B) (owner, edge *relaytest.Relay, ctx context.Context) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	srv := natstest.Start(b)
	owner = relaytest.Start(b, relaytest.Options{NATS: srv.URL(), NodeID: "a", ClusterTTL: ttl, ClusterOpTimeout: opTimeout})
	edge = relaytest.Start(b, relaytest.Options{NATS: srv.URL(), NodeID: "b", ClusterTTL: ttl, ClusterOpTimeout: opTimeout})
	for _, r := range []*relaytest.Relay{owner, edge} { // both have reached the directory
		for r.Value(b, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") < 1 {
			if ctx.Err() != nil {
				b.Fatal("a relay did not reach the directory")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	host, err := client.Dial(ctx, client.Config{URL: owner.URL, Room: "live", Name: "Host", Role: protocol.RoleHost, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = host.Close() })
	publishKept(ctx, b, host)
	return owner, edge, ctx
}

// firstPacket dials a listener through url and returns how long it took
// from the dial to its first media packet; the listener leaves.
func firstPacket(ctx context.Context, b *testing.B, url string) time.Duration {
	start := time.Now()
	c, err := client.Dial(ctx, client.Config{URL: url, Room: "live", Name: "L", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Leave(ctx) }() // leave, not close: a closed client is kept for the grace period
	select {
	case rt := <-c.Tracks():
		for {
			pkt, _, err := rt.Track.ReadRTP()
			if err != nil {
				b.Fatalf("read: %v", err)
			}
			if len(pkt.Payload) > 0 {
				return time.Since(start)
			}
		}
	case <-ctx.Done():
		b.Fatal("no track")
	}
	return 0
}

// BenchmarkEdgeJoin measures an audience join on an edge, from the dial to
// the first media packet: warm, while the edge's link to the owner is
// already open (another listener keeps it); cold, the room's first
// listener on the edge, whose join opens the link.
func BenchmarkEdgeJoin(b *testing.B) {
	b.Run("warm", func(b *testing.B) {
		_, edge, ctx := benchEdge(b)
		keep, err := client.Dial(ctx, client.Config{URL: edge.URL, Room: "live", Name: "Keep", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = keep.Close() })
		firstPacket(ctx, b, edge.URL) // the link is up and carrying
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			lat = append(lat, firstPacket(ctx, b, edge.URL))
		}
		b.StopTimer()
		percentiles(b, lat)
	})
	b.Run("cold", func(b *testing.B) {
		_, edge, ctx := benchEdge(b)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			lat = append(lat, firstPacket(ctx, b, edge.URL))
			b.StopTimer()
			for edge.Value(b, "relay_cluster_links", "side", "edge") != 0 { // the next join opens a new link
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		b.StopTimer()
		percentiles(b, lat)
	})
}

// BenchmarkEdgeDeath measures how long a listener whose edge dies takes
// to hear again: from its connection's end (the edge stopped) to the
// first packet through another edge, dialing again with its resume token
// and the cluster's other relay (client.Config.Relays; the token is
// unknown there: a fresh join, whose link to the owner is already open).
// Each op starts a new edge relay, joins a listener there and stops it.
func BenchmarkEdgeDeath(b *testing.B) {
	owner, other, ctx := benchEdge(b)
	keep, err := client.Dial(ctx, client.Config{URL: other.URL, Room: "live", Name: "Keep", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = keep.Close() })
	nats := owner.Cluster().Conn().ConnectedUrl()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		edge := relaytest.Start(b, relaytest.Options{NATS: nats, NodeID: fmt.Sprintf("e%d", i), ClusterTTL: ttl, ClusterOpTimeout: opTimeout})
		for edge.Value(b, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") < 1 {
			time.Sleep(5 * time.Millisecond)
		}
		l, err := client.Dial(ctx, client.Config{URL: edge.URL, Room: "live", Name: "L", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-l.Tracks():
		case <-ctx.Done():
			b.Fatal("no track on the edge")
		}
		token := l.Joined().Resume
		b.StartTimer()
		edge.Stop()
		<-l.Done()
		start := time.Now()
		again, err := client.Dial(ctx, client.Config{URL: edge.URL, Relays: []string{other.URL}, Room: "live", Name: "L",
			Role: protocol.RoleAudience, Resume: token, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		heard := false
		select {
		case rt := <-again.Tracks():
			for !heard {
				pkt, _, err := rt.Track.ReadRTP()
				if err != nil {
					b.Fatalf("read: %v", err)
				}
				heard = len(pkt.Payload) > 0
			}
		case <-ctx.Done():
			b.Fatal("no track after the edge died")
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		_ = again.Leave(ctx)
		_ = l.Close()
		b.StartTimer()
	}
	b.StopTimer()
	percentiles(b, lat)
}

// BenchmarkEdgeHop measures the latency the edge hop adds: one listener on
// the owner and one on an edge receive the same packets; per packet, the
// edge listener's arrival time less the owner listener's. One op is one
// packet (10 ms of audio), so a run of N ops lasts N × 10 ms.
func BenchmarkEdgeHop(b *testing.B) {
	owner, edge, ctx := benchEdge(b)
	listen := func(url string) (*client.Client, *arrivals) {
		c, err := client.Dial(ctx, client.Config{URL: url, Room: "live", Name: "L", Role: protocol.RoleAudience, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		return c, record(c)
	}
	cd, direct := listen(owner.URL)
	ce, viaEdge := listen(edge.URL)
	defer func() { _ = cd.Close(); _ = ce.Close() }()
	firstPacket(ctx, b, edge.URL) // the link carries
	time.Sleep(200 * time.Millisecond)
	hop(b, direct, viaEdge, "both listeners")
}

// percentiles reports the median and 99th percentile of lat.
func percentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
