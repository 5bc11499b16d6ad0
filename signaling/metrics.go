package signaling

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions prometheus.Gauge
	parked   prometheus.Gauge       // the sessions parked without a goroutine (park_linux.go)
	errors   *prometheus.CounterVec // by code
	resumes  *prometheus.CounterVec // by outcome
	refused  *prometheus.CounterVec // by reason (connlimit.go)
	limit    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_signaling_sessions", Help: "Open WebSocket signaling sessions.",
		}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_signaling_parked",
			Help: "Open WebSocket sessions whose client has sent nothing yet, waiting without a goroutine (Linux); included in relay_signaling_sessions.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_signaling_errors_total", Help: "error messages sent to clients, by code.",
		}, []string{"code"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_resumes_total",
			Help: "joins with a resume token, by outcome: ice_restart or new_connections (resumed), unknown (joined afresh), failed.",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_connections_refused_total",
			Help: "WebSocket connections and joins refused by a limit, by reason.",
		}, []string{"reason"}),
		limit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_connection_limit",
			Help: "The most WebSockets the relay holds open (from its file descriptor limit); 0: no cap.",
		}),
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.parked, m.errors, m.resumes, m.refused, m.limit)
	}
	return m
}
