package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// clusterSnap is a node's snapshot at second sec: k-scaled counters and
// its cluster series, by label set as loadtest's scrape keeps them.
func clusterSnap(sec, k float64, links bool) Snapshot {
	s := snapAt(sec, k, false)
	v := s.Metrics.Values
	v["relay_packets_in_total"] = k * 100
	v["relay_cluster_nats_connected"] = 1
	v["relay_cluster_rooms_owned"] = 1
	v[Labeled("relay_cluster_routes_total", "route", "local")] = k * 3
	v[Labeled("relay_cluster_routes_total", "route", "edge")] = k
	if links {
		v["relay_cluster_links"] = 1
		v[Labeled("relay_cluster_links", "side", "edge")] = 1
		v["relay_cluster_link_packets_in_total"] = k * 500
	}
	return s
}

func TestBuildCluster(t *testing.T) {
	node := func(url string, configured, links bool) NodeMeasurements {
		nm := NodeMeasurements{Node: Node{URL: url, Configured: configured, ListenersDialed: 2, Listeners: 2, Receivers: 2,
			ExpectedFrames: 1000, LostFrames: 10, LateFrames: 4},
			Received: 400, FirstPacketMs: []float64{10, 20}, FirstListenerMs: []float64{20}, WindowSeconds: 10}
		if configured {
			nm.Before, nm.Start, nm.End = clusterSnap(0, 1, links), clusterSnap(10, 2, links), clusterSnap(20, 4, links)
		}
		nm.OneWay.Add(int64(time.Millisecond))
		return nm
	}
	quiet := node("ws://c/ws", true, false)
	quiet.Receivers = 1
	quiet.End.Metrics = &Metrics{Values: map[string]float64{"relay_packets_out_total": 0}} // a relay without -nats
	m := &Measurements{Scenario: json.RawMessage(`{"name":"t"}`), Start: snapAt(10, 2, false), End: snapAt(20, 4, false),
		Cluster: &ClusterMeasurements{Nodes: []NodeMeasurements{node("ws://a/ws", true, false), node("ws://b/ws", true, true), quiet, node("ws://x/ws", false, false)}}}
	rep := Build(m)
	if rep.Cluster == nil || len(rep.Cluster.Nodes) != 4 {
		t.Fatalf("cluster %+v", rep.Cluster)
	}
	a, b := rep.Cluster.Nodes[0], rep.Cluster.Nodes[1]
	if a.LossPct != 1 || a.LatePct != 1 || a.FirstPacketMs.Count != 2 || a.FirstPacketMs.P50 != 10 || a.FirstListenerMs.Max != 20 || a.OneWayMs.Count != 1 {
		t.Fatalf("node a's audio: %+v", a)
	}
	r := a.Relay
	// Routes from Before (k=1) to End (k=4); rates over the 10 s window (k=2 to 4).
	if !r.MetricsOK || !r.ClusterMetrics || r.RoutesLocal != 9 || r.RoutesEdge != 3 || r.PacketsInPerSec != 20 || r.PacketsOutPerSec != 400 ||
		r.CPUSource != "metrics" || r.LinkMetrics || r.RoomsOwned != 1 || r.NATSConnected != 1 {
		t.Fatalf("node a's relay: %+v", r)
	}
	if r := b.Relay; !r.LinkMetrics || r.LinksEdge != 1 || r.LinksOwner != 0 || r.LinkPacketsIn != 1000 || r.LinkPacketsInPS != 100 {
		t.Fatalf("node b's links: %+v", r)
	}
	warned := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{
		"relay ws://c/ws exports no relay_cluster_* metrics",
		"1 of the 2 listeners that landed on ws://c/ws received no packet",
		"landed on ws://x/ws, which is none of the run's relays",
	} {
		if !strings.Contains(warned, want) {
			t.Errorf("warnings %q lack %q", rep.Warnings, want)
		}
	}
	var sum strings.Builder
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node 1", "node 2", "node 3", "other node", "1 edge, 0 owner; 1000 packets in over links (100/s)", "no relay_cluster_* metrics"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	if Build(&Measurements{}).Cluster != nil {
		t.Error("a run over one relay has a cluster section")
	}
}
