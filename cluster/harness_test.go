package cluster_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// Cluster timing in these tests: entries age out 2 s after their owner's
// last heartbeat (heartbeats every 0.67 s: room for a loaded machine under
// the race detector); a directory operation waits at most 2 s.
const (
	ttl          = 2 * time.Second
	opTimeout    = 2 * time.Second
	testDeadline = 60 * time.Second
)

// cluster is a NATS server and three relays on it, in this process.
type cluster struct {
	nats   *natstest.Server
	relays []*relaytest.Relay
}

// startCluster starts NATS and three relays (natsURL(i) says which URL
// relay i uses: the server's, or a proxy's to cut it off), after the
// leak check (run last) and with a context bounded by testDeadline.
func startCluster(t *testing.T, natsURL func(i int, srv *natstest.Server) string) (*cluster, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	c := &cluster{nats: natstest.Start(t)}
	for i := range 3 {
		url := c.nats.URL()
		if natsURL != nil {
			url = natsURL(i, c.nats)
		}
		c.relays = append(c.relays, relaytest.Start(t, relaytest.Options{
			NATS: url, NodeID: string(rune('a' + i)), ClusterTTL: ttl, ClusterOpTimeout: opTimeout}))
	}
	for _, r := range c.relays {
		waitConnected(ctx, t, r)
	}
	return c, ctx
}

// waitConnected waits until r's node has opened the directory (its first
// heartbeat wrote its liveness key).
func waitConnected(ctx context.Context, t *testing.T, r *relaytest.Relay) {
	t.Helper()
	eventually(ctx, t, "node "+r.Cluster().ID()+" to reach the directory", func() bool {
		return r.Value(t, "relay_cluster_nats_connected") == 1 &&
			r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") >= 1
	})
}

// eventually is natstest.Eventually.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	natstest.Eventually(ctx, t, what, cond)
}

// dial joins through url (following redirects) and closes at cleanup.
func dial(ctx context.Context, t *testing.T, url, room, name, role string) *client.Client {
	t.Helper()
	c, err := tryDial(ctx, url, room, name, role)
	if err != nil {
		t.Fatalf("%s joins %s as %s via %s: %v", name, room, role, url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func tryDial(ctx context.Context, url, room, name, role string) (*client.Client, error) {
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return client.Dial(jctx, client.Config{URL: url, Room: room, Name: name, Role: role, Loopback: true, Logger: relaytest.Logger()})
}

// dialEventually retries the join until it succeeds (while the directory
// still names a dead owner, joins fail), and closes at cleanup.
func dialEventually(ctx context.Context, t *testing.T, url, room, name, role string) *client.Client {
	t.Helper()
	var c *client.Client
	eventually(ctx, t, name+" to join "+room+" via "+url, func() bool {
		var err error
		c, err = tryDial(ctx, url, room, name, role)
		return err == nil
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serverError is err's *client.ServerError code, "" if it has none.
func serverError(err error) *client.ServerError {
	var se *client.ServerError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// publish publishes real Opus from c until the test ends.
func publish(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	publishKept(ctx, t, c)
}

// counter counts the RTP packets c receives on all its tracks.
type counter struct {
	n  atomic.Int64
	wg sync.WaitGroup
}

func count(ctx context.Context, t *testing.T, c *client.Client) *counter {
	k := &counter{}
	readTracks(ctx, t, c, &k.wg, func(*rtp.Packet) { k.n.Add(1) })
	return k
}

// readTracks reads every track c receives, handing each packet to on,
// until c or ctx ends; wg counts the readers, and the test's cleanup
// closes c and waits for them.
func readTracks(ctx context.Context, t *testing.T, c *client.Client, wg *sync.WaitGroup, on func(*rtp.Packet)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case rt := <-c.Tracks():
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						pkt, _, err := rt.Track.ReadRTP()
						if err != nil {
							return
						}
						on(pkt)
					}
				}()
			case <-c.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); wg.Wait() })
}

// grows waits until k has counted at least more packets than now.
func (k *counter) grows(ctx context.Context, t *testing.T, what string, more int64) {
	t.Helper()
	from := k.n.Load()
	eventually(ctx, t, what, func() bool { return k.n.Load() >= from+more })
}

// owner is the relay whose URL c joined.
func (cl *cluster) owner(t *testing.T, c *client.Client) int {
	t.Helper()
	for i, r := range cl.relays {
		if r.URL == c.URL() {
			return i
		}
	}
	t.Fatalf("client joined %s, none of the relays", c.URL())
	return -1
}

// roomsOwned sums relay_cluster_rooms_owned over the relays still up.
func (cl *cluster) roomsOwned(t *testing.T, skip ...int) float64 {
	var sum float64
	for i, r := range cl.relays {
		if !slices.Contains(skip, i) {
			sum += r.Value(t, "relay_cluster_rooms_owned")
		}
	}
	return sum
}
