package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest/report"
	"go.uber.org/goleak"
)

func TestRunCluster(t *testing.T) {
	defer goleak.VerifyNone(t)
	// NATS and the relays run inside a subtest so that their shutdown
	// (cleanups) comes before the leak check.
	t.Run("run", testRunCluster)
}

// testRunCluster runs a small scenario against NATS and three relays:
// listeners spread over the three, every one of them heard, and the
// report's per-node counts agree with the relays' own route counters. It
// holds whether the relays redirect listeners to the room's owner (no
// edges) or serve them where they joined (edges).
func testRunCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	nats := natstest.Start(t)
	var relays []*relaytest.Relay
	for i := range 3 {
		relays = append(relays, relaytest.Start(t, relaytest.Options{NATS: nats.URL(), NodeID: "n" + string(rune('1'+i))}))
	}
	for _, r := range relays {
		natstest.Eventually(ctx, t, "relay "+r.URL+" to reach the directory", func() bool {
			return r.Value(t, "relay_cluster_nats_connected") == 1 &&
				r.Value(t, "relay_cluster_directory_ops_total", "op", "heartbeat", "result", "ok") >= 1
		})
	}

	sc := Scenario{Name: "cluster-test", Rooms: 1, Hosts: 1, Guests: 1, Audience: 6, JoinRate: 50, JoinConcurrency: 4,
		Settle: Duration(time.Second), Duration: Duration(3 * time.Second), DecodePerRoom: 1}
	cfg := Config{URL: relays[0].URL, Relays: []string{relays[1].URL, relays[2].URL}, Loopback: true,
		Logger: testLogger(), ClientLog: testLogger()}
	rep, err := Run(ctx, sc, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var summary strings.Builder
	_ = rep.WriteSummary(&summary)
	t.Logf("\n%s", summary.String())

	if rep.Joins.Failed != 0 || rep.Joins.Succeeded != sc.Participants() {
		t.Fatalf("joins: %d succeeded, %d failed of %d: %v", rep.Joins.Succeeded, rep.Joins.Failed, sc.Participants(), rep.Joins.Failures)
	}
	if rep.Cluster == nil || len(rep.Cluster.Nodes) != 3 {
		t.Fatalf("cluster report: %+v, want 3 nodes (a join landed elsewhere?)", rep.Cluster)
	}
	nodes := rep.Cluster.Nodes
	owner := slices.IndexFunc(nodes, func(n report.Node) bool { return n.Publishers > 0 })
	t.Run("publishers on the owner", func(t *testing.T) {
		if owner < 0 || nodes[owner].Publishers != sc.Hosts+sc.Guests || nodes[owner].Relay.RoomsOwned != 1 {
			t.Fatalf("publishers landed: %v; rooms owned: %v", field(nodes, func(n report.Node) float64 { return float64(n.Publishers) }),
				field(nodes, func(n report.Node) float64 { return n.Relay.RoomsOwned }))
		}
	})
	if owner < 0 {
		return
	}
	t.Run("listeners spread round-robin", func(t *testing.T) {
		for i, n := range nodes {
			if !n.Configured || n.URL != relays[i].URL || n.ListenersDialed != sc.Audience/3 {
				t.Errorf("node %d: %s configured %v, %d listeners dialed; want %s, 2", i+1, n.URL, n.Configured, n.ListenersDialed, relays[i].URL)
			}
		}
	})
	t.Run("every listener landed and received packets", func(t *testing.T) {
		landed := 0
		for i, n := range nodes {
			landed += n.Listeners
			if n.Receivers != n.Listeners {
				t.Errorf("node %d: %d of %d listeners received packets", i+1, n.Receivers, n.Listeners)
			}
			if n.Listeners > 0 && (n.PacketsReceived == 0 || n.ExpectedFrames == 0 || n.FirstPacketMs.Count == 0 || n.FirstListenerMs.Count == 0 || n.OneWayMs.Count == 0) {
				t.Errorf("node %d: listeners but no figures: %+v", i+1, n)
			}
			if n.LostFrames != 0 {
				t.Errorf("node %d: %d frames lost on loopback", i+1, n.LostFrames)
			}
		}
		if landed != sc.Audience || rep.Audio.MissingPublishers != 0 {
			t.Fatalf("%d listeners landed on the nodes, want %d; missing: %v", landed, sc.Audience, rep.Audio.Missing)
		}
	})
	t.Run("counts agree with the relays' routes", func(t *testing.T) {
		edges := 0 // relays serving listeners of the room owned elsewhere: one link each
		for i, n := range nodes {
			if i != owner && n.Listeners > 0 {
				edges++
			}
		}
		if got := nodes[owner].Relay.LinksOwner; int(got) != edges {
			t.Errorf("the owner has %v links to its room, %d relays serve its listeners", got, edges)
		}
		for i, n := range nodes {
			r := n.Relay
			if !r.MetricsOK || !r.ClusterMetrics || r.NATSConnected != 1 || r.CPUSource != "metrics" {
				t.Errorf("node %d: relay figures %+v", i+1, r)
				continue
			}
			if i == owner {
				// The owner served everyone that landed on it (its own
				// joins and the redirected ones) and, with edges, each
				// edge's link to the room.
				if int(r.RoutesLocal) != n.Listeners+n.Publishers+int(r.LinksOwner) || r.RoutesEdge != 0 {
					t.Errorf("owner (node %d): routes local %v edge %v; %d listeners and %d publishers landed, %v links to it",
						i+1, r.RoutesLocal, r.RoutesEdge, n.Listeners, n.Publishers, r.LinksOwner)
				}
				continue
			}
			// A listener joining on a non-owner takes the edge route;
			// without edges it is redirected and lands on the owner.
			if int(r.RoutesEdge) != n.ListenersDialed || r.RoutesLocal != 0 {
				t.Errorf("node %d: routes edge %v local %v; %d listeners dialed here", i+1, r.RoutesEdge, r.RoutesLocal, n.ListenersDialed)
			}
			switch n.Listeners {
			case 0: // redirected to the owner
			case n.ListenersDialed: // served here, over one link to the owner
				if !r.LinkMetrics || r.LinksEdge != 1 || r.LinkPacketsIn == 0 {
					t.Errorf("node %d serves %d listeners of a room owned elsewhere: links %+v", i+1, n.Listeners, r)
				}
			default:
				t.Errorf("node %d: %d of its %d listeners landed here: some redirected, some not", i+1, n.Listeners, n.ListenersDialed)
			}
		}
	})
	t.Run("JSON holds every documented cluster field", func(t *testing.T) {
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		flatten("", m, have)
		doc := map[string]bool{}
		for _, k := range documentedFieldsIn(t, "## Cluster report fields", 20) {
			doc[k] = true
			if !have[k] {
				t.Errorf("documented field %q is not in the JSON report", k)
			}
		}
		for k := range have {
			if strings.HasPrefix(k, "cluster") && !doc[k] {
				t.Errorf("JSON field %q is not documented in docs/loadtest.md's cluster report fields", k)
			}
		}
	})
}

func field(nodes []report.Node, f func(report.Node) float64) []float64 {
	var v []float64
	for _, n := range nodes {
		v = append(v, f(n))
	}
	return v
}

func TestClusterConfigErrors(t *testing.T) {
	good := "ws://127.0.0.1:1/ws"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"not a WebSocket URL", Config{URL: good, Relays: []string{"http://127.0.0.1:2/ws"}}, "want ws://host:port/ws"},
		{"no host", Config{URL: good, Relays: []string{"ws:///ws"}}, "want ws://host:port/ws"},
		{"a relay twice", Config{URL: good, Relays: []string{"ws://127.0.0.1:2/ws", "WS://127.0.0.1:2/ws"}}, "given twice"},
		{"-url again in -relays", Config{URL: good, Relays: []string{good}}, "given twice"},
		{"PIDs for fewer relays", Config{URL: good, Relays: []string{"ws://127.0.0.1:2/ws"}, RelayPIDs: []int{1, 2}}, "2 PIDs in -relay-pids for 1 relays"},
		{"a PID not positive", Config{URL: good, Relays: []string{"ws://127.0.0.1:2/ws"}, RelayPIDs: []int{0}}, "PIDs are positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), ciScenario(t), tc.cfg)
			if !errors.Is(err, ErrBadScenario) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v; want ErrBadScenario saying %q", err, tc.want)
			}
		})
	}
}

func TestClusterUnreachableRelay(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("run", func(t *testing.T) {
		relay := relaytest.Start(t, relaytest.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		// Port 1 on loopback: nothing listens there.
		_, err := Run(ctx, ciScenario(t), Config{URL: relay.URL, Relays: []string{"ws://127.0.0.1:1/ws"}, WaitReady: 300 * time.Millisecond, Loopback: true})
		if !errors.Is(err, ErrRelayUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "-relays") {
			t.Fatalf("Run with an unreachable relay in -relays: %v, want ErrRelayUnreachable naming it", err)
		}
	})
}

func TestClusterLabels(t *testing.T) {
	page := `# TYPE relay_cluster_routes_total counter
relay_cluster_routes_total{route="local"} 7
relay_cluster_routes_total{route="edge"} 3
# TYPE relay_cluster_links gauge
relay_cluster_links{side="edge"} 1
relay_cluster_links{side="owner"} 2
# TYPE relay_cluster_directory_ops_total counter
relay_cluster_directory_ops_total{op="lookup",result="ok"} 5
# TYPE relay_packets_dropped_total counter
relay_packets_dropped_total{reason="queue_full"} 3
`
	m, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{
		"relay_cluster_routes_total":                                   10,
		report.Labeled("relay_cluster_routes_total", "route", "local"): 7,
		report.Labeled("relay_cluster_routes_total", "route", "edge"):  3,
		report.Labeled("relay_cluster_links", "side", "owner"):         2,
		"relay_cluster_directory_ops_total":                            5,
		"relay_packets_dropped_total":                                  3,
	} {
		if got, ok := m.Value(key); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	// Only one-label series of the cluster are kept by label set.
	for key := range m.Values {
		if strings.Contains(key, "{") && !strings.HasPrefix(key, "relay_cluster_") || strings.Contains(key, "op=") {
			t.Errorf("unexpected labeled key %q", key)
		}
	}
}

// TestClusterTally checks where participants are counted: by the node
// their join landed on, compared by scheme, host and path, a URL the run
// was not given becoming a node of its own.
func TestClusterTally(t *testing.T) {
	c, err := newClusterRun(Config{URL: "ws://127.0.0.1:1/ws", Relays: []string{"ws://127.0.0.1:2/ws", "ws://127.0.0.1:3/ws"}, RelayPIDs: []int{22, 33}})
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{c.nodeFor(0), c.nodeFor(1), c.nodeFor(2), c.nodeFor(3)}; !slices.Equal(got, []int{0, 1, 2, 0}) {
		t.Fatalf("audience spread %v, want round-robin", got)
	}
	if c.nodes[1].pid != 22 || c.nodes[2].metricsURL != "http://127.0.0.1:3/metrics" {
		t.Fatalf("node 2 pid %d, node 3 metrics %s", c.nodes[1].pid, c.nodes[2].metricsURL)
	}
	for _, p := range []*participant{
		{role: roleHost, node: 0, landed: "ws://127.0.0.1:1/ws"},
		{role: roleAudience, node: 1, landed: "WS://127.0.0.1:1/ws"}, // redirected to the owner
		{role: roleAudience, node: 2, landed: "ws://127.0.0.1:3/ws"},
		{role: roleAudience, node: 2, landed: "ws://localhost:3/ws"}, // another name: not one of the run's
		{role: roleAudience, node: 1},                                // never joined
	} {
		c.addParticipantLocked(p, nil, nil)
	}
	m := c.measurementsLocked()
	type counts struct{ dialed, landed, pubs, receivers int }
	var got []counts
	for _, n := range m.Nodes {
		got = append(got, counts{n.ListenersDialed, n.Listeners, n.Publishers, n.Receivers})
	}
	want := []counts{{0, 1, 1, 0}, {1, 0, 0, 0}, {2, 1, 0, 0}, {0, 1, 0, 0}}
	if !slices.Equal(got, want) || m.Nodes[3].Configured || m.Nodes[3].URL != "ws://localhost:3/ws" {
		t.Fatalf("per node (dialed, landed, publishers, receivers) %v, want %v; extra node %+v", got, want, m.Nodes[3].Node)
	}
	// Join latencies: all of a node's listeners, and its first listener's
	// (the earliest dial) apart.
	for _, l := range []struct {
		dialNs int64
		ms     int64
	}{{300, 7}, {100, 50}, {200, 9}, {100, 60}} {
		p := &participant{role: roleAudience, room: 0, landed: "ws://127.0.0.1:2/ws", dialNs: l.dialNs}
		c.addStreamLocked(p, &streamStats{packets: 4, received: 3}, streamResult{expected: 3, joinNs: l.ms * 1e6})
	}
	n := c.measurementsLocked().Nodes[1]
	if !slices.Equal(n.FirstPacketMs, []float64{7, 50, 9, 60}) || !slices.Equal(n.FirstListenerMs, []float64{50, 60}) || n.PacketsReceived != 16 || n.Received != 12 {
		t.Fatalf("node 2: join latencies %v, first listener's %v, %d packets, %d frames received", n.FirstPacketMs, n.FirstListenerMs, n.PacketsReceived, n.Received)
	}
	var none *clusterRun
	none.addParticipantLocked(&participant{landed: "ws://x/ws"}, nil, nil)
	if none.measurementsLocked() != nil || none.nodeFor(5) != 0 {
		t.Fatal("a single-relay run has cluster state")
	}
}
