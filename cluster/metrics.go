package cluster

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's series (docs/metrics.md).
type metrics struct {
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	ops         *prometheus.CounterVec   // op, result
	latency     *prometheus.HistogramVec // op
	owned       prometheus.Gauge
	routes      *prometheus.CounterVec // route
	links       *prometheus.GaugeVec   // side
	linkPackets prometheus.Counter
}

// Directory operations and their results (labels).
const (
	opLookup    = "lookup"    // a join's Get of a room's entry
	opClaim     = "claim"     // create-if-absent of a room's entry
	opRenew     = "renew"     // the heartbeat's update of an owned room's entry
	opRelease   = "release"   // delete of an emptied room's entry
	opHandover  = "handover"  // a drain's update of an entry to another node
	opHeartbeat = "heartbeat" // the node's liveness key
	opBuckets   = "buckets"   // creating or checking the buckets (start, reconnect)
	opTakeover  = "takeover"  // rewriting the entry of a room whose owner is gone
	opPing      = "ping"      // asking a room's owner whether it is there
	opHolder    = "holder"    // asking who holds a room that has no entry (holder.go)

	resultOK          = "ok"
	resultNotFound    = "not_found"
	resultConflict    = "conflict" // the entry changed under us (another node's, or a newer revision)
	resultError       = "error"
	resultUnavailable = "unavailable" // not connected: not tried
)

var allOps = []string{opLookup, opClaim, opRenew, opRelease, opHandover, opHeartbeat, opBuckets, opTakeover, opPing, opHolder}

// newMetrics makes and registers the cluster's series; linkOut is the
// packets sent over other nodes' links so far (Node.linkPacketsOut).
func newMetrics(reg prometheus.Registerer, linkOut func() float64) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_cluster_nats_connected",
			Help: "1 while the relay is connected to NATS, 0 while it is disconnected and reconnecting.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_cluster_nats_reconnects_total",
			Help: "Reconnections to NATS after a lost connection; each is followed by a rebuild of this node's directory entries.",
		}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_cluster_directory_ops_total",
			Help: "Directory operations by op (lookup, claim, renew, release, handover, heartbeat, buckets, takeover, ping) and result (ok, not_found, conflict, error, unavailable; ping: ok or gone; holder: held or not_found).",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_cluster_directory_op_seconds",
			Help:    "Latency of directory operations that reached NATS, by op.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 2.5},
		}, []string{"op"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_cluster_rooms_owned",
			Help: "Rooms this node owns in the directory (or holds and will claim).",
		}),
		routes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_cluster_routes_total",
			Help: "Joins routed, by route: local (served here), redirect (told to reconnect to the owner), edge (an audience member of a room owned elsewhere), unavailable (the directory could not be reached).",
		}, []string{"route"}),
		links: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_cluster_links",
			Help: "Relay-to-relay links open, by side: edge (this node's links to rooms other nodes own, one per room with listeners here), owner (other nodes' links to rooms this node owns, edges' and PK links'), pk (this node's PK links: one per room here linked with a room another node owns).",
		}, []string{"side"}),
		linkPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_cluster_link_packets_in_total",
			Help: "RTP packets this node received over its edge and PK links (each crosses once, however many listeners here hear it).",
		}),
	}
	linkPacketsOut := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "relay_cluster_link_packets_out_total",
		Help: "RTP packets this node sent over other nodes' edge and PK links to rooms it owns (each once per link, however many listeners the other node has), retransmissions included.",
	}, linkOut)
	m.links.WithLabelValues("edge")
	m.links.WithLabelValues("owner")
	m.links.WithLabelValues("pk")
	for _, op := range allOps {
		m.latency.WithLabelValues(op)
		for _, r := range []string{resultOK, resultError} {
			m.ops.WithLabelValues(op, r)
		}
	}
	for _, r := range []string{"local", "redirect", "edge", "unavailable"} {
		m.routes.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.reconnects, m.ops, m.latency, m.owned, m.routes, m.links, m.linkPackets, linkPacketsOut} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("register cluster metrics"), err)
		}
	}
	return m, nil
}

// observe counts one operation that started at start.
func (m *metrics) observe(op, result string, start time.Time) {
	m.ops.WithLabelValues(op, result).Inc()
	if result != resultUnavailable {
		m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}
