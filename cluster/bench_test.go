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

// The benchmarks run against a real NATS server on loopback (embedded,
// JetStream, memory-stored buckets) and report the median and 99th
// percentile of the per-call latency (p50-ns, p99-ns) besides the mean.

// BenchmarkRouteLookup measures a join's routing on a node that does not
// own the room: Route's Get of the room's entry and its ping of the
// owner, ending in a redirect.
func BenchmarkRouteLookup(b *testing.B) {
	srv := natstest.Start(b)
	owner, other := benchNode(b, srv.URL(), "owner"), benchNode(b, srv.URL(), "other")
	benchReady(b, owner, "room")
	owner.RoomCreated("room")
	benchReady(b, other, "warmup")
	measure(b, func(ctx context.Context) {
		if rt, err := other.Route(ctx, "room", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteRedirect {
			b.Fatalf("route %+v, %v; want a redirect", rt, err)
		}
	}, nil)
}

// BenchmarkDirectoryGet measures the directory lookup alone: one Get of a
// room's entry.
func BenchmarkDirectoryGet(b *testing.B) {
	srv := natstest.Start(b)
	n := benchNode(b, srv.URL(), "owner")
	benchReady(b, n, "room")
	d := n.directory()
	measure(b, func(ctx context.Context) {
		if e, _, err := d.lookup(ctx, "room"); err != nil || e.Node != "owner" {
			b.Fatalf("lookup %+v, %v", e, err)
		}
	}, nil)
}

// BenchmarkClaimRelease measures a new room's claim on its owner (a Get
// that finds nothing, then create-if-absent); the release when the room
// empties runs between the timed calls.
func BenchmarkClaimRelease(b *testing.B) {
	srv := natstest.Start(b)
	n := benchNode(b, srv.URL(), "owner")
	benchReady(b, n, "warmup")
	d := n.directory()
	measure(b, func(ctx context.Context) {
		if rt, err := n.Route(ctx, "room", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteLocal {
			b.Fatalf("route %+v, %v; want local", rt, err)
		}
	}, func() {
		n.mu.Lock()
		c := n.unholdLocked("room")
		n.mu.Unlock()
		n.release(d, "room", c.rev)
	})
}

// measure times op b.N times (then, untimed, after) and reports the
// percentiles.
func measure(b *testing.B, op func(context.Context), after func()) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		op(ctx)
		lat = append(lat, time.Since(start))
		if after != nil {
			b.StopTimer()
			after()
			b.StartTimer()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
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
