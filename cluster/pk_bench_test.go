package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// BenchmarkPKLink: room live on relay a (its host publishes, and a
// listener of its own hears it there) links with a room of one host on
// relay a (nodes=1) or relay b (nodes=2), in the same run. Reported:
// setup-ms, pk_accept sent → the other host's first packet of live's
// host; and p50/p99 of the link's latency, the arrival of each of live's
// host's packets at the other host less its arrival at live's own
// listener, over b.N packets (one per 10 ms). The link ends (pk_end)
// before the next.
func BenchmarkPKLink(b *testing.B) {
	a, bb, ctx := benchEdge(b)
	hostA, err := client.Dial(ctx, client.Config{URL: a.URL, Room: "live", Name: "HostA2", Role: protocol.RoleHost, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = hostA.Close() })
	rooms := 0
	for _, bc := range []struct {
		name string
		url  string
	}{{"nodes=1", a.URL}, {"nodes=2", bb.URL}} {
		b.Run(bc.name, func(b *testing.B) {
			rooms++
			benchPKLink(ctx, b, a.URL, bc.url, hostA, fmt.Sprintf("pkb%d", rooms))
		})
	}
}

func benchPKLink(ctx context.Context, b *testing.B, urlA, urlB string, hostA *client.Client, roomB string) {
	dial := func(url, room, name, role string) *client.Client {
		c, err := client.Dial(ctx, client.Config{URL: url, Room: room, Name: name, Role: role, Loopback: true, Logger: relaytest.Logger()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	listener := dial(urlA, "live", "L", protocol.RoleAudience)
	direct := record(listener)
	hostB := dial(urlB, roomB, "HostB", protocol.RoleHost)
	remote := record(hostB)
	<-direct.first

	if err := hostA.PKInvite(ctx, roomB); err != nil {
		b.Fatal(err)
	}
	for ev := range hostB.Events() {
		if _, ok := ev.(*protocol.PKInvited); ok {
			break
		}
	}
	start := time.Now()
	if err := hostB.PKAccept(ctx, "live"); err != nil {
		b.Fatal(err)
	}
	var setup time.Duration
	select {
	case t1 := <-remote.first:
		setup = t1.Sub(start)
	case <-ctx.Done():
		b.Fatal("pkb's host never heard live's host")
	}
	time.Sleep(200 * time.Millisecond)
	hop(b, direct, remote, "both hosts")
	b.ReportMetric(float64(setup.Microseconds())/1000, "setup-ms")
	if err := hostA.PKEnd(ctx, roomB); err != nil {
		b.Fatal(err)
	}
	for ev := range hostA.Events() {
		if e, ok := ev.(*protocol.PKEnded); ok && e.Room == roomB {
			break
		}
	}
	_ = listener.Leave(ctx)
	_ = hostB.Leave(ctx)
}
