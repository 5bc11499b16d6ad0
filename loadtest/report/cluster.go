package report

import "fmt"

// Cluster is a run over several relays of one cluster (loadtest's
// Config.Relays): per node, where the participants' joins landed (after
// the redirects the client follows), what the listeners that landed there
// got, and the node's cluster metrics. docs/loadtest.md#clusters.
type Cluster struct {
	Nodes []Node `json:"nodes"` // the run's relays in the order given, then any other URL a join landed on
}

// Node is one relay of a cluster run.
type Node struct {
	URL string `json:"url"` // its /ws URL
	// Configured is false for a URL that redirects led to and that the
	// run was not given (a node URL other than the one it was reached by).
	Configured      bool `json:"configured"`
	ListenersDialed int  `json:"listeners_dialed"` // audience members whose join started here
	Listeners       int  `json:"listeners"`        // audience members whose join landed here
	Publishers      int  `json:"publishers"`       // hosts and guests whose join landed here
	Receivers       int  `json:"receivers"`        // of the listeners landed here, those that received packets

	PacketsReceived uint64  `json:"packets_received"` // RTP packets the listeners landed here read, whole run
	ExpectedFrames  int64   `json:"expected_frames"`  // as audio.expected_frames, over these listeners' streams
	LostFrames      int64   `json:"lost_frames"`
	LossPct         float64 `json:"loss_pct"`
	LateFrames      uint64  `json:"late_frames"`
	LatePct         float64 `json:"late_pct"`
	StutterFrames   int64   `json:"stutter_frames"`
	StutterPct      float64 `json:"stutter_pct"`
	OneWayMs        Dist    `json:"one_way_ms"`
	FirstPacketMs   Dist    `json:"first_packet_ms"` // dial to first packet of each publisher already sending, these listeners' streams
	// FirstListenerMs is the same for the first listener of each room to
	// land on this node only: on an edge, the join that opened the room's link.
	FirstListenerMs Dist `json:"first_listener_ms"`

	Relay NodeRelay `json:"relay"`
}

// NodeRelay is one node's figures from its /metrics (and /proc, given its
// PID). Routes count joins from before the ramp to the window's end;
// link packets and the relay's rates cover the window; links and rooms
// are levels at its end. A figure the node does not export stays 0 and
// its flag says so.
type NodeRelay struct {
	MetricsOK        bool    `json:"metrics_ok"`         // /metrics answered at the window's ends
	ClusterMetrics   bool    `json:"cluster_metrics"`    // it exports relay_cluster_* (started with -nats)
	NATSConnected    float64 `json:"nats_connected"`     // relay_cluster_nats_connected at the end
	RoomsOwned       float64 `json:"rooms_owned"`        // relay_cluster_rooms_owned at the end
	RoutesLocal      float64 `json:"routes_local"`       // relay_cluster_routes_total{route="local"}
	RoutesRedirect   float64 `json:"routes_redirect"`    // {route="redirect"}: told to reconnect to the owner
	RoutesEdge       float64 `json:"routes_edge"`        // {route="edge"}: a listener of a room owned elsewhere
	RoutesUnavail    float64 `json:"routes_unavailable"` // {route="unavailable"}
	LinkMetrics      bool    `json:"link_metrics"`       // it exports relay_cluster_links (a relay with edges)
	LinksEdge        float64 `json:"links_edge"`         // relay_cluster_links{side="edge"} at the end
	LinksOwner       float64 `json:"links_owner"`        // relay_cluster_links{side="owner"} at the end
	LinkPacketsIn    float64 `json:"link_packets_in"`    // relay_cluster_link_packets_in_total over the window
	LinkPacketsInPS  float64 `json:"link_packets_in_per_sec"`
	CPUSource        string  `json:"cpu_source"` // "proc", "metrics" or ""
	CPUPct           float64 `json:"cpu_pct"`    // of one core, over the window
	PacketsInPerSec  float64 `json:"packets_in_per_sec"`
	PacketsOutPerSec float64 `json:"packets_out_per_sec"`
}

// ClusterMeasurements is what the measuring side hands over for a
// cluster run: per node, the counts its listeners tallied and the
// snapshots of its /metrics (Before the ramp, Start and End of the window).
type ClusterMeasurements struct {
	Nodes []NodeMeasurements
}

// NodeMeasurements is one node's share of a cluster run.
type NodeMeasurements struct {
	Node                      // the counts; Build fills the percentages, distributions and Relay
	Received           uint64 // in-window frames received by its listeners: what LatePct is a share of
	SenderDropped      int64  // in-window frames their senders dropped
	OneWay             Hist
	FirstPacketMs      []float64
	FirstListenerMs    []float64
	Before, Start, End Snapshot
	WindowSeconds      float64
}

// Labeled returns the key under which loadtest's scrape keeps one label
// set of a relay_cluster_* series in Metrics.Values (besides the sum
// over label sets under the bare name): name{label="value"}.
func Labeled(name, label, value string) string {
	return name + "{" + label + "=\"" + value + "\"}"
}

// figures computes every node's figures.
func (m *ClusterMeasurements) figures() (*Cluster, []string) {
	if m == nil {
		return nil, nil
	}
	c := &Cluster{Nodes: []Node{}}
	var warnings []string
	for i := range m.Nodes {
		nm := &m.Nodes[i]
		n := nm.Node
		n.LossPct = pct(float64(n.LostFrames), float64(n.ExpectedFrames-nm.SenderDropped))
		n.LatePct = pct(float64(n.LateFrames), float64(nm.Received))
		n.StutterPct = pct(float64(n.StutterFrames), float64(n.ExpectedFrames))
		n.OneWayMs = nm.OneWay.Dist()
		n.FirstPacketMs = DistOf(nm.FirstPacketMs)
		n.FirstListenerMs = DistOf(nm.FirstListenerMs)
		if n.Configured {
			n.Relay = nodeRelay(nm)
			if n.Relay.MetricsOK && !n.Relay.ClusterMetrics {
				warnings = append(warnings, fmt.Sprintf("relay %s exports no relay_cluster_* metrics: is it a node of the cluster (-nats)?", n.URL))
			}
		} else {
			warnings = append(warnings, fmt.Sprintf("%d listeners and %d publishers landed on %s, which is none of the run's relays: is a node's -node-url another name for one of them?", n.Listeners, n.Publishers, n.URL))
		}
		if n.Listeners > n.Receivers {
			warnings = append(warnings, fmt.Sprintf("%d of the %d listeners that landed on %s received no packet", n.Listeners-n.Receivers, n.Listeners, n.URL))
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, warnings
}

// nodeRelay is one node's relay figures from its snapshots.
func nodeRelay(nm *NodeMeasurements) NodeRelay {
	before, start, end, window := nm.Before, nm.Start, nm.End, nm.WindowSeconds
	rf := relayFigures(before, start, end, window)
	nr := NodeRelay{MetricsOK: rf.MetricsOK, CPUSource: rf.CPUSource, CPUPct: rf.CPUPct, PacketsOutPerSec: rf.PacketsOutPerSec}
	if window > 0 {
		nr.PacketsInPerSec = round3(rf.PacketsIn / window)
	}
	_, nr.ClusterMetrics = end.Metrics.Value("relay_cluster_nats_connected")
	nr.NATSConnected, _ = end.Metrics.Value("relay_cluster_nats_connected")
	nr.RoomsOwned, _ = end.Metrics.Value("relay_cluster_rooms_owned")
	route := func(r string) float64 {
		d, _ := metricDelta(before.Metrics, end.Metrics, Labeled("relay_cluster_routes_total", "route", r))
		return d
	}
	nr.RoutesLocal, nr.RoutesRedirect, nr.RoutesEdge, nr.RoutesUnavail = route("local"), route("redirect"), route("edge"), route("unavailable")
	_, nr.LinkMetrics = end.Metrics.Value("relay_cluster_links")
	nr.LinksEdge, _ = end.Metrics.Value(Labeled("relay_cluster_links", "side", "edge"))
	nr.LinksOwner, _ = end.Metrics.Value(Labeled("relay_cluster_links", "side", "owner"))
	nr.LinkPacketsIn, _ = metricDelta(start.Metrics, end.Metrics, "relay_cluster_link_packets_in_total")
	if window > 0 {
		nr.LinkPacketsInPS = round3(nr.LinkPacketsIn / window)
	}
	return nr
}

// writeSummary prints one block per node, through the summary's row.
func (c *Cluster) writeSummary(row func(label, format string, args ...any)) {
	if c == nil {
		return
	}
	for i, n := range c.Nodes {
		name := fmt.Sprintf("node %d", i+1)
		if !n.Configured {
			name = "other node"
		}
		row(name, "%s: %d listeners dialed here, %d landed here (%d received packets), %d publishers", n.URL, n.ListenersDialed, n.Listeners, n.Receivers, n.Publishers)
		if n.Listeners > 0 {
			row("  join latency (first packet)", "%s", distMs(n.FirstPacketMs))
			row("  the room's first listener here", "%s", distMs(n.FirstListenerMs))
			row("  loss, late, stutter", "%.3f%% (%d frames), %.3f%% (%d), %.3f%% (%d)", n.LossPct, n.LostFrames, n.LatePct, n.LateFrames, n.StutterPct, n.StutterFrames)
			row("  one-way latency", "%s", distMs(n.OneWayMs))
		}
		if !n.Configured {
			continue
		}
		r := n.Relay
		if !r.MetricsOK {
			row("  relay", "no /metrics")
			continue
		}
		row("  relay", "%.1f%% of a core (%s), %.0f pkt/s in, %.0f pkt/s out", r.CPUPct, orNone(r.CPUSource), r.PacketsInPerSec, r.PacketsOutPerSec)
		if !r.ClusterMetrics {
			row("  cluster", "no relay_cluster_* metrics")
			continue
		}
		row("  cluster", "NATS connected %.0f, rooms owned %.0f; joins routed: %.0f local, %.0f redirect, %.0f edge, %.0f unavailable",
			r.NATSConnected, r.RoomsOwned, r.RoutesLocal, r.RoutesRedirect, r.RoutesEdge, r.RoutesUnavail)
		if r.LinkMetrics {
			row("  links", "%.0f edge, %.0f owner; %.0f packets in over links (%.0f/s)", r.LinksEdge, r.LinksOwner, r.LinkPacketsIn, r.LinkPacketsInPS)
		} else {
			row("  links", "none exported (a relay without edges: listeners are redirected to the owner)")
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
