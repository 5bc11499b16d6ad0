package media

import (
	"fmt"

	"github.com/lianmai/relay/bufpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the packet path's Prometheus metrics. Counters on the packet
// path are resolved once here (no label lookup per packet); the counters
// are atomics that every track's reader shares, so the fan-out counts once
// per packet, not once per subscriber.
type Metrics struct {
	PacketsIn  prometheus.Counter
	BytesIn    prometheus.Counter
	PacketsOut prometheus.Counter
	BytesOut   prometheus.Counter

	drops [numDropReasons]prometheus.Counter // by DropReason

	NACKsReceived prometheus.Counter // sequence numbers subscribers asked for
	NACKsServed   prometheus.Counter // of those, retransmitted from history
	NACKsMissed   prometheus.Counter // of those, no longer in history
	NACKsSent     prometheus.Counter // sequence numbers the relay asked publishers for (feedback.go)

	ForwardLatency prometheus.Histogram
	// FanoutDelay is per packet, from its read to the end of its last
	// subscriber's write (the fan-out's last sendmmsg).
	FanoutDelay prometheus.Histogram
}

// DropReason says why a packet was not forwarded to a subscriber.
type DropReason int

// Drop reasons: the values of relay_packets_dropped_total's reason label.
// Every reason has a counter from NewMetrics on, so that a dashboard sees
// each at zero before the first drop.
const (
	DropNotNegotiated DropReason = iota // the subscriber's track was not yet negotiated
	DropWriteFailed                     // the write to the subscriber failed (closing connection)
	DropMalformed                       // not an RTP packet the relay can forward
	// DropFanoutBusy: the subscriber's fan-out worker had a full queue (it
	// is over two seconds behind), or the relay was shutting down.
	DropFanoutBusy
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropNotNegotiated: "not_negotiated",
	DropWriteFailed:   "write_failed",
	DropMalformed:     "malformed",
	DropFanoutBusy:    "fanout_busy",
}

// String is the reason's label value.
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return fmt.Sprintf("DropReason(%d)", int(r))
	}
	return dropReasonNames[r]
}

// DropReasons lists every reason.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// drop counts one packet not forwarded for reason r.
func (m *Metrics) drop(r DropReason) { m.drops[r].Inc() }

// dropN counts n packets not forwarded for reason r.
func (m *Metrics) dropN(r DropReason, n int) { m.drops[r].Add(float64(n)) }

// countOut counts out packets of bytes payload bytes written to
// subscribers.
func (m *Metrics) countOut(out, bytes int) {
	if out > 0 {
		m.PacketsOut.Add(float64(out))
		m.BytesOut.Add(float64(bytes))
	}
}

// Dropped is the counter of packets dropped for reason r (tests and the
// relay's own checks read it).
func (m *Metrics) Dropped(r DropReason) prometheus.Counter { return m.drops[r] }

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere). It checks, as the relay starts, that every drop
// reason has a distinct label and a counter, so that a reason added
// without one fails at once rather than at its first drop.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_packets_dropped_total",
		Help: "RTP packets the relay did not forward to a subscriber, by reason.",
	}, []string{"reason"})
	m := &Metrics{
		PacketsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_packets_in_total", Help: "RTP packets received from publishers.",
		}),
		BytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_bytes_in_total", Help: "RTP bytes (header and payload) received from publishers.",
		}),
		PacketsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_packets_out_total", Help: "RTP packets written to subscribers, retransmissions included.",
		}),
		BytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_bytes_out_total", Help: "RTP payload bytes written to subscribers.",
		}),
		NACKsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_requested_total", Help: "Packets subscribers asked to be retransmitted (RTCP NACK).",
		}),
		NACKsServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_served_total", Help: "Packets retransmitted to subscribers from the relay's history.",
		}),
		NACKsMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_missed_total", Help: "Packets asked for that were no longer (or never) in the history.",
		}),
		NACKsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_sent_total", Help: "Packets the relay asked publishers to retransmit (RTCP NACK), counted each time asked.",
		}),
		ForwardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_forward_latency_seconds",
			Help:    "From packet read to written to a subscriber, sampled 1 in 16 packets.",
			Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3},
		}),
		FanoutDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_fanout_seconds",
			Help: "Per forwarded packet with a subscriber: from its read to the end of its last subscriber's write " +
				"(every copy handed to the kernel), across the fan-out workers' shards.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 10e-3, 20e-3, 50e-3, 100e-3},
		}),
	}
	seen := make(map[string]DropReason, numDropReasons)
	for _, r := range DropReasons() {
		name := dropReasonNames[r]
		if name == "" {
			return nil, fmt.Errorf("media: drop reason %d has no label", int(r))
		}
		if o, dup := seen[name]; dup {
			return nil, fmt.Errorf("media: drop reasons %d and %d share the label %q", int(o), int(r), name)
		}
		seen[name] = r
		m.drops[r] = drops.WithLabelValues(name)
	}
	doubleReleases := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "relay_bufpool_double_releases_total",
		Help: "Packet buffers released once more than they were held: a bug in the relay (tests panic on it); report it.",
	}, func() float64 { return float64(bufpool.DoubleReleases()) })
	if reg != nil {
		for _, c := range []prometheus.Collector{m.PacketsIn, m.BytesIn, m.PacketsOut, m.BytesOut, drops,
			m.NACKsReceived, m.NACKsServed, m.NACKsMissed, m.NACKsSent, m.ForwardLatency, m.FanoutDelay, doubleReleases} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("media: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
