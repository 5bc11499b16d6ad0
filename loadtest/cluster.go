package loadtest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lianmai/relay/loadtest/report"
	dto "github.com/prometheus/client_model/go"
)

// A run over several relays of one cluster (Config.Relays): the audience
// is spread round-robin over the relays, publishers dial the first (which
// redirects them to the room's owner), and each participant is counted on
// the node its join landed on (client.URL, after the redirects it
// followed). docs/loadtest.md#clusters.

// clusterRun is a cluster run's per-node state; the runner's is nil for
// one relay, and every method is a no-op on nil.
type clusterRun struct {
	nodes []*clusterNode // the run's relays in order, then URLs joins landed on that the run was not given
}

// clusterNode is one relay of a cluster run.
type clusterNode struct {
	url, metricsURL string
	key             string // url normalized, to match where a join landed
	pid             int
	// The snapshots of its /metrics: before the ramp, at the window's
	// start and end. Written by the run's goroutine between phases.
	snaps [3]report.Snapshot
	tally report.NodeMeasurements // guarded by the runner's mu
	first map[int]*opener         // by room: its first listener here; guarded by the runner's mu
}

// opener is the first listener of a room (the earliest dial) to land on
// a node (on an edge, the join that opens the room's link) and its
// streams' join latencies.
type opener struct {
	dialNs int64
	ms     []float64
}

// Which of a node's snapshots snapNodes takes.
const (
	snapBefore = iota
	snapStart
	snapEnd
)

// newClusterRun returns nil for a single relay.
func newClusterRun(cfg Config) (*clusterRun, error) {
	if len(cfg.Relays) == 0 {
		return nil, nil
	}
	c := &clusterRun{}
	for i, u := range append([]string{cfg.URL}, cfg.Relays...) {
		n := &clusterNode{url: u, key: urlKey(u)}
		n.tally.URL, n.tally.Configured = u, true
		switch {
		case i == 0:
			n.pid = cfg.RelayPID
			murl, err := cfg.metricsURL()
			if err != nil {
				return nil, err
			}
			n.metricsURL = murl
		default:
			if len(cfg.RelayPIDs) > 0 {
				n.pid = cfg.RelayPIDs[i-1]
			}
			murl, err := Config{URL: u}.metricsURL()
			if err != nil {
				return nil, err
			}
			n.metricsURL = murl
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// validateCluster checks Relays and RelayPIDs.
func (c Config) validateCluster() error {
	seen := map[string]bool{urlKey(c.URL): true}
	for _, r := range c.Relays {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("%w: relay URL %q in -relays: want ws://host:port/ws", ErrBadScenario, r)
		}
		if seen[urlKey(r)] {
			return fmt.Errorf("%w: relay %s is given twice (-url and -relays name every relay once)", ErrBadScenario, r)
		}
		seen[urlKey(r)] = true
	}
	if len(c.RelayPIDs) > 0 && len(c.RelayPIDs) != len(c.Relays) {
		return fmt.Errorf("%w: %d PIDs in -relay-pids for %d relays in -relays: give one per relay, in the same order, or none",
			ErrBadScenario, len(c.RelayPIDs), len(c.Relays))
	}
	for _, pid := range c.RelayPIDs {
		if pid <= 0 {
			return fmt.Errorf("%w: -relay-pids %d: PIDs are positive", ErrBadScenario, pid)
		}
	}
	return nil
}

// urlKey is a WebSocket URL as compared between what a run was given and
// where a join landed: scheme, host (lower case) and path.
func urlKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Scheme+"://"+u.Host) + u.Path
}

// nodeFor is the node the k-th audience member of the ramp dials.
func (c *clusterRun) nodeFor(k int) int {
	if c == nil {
		return 0
	}
	return k % len(c.nodes)
}

// dialURL is where a participant assigned to node dials.
func (r *runner) dialURL(node int) string {
	if r.cluster == nil || node <= 0 || node >= len(r.cluster.nodes) {
		return r.cfg.URL
	}
	return r.cluster.nodes[node].url
}

// waitNodes waits for every relay but the first (preflight's) to accept
// connections and checks that its /metrics answers.
func (r *runner) waitNodes(ctx context.Context) error {
	if r.cluster == nil {
		return nil
	}
	for _, n := range r.cluster.nodes[1:] {
		if err := waitTCP(ctx, n.url, r.cfg.WaitReady); err != nil {
			return fmt.Errorf("%w (a relay of -relays)", err)
		}
		if _, err := scrape(ctx, r.hc, n.metricsURL); err != nil {
			r.warn("relay %s: /metrics did not answer (%v); its figures will be missing", n.url, err)
		}
	}
	return nil
}

// snapNodes takes snapshot which of every configured node: its /metrics
// and, given its PID, /proc.
func (r *runner) snapNodes(ctx context.Context, which int) {
	if r.cluster == nil {
		return
	}
	for _, n := range r.cluster.nodes {
		s := report.Snapshot{Nanos: nanotime()}
		if n.pid > 0 {
			if ps, err := readProcStat(n.pid); err == nil {
				s.Relay = &report.Process{CPU: ps.cpu, RSS: ps.rss}
			}
		}
		if n.metricsURL != "" {
			var err error
			if s.Metrics, err = scrape(ctx, r.hc, n.metricsURL); err != nil {
				r.log.Debug("node scrape", "url", n.metricsURL, "err", err)
			}
		}
		n.snaps[which] = s
	}
}

// nodeLocked is the node a participant's join landed on, added (not
// configured) if it is none of the run's relays. r.mu is held.
func (c *clusterRun) nodeLocked(landed string) *clusterNode {
	k := urlKey(landed)
	for _, n := range c.nodes {
		if n.key == k {
			return n
		}
	}
	n := &clusterNode{url: landed, key: k}
	n.tally.URL = landed
	c.nodes = append(c.nodes, n)
	return n
}

// addStreamLocked counts one stream p received on the node p landed on
// (listeners only: the per-node figures are the audience's). r.mu is
// held; the stream's reader has ended.
func (c *clusterRun) addStreamLocked(p *participant, st *streamStats, res streamResult) {
	if c == nil || p.role != roleAudience || p.landed == "" {
		return
	}
	n := c.nodeLocked(p.landed)
	t := &n.tally
	t.PacketsReceived += st.packets
	t.ExpectedFrames += res.expected
	t.LostFrames += res.lost
	t.StutterFrames += res.stutter
	t.SenderDropped += res.senderDropped
	t.LateFrames += st.late
	t.Received += st.received
	t.OneWay.Merge(&st.lat)
	if res.joinNs < 0 {
		return
	}
	ms := float64(res.joinNs) / 1e6
	t.FirstPacketMs = append(t.FirstPacketMs, ms)
	if n.first == nil {
		n.first = make(map[int]*opener)
	}
	switch o := n.first[p.room]; {
	case o == nil || p.dialNs < o.dialNs:
		n.first[p.room] = &opener{dialNs: p.dialNs, ms: []float64{ms}}
	case p.dialNs == o.dialNs:
		o.ms = append(o.ms, ms)
	}
}

// addParticipantLocked counts p where its join started and landed, and
// as a receiver if any of its streams (the mix too) had a packet. r.mu
// is held.
func (c *clusterRun) addParticipantLocked(p *participant, streams []*streamStats, mixes []*mixStats) {
	if c == nil || p.landed == "" {
		return
	}
	t := &c.nodeLocked(p.landed).tally
	if p.role != roleAudience {
		t.Publishers++
		return
	}
	if p.node < len(c.nodes) {
		c.nodes[p.node].tally.ListenersDialed++
	}
	t.Listeners++
	var got uint64
	for _, st := range streams {
		got += st.packets
	}
	for _, st := range mixes {
		got += st.packets
		t.PacketsReceived += st.packets
	}
	if got > 0 {
		t.Receivers++
	}
}

// measurementsLocked hands the nodes' tallies and snapshots to report.
// r.mu is held.
func (c *clusterRun) measurementsLocked() *report.ClusterMeasurements {
	if c == nil {
		return nil
	}
	m := &report.ClusterMeasurements{}
	for _, n := range c.nodes {
		nm := n.tally
		for _, o := range n.first {
			nm.FirstListenerMs = append(nm.FirstListenerMs, o.ms...)
		}
		nm.Before, nm.Start, nm.End = n.snaps[snapBefore], n.snaps[snapStart], n.snaps[snapEnd]
		if nm.End.Nanos > nm.Start.Nanos {
			nm.WindowSeconds = float64(nm.End.Nanos-nm.Start.Nanos) / float64(time.Second)
		}
		m.Nodes = append(m.Nodes, nm)
	}
	return m
}

// addClusterLabels keeps each label set of a relay_cluster_* counter or
// gauge under its own key (report.Labeled), besides the sum under the
// bare name: the per-node figures need routes by kind and links by side.
func addClusterLabels(m *report.Metrics, name string, v float64, s *dto.Metric) {
	if !strings.HasPrefix(name, "relay_cluster_") || len(s.GetLabel()) != 1 {
		return
	}
	l := s.GetLabel()[0]
	m.Values[report.Labeled(name, l.GetName(), l.GetValue())] += v
}
