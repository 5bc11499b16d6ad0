package cluster_test

import (
	"context"
	"fmt"
	"sync"
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
	type arrival struct {
		mu    sync.Mutex
		at    map[string]time.Time
		dup   map[string]bool
		first chan time.Time // the first packet's time; buffered 1
	}
	listen := func(c *client.Client, ar *arrival) {
		go func() {
			rt := <-c.Tracks()
			if rt == nil {
				return
			}
			for {
				pkt, _, err := rt.Track.ReadRTP()
				if err != nil {
					return
				}
				now := time.Now()
				if len(pkt.Payload) == 0 {
					continue
				}
				select {
				case ar.first <- now:
				default:
				}
				k := string(pkt.Payload)
				ar.mu.Lock()
				if ar.at != nil {
					if _, seen := ar.at[k]; seen {
						ar.dup[k] = true
					}
					ar.at[k] = now
				}
				ar.mu.Unlock()
			}
		}()
	}
	direct := &arrival{first: make(chan time.Time, 1)}
	remote := &arrival{first: make(chan time.Time, 1)}
	listener := dial(urlA, "live", "L", protocol.RoleAudience)
	listen(listener, direct)
	hostB := dial(urlB, roomB, "HostB", protocol.RoleHost)
	listen(hostB, remote)
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
	for _, ar := range []*arrival{direct, remote} {
		ar.mu.Lock()
		ar.at, ar.dup = make(map[string]time.Time, b.N), make(map[string]bool)
		ar.mu.Unlock()
	}
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * 10 * time.Millisecond)
	b.StopTimer()
	time.Sleep(100 * time.Millisecond)
	direct.mu.Lock()
	remote.mu.Lock()
	var lat []time.Duration
	for k, t0 := range direct.at {
		if t1, ok := remote.at[k]; ok && !direct.dup[k] && !remote.dup[k] {
			lat = append(lat, t1.Sub(t0))
		}
	}
	remote.mu.Unlock()
	direct.mu.Unlock()
	if len(lat) < b.N/2 {
		b.Fatalf("only %d of ~%d packets reached both hosts", len(lat), b.N)
	}
	percentiles(b, lat)
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
