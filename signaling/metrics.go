package signaling

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions prometheus.Gauge
	errors   *prometheus.CounterVec // by code
	resumes  *prometheus.CounterVec // by outcome
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_signaling_sessions", Help: "Open WebSocket signaling sessions.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_signaling_errors_total", Help: "error messages sent to clients, by code.",
		}, []string{"code"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_resumes_total",
			Help: "joins with a resume token, by outcome: ice_restart or new_connections (resumed), unknown (joined afresh), failed.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.errors, m.resumes)
	}
	return m
}
