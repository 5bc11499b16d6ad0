package main

import (
	"fmt"

	"github.com/lianmai/relay/loadtest/report"
)

// clusterFigures are the per-node figures of cluster runs (-relays), for
// each node of the first report that has them; a run without that node
// counts as 0. Nodes are compared by position: the runs of one script
// give the same relays in the same order.
func clusterFigures(reps []*report.Report) []figure {
	var nodes []report.Node
	for _, r := range reps {
		if r.Cluster != nil {
			nodes = r.Cluster.Nodes
			break
		}
	}
	var figs []figure
	for i, n := range nodes {
		if !n.Configured {
			continue
		}
		get := func(f func(n *report.Node) float64) func(*report.Report) float64 {
			return func(r *report.Report) float64 {
				if r.Cluster == nil || i >= len(r.Cluster.Nodes) {
					return 0
				}
				return f(&r.Cluster.Nodes[i])
			}
		}
		name := func(what string) string { return fmt.Sprintf("node %d %s", i+1, what) }
		figs = append(figs,
			figure{name("listeners dialed"), get(func(n *report.Node) float64 { return float64(n.ListenersDialed) })},
			figure{name("listeners landed"), get(func(n *report.Node) float64 { return float64(n.Listeners) })},
			figure{name("listeners receiving"), get(func(n *report.Node) float64 { return float64(n.Receivers) })},
			figure{name("publishers landed"), get(func(n *report.Node) float64 { return float64(n.Publishers) })},
			figure{name("join latency p50 (ms)"), get(func(n *report.Node) float64 { return n.FirstPacketMs.P50 })},
			figure{name("join latency p99 (ms)"), get(func(n *report.Node) float64 { return n.FirstPacketMs.P99 })},
			figure{name("first listener's join latency p50 (ms)"), get(func(n *report.Node) float64 { return n.FirstListenerMs.P50 })},
			figure{name("one-way p50 (ms)"), get(func(n *report.Node) float64 { return n.OneWayMs.P50 })},
			figure{name("one-way p99 (ms)"), get(func(n *report.Node) float64 { return n.OneWayMs.P99 })},
			figure{name("loss (%)"), get(func(n *report.Node) float64 { return n.LossPct })},
			figure{name("late (%)"), get(func(n *report.Node) float64 { return n.LatePct })},
			figure{name("relay CPU (% of a core)"), get(func(n *report.Node) float64 { return n.Relay.CPUPct })},
			figure{name("relay packets out/s"), get(func(n *report.Node) float64 { return n.Relay.PacketsOutPerSec })},
			figure{name("routes local"), get(func(n *report.Node) float64 { return n.Relay.RoutesLocal })},
			figure{name("routes redirect"), get(func(n *report.Node) float64 { return n.Relay.RoutesRedirect })},
			figure{name("routes edge"), get(func(n *report.Node) float64 { return n.Relay.RoutesEdge })},
			figure{name("links, edge side"), get(func(n *report.Node) float64 { return n.Relay.LinksEdge })},
			figure{name("links, owner side"), get(func(n *report.Node) float64 { return n.Relay.LinksOwner })},
			figure{name("link packets in/s"), get(func(n *report.Node) float64 { return n.Relay.LinkPacketsInPS })},
		)
	}
	return figs
}
