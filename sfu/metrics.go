package sfu

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sfu's Prometheus metrics. Counters on the packet path are
// resolved once (no label lookup per packet).
type Metrics struct {
	Rooms        prometheus.Gauge
	Participants *prometheus.GaugeVec // by role
	Tracks       prometheus.Gauge

	PacketsIn  prometheus.Counter
	BytesIn    prometheus.Counter
	PacketsOut prometheus.Counter
	BytesOut   prometheus.Counter

	dropNotNegotiated prometheus.Counter
	dropWriteFailed   prometheus.Counter
	dropMalformed     prometheus.Counter

	NACKsReceived prometheus.Counter // sequence numbers subscribers asked for
	NACKsServed   prometheus.Counter // of those, retransmitted from history
	NACKsMissed   prometheus.Counter // of those, no longer in history

	JoinLatency    prometheus.Histogram
	ForwardLatency prometheus.Histogram

	Speaking prometheus.Gauge // participants listed in their room's speakers
}

// Drop reasons, the values of relay_packets_dropped_total's reason label.
const (
	DropNotNegotiated = "not_negotiated" // the subscriber's track was not yet negotiated
	DropWriteFailed   = "write_failed"   // the write to the subscriber failed (closing connection)
	DropMalformed     = "malformed"      // not an RTP packet the relay can forward
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_packets_dropped_total",
		Help: "RTP packets the relay did not forward to a subscriber, by reason.",
	}, []string{"reason"})
	m := &Metrics{
		Rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_rooms", Help: "Rooms with at least one participant.",
		}),
		Participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_participants", Help: "Participants, by role.",
		}, []string{"role"}),
		Tracks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_tracks", Help: "Published tracks.",
		}),
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
		dropNotNegotiated: drops.WithLabelValues(DropNotNegotiated),
		dropWriteFailed:   drops.WithLabelValues(DropWriteFailed),
		dropMalformed:     drops.WithLabelValues(DropMalformed),
		NACKsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_requested_total", Help: "Packets subscribers asked to be retransmitted (RTCP NACK).",
		}),
		NACKsServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_served_total", Help: "Packets retransmitted to subscribers from the relay's history.",
		}),
		NACKsMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_nack_missed_total", Help: "Packets asked for that were no longer (or never) in the history.",
		}),
		JoinLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_join_latency_seconds",
			Help:    "From join received to the first media packet written to that participant.",
			Buckets: []float64{.005, .01, .015, .02, .03, .04, .05, .075, .1, .15, .2, .3, .5, 1, 2, 5},
		}),
		ForwardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_forward_latency_seconds",
			Help:    "From packet read to written to a subscriber, sampled 1 in 16 packets.",
			Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3},
		}),
	}
	m.Speaking = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "relay_speaking_participants",
		Help: "Participants currently listed as speaking (the speakers event), over all rooms.",
	})
	for _, r := range []Role{RoleHost, RoleGuest, RoleAudience} {
		m.Participants.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.Rooms, m.Participants, m.Tracks, m.PacketsIn, m.BytesIn,
			m.PacketsOut, m.BytesOut, drops, m.NACKsReceived, m.NACKsServed,
			m.NACKsMissed, m.JoinLatency, m.ForwardLatency, m.Speaking)
	}
	return m
}
