package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
)

// sentPayloads keeps every payload a publisher sent, to check that
// listeners get them byte for byte.
type sentPayloads struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (s *sentPayloads) has(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[string(p)]
	return ok
}

// publishKept publishes real Opus from c until the test ends, keeping what
// it sends.
func publishKept(ctx context.Context, t *testing.T, c *client.Client) *sentPayloads {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	src, err := opusgen.NewSource(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	sent := &sentPayloads{seen: make(map[string]struct{})}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = relaytest.SendOpus(sctx, pub, src, func(payload []byte, _ *rtp.Packet) error {
			sent.mu.Lock()
			sent.seen[string(payload)] = struct{}{}
			sent.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	return sent
}

// exactCounter counts the packets a listener gets whose payload is one the
// publisher sent, and those with a payload it never sent.
type exactCounter struct {
	ok, bad atomic.Int64
	wg      sync.WaitGroup
}

func hearExact(ctx context.Context, t *testing.T, c *client.Client, sent *sentPayloads) *exactCounter {
	k := &exactCounter{}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			select {
			case rt := <-c.Tracks():
				k.wg.Add(1)
				go func() {
					defer k.wg.Done()
					for {
						pkt, _, err := rt.Track.ReadRTP()
						if err != nil {
							return
						}
						switch {
						case len(pkt.Payload) == 0: // padding
						case sent.has(pkt.Payload):
							k.ok.Add(1)
						default:
							k.bad.Add(1)
						}
					}
				}()
			case <-c.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); k.wg.Wait() })
	return k
}

// One room, its host on relay 0, two listeners on each relay: the
// listeners on relays 1 and 2 are served there (edges: no redirect), each
// edge opens one link however many listeners it has, every listener gets
// the host's payloads byte for byte, and the audience count is the
// room's total. When an edge's last listener leaves, its link closes.
func TestEdgeListenersOnEveryRelay(t *testing.T) {
	cl, ctx := startCluster(t, nil)
	host := dial(ctx, t, cl.relays[0].URL, "live", "Host", protocol.RoleHost)
	sent := publishKept(ctx, t, host)
	type listener struct {
		c *client.Client
		k *exactCounter
	}
	var ls [3][]listener
	for i, r := range cl.relays {
		for j := range 2 {
			c := dial(ctx, t, r.URL, "live", fmt.Sprintf("L%d%d", i, j), protocol.RoleAudience)
			if c.URL() != r.URL {
				t.Fatalf("a listener through relay %d was sent to %s; an edge serves it", i, c.URL())
			}
			ls[i] = append(ls[i], listener{c, hearExact(ctx, t, c, sent)})
		}
	}
	for i := range ls {
		for j, l := range ls[i] {
			eventually(ctx, t, fmt.Sprintf("listener %d%d to hear 50 of the host's packets", i, j), func() bool { return l.k.ok.Load() >= 50 })
			if bad := l.k.bad.Load(); bad != 0 {
				t.Errorf("listener %d%d got %d packets whose payload the host never sent", i, j, bad)
			}
		}
	}
	for i, r := range cl.relays[1:] {
		if v := r.Value(t, "relay_cluster_links", "side", "edge"); v != 1 {
			t.Errorf("relay %d has %v edge links open, want 1 for its 2 listeners", i+1, v)
		}
		if v := r.Value(t, "relay_cluster_routes_total", "route", "edge"); v != 2 {
			t.Errorf("relay %d routed %v joins as edge, want 2", i+1, v)
		}
	}
	if v := cl.relays[0].Value(t, "relay_cluster_links", "side", "owner"); v != 2 {
		t.Errorf("the owner has %v links open, want 2 (one per edge)", v)
	}
	// The edge's listeners hear what its one link carried: each of them
	// no more than the link's count.
	heard := max(ls[1][0].k.ok.Load(), ls[1][1].k.ok.Load())
	if in := cl.relays[1].Value(t, "relay_cluster_link_packets_in_total"); in < float64(heard) {
		t.Errorf("relay 1's link carried %v packets, fewer than its listener heard (%d)", in, heard)
	}
	// Everyone sees the room's total audience: 6.
	for i := range ls {
		c := ls[i][0].c
		relaytest.WaitEvent(ctx, t, c, func(ev *protocol.Audience) bool { return ev.Count == 6 })
	}

	// Relay 2's listeners leave: its link closes, the owner's follows,
	// and the count drops to 4 everywhere.
	for _, l := range ls[2] {
		_ = l.c.Close()
	}
	eventually(ctx, t, "relay 2's link to close", func() bool {
		return cl.relays[2].Value(t, "relay_cluster_links", "side", "edge") == 0 &&
			cl.relays[0].Value(t, "relay_cluster_links", "side", "owner") == 1
	})
	relaytest.WaitEvent(ctx, t, ls[1][0].c, func(ev *protocol.Audience) bool { return ev.Count == 4 })
	relaytest.WaitEvent(ctx, t, ls[0][0].c, func(ev *protocol.Audience) bool { return ev.Count == 4 })
	from := ls[1][1].k.ok.Load()
	eventually(ctx, t, "relay 1's listener to go on hearing", func() bool { return ls[1][1].k.ok.Load() >= from+20 })
}
