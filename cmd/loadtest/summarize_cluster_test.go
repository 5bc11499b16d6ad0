package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lianmai/relay/loadtest/report"
)

// TestSummarizeCluster checks the per-node medians of cluster runs: by
// node position, a node a run lacks counting 0, nodes the runs were not
// given left out, and nothing per node for runs over one relay.
func TestSummarizeCluster(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, c *report.Cluster) string {
		rep := report.Report{Scenario: json.RawMessage(`{"name":"cluster","rooms":1,"hosts":1,"guests":1,"audience":6}`), Cluster: c}
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	node := func(landed int, edge float64) report.Node {
		return report.Node{URL: "ws://x/ws", Configured: true, ListenersDialed: 2, Listeners: landed, Relay: report.NodeRelay{RoutesEdge: edge}}
	}
	paths := []string{
		write("a.json", &report.Cluster{Nodes: []report.Node{node(6, 0), node(0, 2), {URL: "ws://other/ws", Listeners: 1}}}),
		write("b.json", &report.Cluster{Nodes: []report.Node{node(2, 0), node(2, 4)}}),
		write("c.json", &report.Cluster{Nodes: []report.Node{node(4, 0)}}),
	}
	var out strings.Builder
	if err := summarize(paths, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`node 1 listeners landed\s+4\s+2\s+6`, // median of 6, 2, 4
		`node 2 listeners landed\s+0\s+0\s+2`, // 0, 2 and a run without node 2
		`node 2 routes edge\s+2\s+0\s+4`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "node 3") {
		t.Errorf("a node the runs were not given is summarized:\n%s", out.String())
	}
	out.Reset()
	if err := summarize([]string{write("single.json", nil)}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "node 1") {
		t.Errorf("a run over one relay has per-node figures:\n%s", out.String())
	}
}
