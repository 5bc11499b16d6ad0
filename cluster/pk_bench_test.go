package cluster_test

import (
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// BenchmarkPKAcrossNodes: room live on relay a (its host publishes, and a
// listener of its own hears it there), room pkb on relay b (its host).
// The rooms link; reported: setup-ms, pk_accept sent → pkb's host's first
// packet of live's host; and the link's added latency, the arrival of
// each of live's host's packets at pkb's host (across the nodes) less its
// arrival at live's own listener (one forward on one node, which is what
// a link on one node costs: the linked room shares the UpTrack), p50 and
// p99 over b.N packets (one per 10 ms).
func BenchmarkPKAcrossNodes(b *testing.B) {
	a, bb, ctx := benchEdge(b)
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
	hostA := dial(a.URL, "live", "HostA2", protocol.RoleHost)
	listen(dial(a.URL, "live", "L", protocol.RoleAudience), direct)
	hostB := dial(bb.URL, "pkb", "HostB", protocol.RoleHost)
	listen(hostB, remote)
	<-direct.first

	if err := hostA.PKInvite(ctx, "pkb"); err != nil {
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
}
