package cluster

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/sfu"
)

// BenchmarkRouteLookup measures a join's routing on a node that does not
// own the room: Route's Get of the room's entry and its ping of the owner
// over a real NATS server on loopback (embedded, JetStream, memory-stored
// bucket), ending in a redirect. It reports the median and 99th
// percentile of the per-call latency (p50-ns, p99-ns) besides the mean.
func BenchmarkRouteLookup(b *testing.B) {
	srv := natstest.Start(b)
	owner, other := benchNode(b, srv.URL(), "owner"), benchNode(b, srv.URL(), "other")
	ctx := context.Background()
	benchReady(b, owner, "room")
	owner.RoomCreated("room")
	benchReady(b, other, "warmup")
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rt, err := other.Route(ctx, "room", sfu.RoleHost)
		lat = append(lat, time.Since(start))
		if err != nil || rt.Kind != sfu.RouteRedirect {
			b.Fatalf("route %+v, %v; want a redirect", rt, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkDirectoryGet measures the directory lookup alone: one Get of a
// room's entry.
func BenchmarkDirectoryGet(b *testing.B) {
	srv := natstest.Start(b)
	n := benchNode(b, srv.URL(), "owner")
	ctx := context.Background()
	benchReady(b, n, "room")
	d := n.directory()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		e, _, err := d.lookup(ctx, "room")
		lat = append(lat, time.Since(start))
		if err != nil || e.Node != "owner" {
			b.Fatalf("lookup %+v, %v", e, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkClaimRelease measures a new room's directory work on its owner:
// the claim (a lookup that finds nothing, then create-if-absent) and, when
// the room empties, the release.
func BenchmarkClaimRelease(b *testing.B) {
	srv := natstest.Start(b)
	n := benchNode(b, srv.URL(), "owner")
	ctx := context.Background()
	benchReady(b, n, "warmup")
	d := n.directory()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rt, err := n.Route(ctx, "room", sfu.RoleHost)
		lat = append(lat, time.Since(start))
		if err != nil || rt.Kind != sfu.RouteLocal {
			b.Fatalf("route %+v, %v; want local", rt, err)
		}
		n.mu.Lock()
		c := n.owned["room"]
		delete(n.owned, "room")
		n.mu.Unlock()
		n.release(d, "room", c.rev)
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func benchNode(b *testing.B, url, id string) *Node {
	n, err := Start(Config{NATSURL: url, NodeID: id, NodeURL: "ws://" + id + ".test/ws", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	return n
}

// benchReady routes room until the node has opened the directory.
func benchReady(b *testing.B, n *Node, room string) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := n.Route(context.Background(), room, sfu.RoleHost); err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the node did not reach the directory within 10 s")
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
}
