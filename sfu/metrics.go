package sfu

import (
	"fmt"

	"github.com/lianmai/relay/media"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the room layer's Prometheus metrics and the packet path's
// (Media).
type Metrics struct {
	Rooms        prometheus.Gauge
	Participants *prometheus.GaugeVec // by role
	Tracks       prometheus.Gauge

	JoinLatency prometheus.Histogram

	Speaking prometheus.Gauge // participants listed in their room's speakers

	Listeners      *prometheus.GaugeVec // participants by what their sub carries: listen="mix" or "tracks"
	MixRooms       prometheus.Gauge     // rooms whose audience mix runs
	MixStartErrors prometheus.Counter   // mixers that failed to start

	EarlyPubs       *prometheus.CounterVec // early pub connections by outcome (earlypub.go)
	EarlyPubDropped prometheus.Counter     // packets read on early pubs before acceptance, not forwarded

	SendPaths *prometheus.CounterVec // send paths offered sub connections took, by path (direct.go)
	Takeovers prometheus.Counter     // sub connections taken over from pion (takeover.go)

	Media *media.Metrics
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	mm, err := media.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
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
		JoinLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_join_latency_seconds",
			Help:    "From join received to the first media packet written to that participant.",
			Buckets: []float64{.005, .01, .015, .02, .03, .04, .05, .075, .1, .15, .2, .3, .5, 1, 2, 5},
		}),
		Speaking: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_speaking_participants",
			Help: "Participants currently listed as speaking (the speakers event), over all rooms.",
		}),
		Listeners: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_listeners",
			Help: "Participants by what their sub connection carries: the room's audience mix (mix) or one track per publisher (tracks; hosts and guests always).",
		}, []string{"listen"}),
		MixRooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_mix_rooms", Help: "Rooms whose audience mix is running.",
		}),
		MixStartErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_start_errors_total",
			Help: "Audience mixes that failed to start (their listeners got separate tracks meanwhile).",
		}),
		EarlyPubs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_early_pubs_total",
			Help: "Pub connections negotiated while a mic request or invitation was pending, by outcome: accepted (the participant went on the mic) or closed (the request ended without a seat).",
		}, []string{"outcome"}),
		EarlyPubDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_early_pub_packets_dropped_total",
			Help: "Packets read on early pub connections before the participant was accepted on the mic; none is forwarded.",
		}),
		SendPaths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_sub_send_path_total",
			Help: "Send paths taken by the sub connections the relay offers, counted when DTLS is up and at every later selected candidate pair: direct (encrypted by the relay into its send batch) or pion (pion's SRTP session: TCP, TURN, or no keys). Nothing is counted with -direct-send=false.",
		}, []string{"path"}),
		Takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_sub_takeovers_total",
			Help: "Sub connections the relay took over from pion once direct: it answers their ICE checks and negotiates them itself, and pion's connection is closed (no goroutine of pion's per listener). Nothing with -takeover=false.",
		}),
		Media: mm,
	}
	for _, path := range []string{pathDirect, pathPion} {
		m.SendPaths.WithLabelValues(path)
	}
	for _, o := range []string{earlyAccepted, earlyClosed} {
		m.EarlyPubs.WithLabelValues(o)
	}
	for _, l := range []Listen{ListenMix, ListenTracks} {
		m.Listeners.WithLabelValues(string(l))
	}
	for _, r := range Roles() {
		m.Participants.WithLabelValues(string(r))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Rooms, m.Participants, m.Tracks, m.JoinLatency, m.Speaking, m.Listeners, m.MixRooms, m.MixStartErrors, m.EarlyPubs, m.EarlyPubDropped, m.SendPaths, m.Takeovers} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("sfu: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
