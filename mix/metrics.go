package mix

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mixers' Prometheus metrics, shared by every mixer of a
// relay. Everything counted per tick or per packet is resolved here once
// (no label lookup on the hot path).
type Metrics struct {
	Inputs prometheus.Gauge // inputs over all running mixers

	FramesDecoded   prometheus.Counter // input frames decoded from their own packet
	FramesFEC       prometheus.Counter // input frames recovered from the next packet's in-band FEC
	FramesConcealed prometheus.Counter // input frames synthesized by packet loss concealment
	FramesLimited   prometheus.Counter // output frames where the limiter lowered the gain
	PacketsOut      prometheus.Counter // mixed RTP packets handed to out

	drops [numDropReasons]prometheus.Counter // by DropReason

	DecodeErrors prometheus.Counter
	EncodeErrors prometheus.Counter

	TicksLate    prometheus.Counter   // ticks that started more than LateAfter after their schedule
	TickDuration prometheus.Histogram // one tick's work: jitter buffers, decode, mix, limit, encode, out
	TickLateness prometheus.Histogram // how long after its schedule each tick started
}

// LateAfter is how far behind its schedule a tick may start before it
// counts as late (relay_mix_ticks_late_total).
const LateAfter = time.Millisecond

// DropReason says why an input packet was dropped by its jitter buffer.
type DropReason int

// Drop reasons: the values of relay_mix_packets_dropped_total's reason
// label.
const (
	DropLate      DropReason = iota // arrived after its frame was played or concealed
	DropDuplicate                   // a packet already buffered
	DropTooLarge                    // payload larger than a slot (not an Opus packet of the relay's)
	DropOverflow                    // buffer above its maximum depth (a burst, or a sequence jump)
	DropDrift                       // one frame dropped to shrink the depth (publisher's clock faster, or jitter gone)
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropLate:      "late",
	DropDuplicate: "duplicate",
	DropTooLarge:  "too_large",
	DropOverflow:  "overflow",
	DropDrift:     "drift",
}

// String is the reason's label value.
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return fmt.Sprintf("DropReason(%d)", int(r))
	}
	return dropReasonNames[r]
}

// Dropped is the counter of packets dropped for reason r.
func (m *Metrics) Dropped(r DropReason) prometheus.Counter { return m.drops[r] }

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_mix_packets_dropped_total",
		Help: "Input packets the mixers' jitter buffers dropped, by reason.",
	}, []string{"reason"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_mix_errors_total",
		Help: "Opus decode (a corrupt input packet; the frame is concealed) and encode (the tick emits nothing) errors.",
	}, []string{"op"})
	// 10 µs .. 10 ms: a tick costs tens of µs; a whole period is the limit.
	tickBuckets := []float64{10e-6, 25e-6, 50e-6, 75e-6, 100e-6, 150e-6, 200e-6, 300e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3}
	m := &Metrics{
		Inputs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_mix_inputs", Help: "Inputs (published tracks) over all running mixers; relay_mix_rooms counts the mixers.",
		}),
		FramesDecoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_frames_decoded_total", Help: "Input frames decoded from their own packet.",
		}),
		FramesFEC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_frames_fec_recovered_total", Help: "Lost input frames recovered from the next packet's in-band FEC.",
		}),
		FramesConcealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_frames_concealed_total", Help: "Missing input frames synthesized by Opus packet loss concealment.",
		}),
		FramesLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_frames_limited_total", Help: "Mixed frames where the limiter lowered the gain (the inputs summed above its threshold).",
		}),
		PacketsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_packets_out_total", Help: "Mixed RTP packets the mixers produced.",
		}),
		DecodeErrors: errs.WithLabelValues("decode"),
		EncodeErrors: errs.WithLabelValues("encode"),
		TicksLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_mix_ticks_late_total", Help: "Mixer ticks that started more than 1 ms after their schedule.",
		}),
		TickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_mix_tick_duration_seconds", Help: "Work of one mixer tick: jitter buffers, decode, mix, limit, encode.",
			Buckets: tickBuckets,
		}),
		TickLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_mix_tick_lateness_seconds", Help: "How long after its 10 ms schedule each mixer tick started.",
			Buckets: tickBuckets,
		}),
	}
	for r := DropReason(0); r < numDropReasons; r++ {
		m.drops[r] = drops.WithLabelValues(dropReasonNames[r])
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Inputs, m.FramesDecoded, m.FramesFEC, m.FramesConcealed,
			m.FramesLimited, m.PacketsOut, drops, errs, m.TicksLate, m.TickDuration, m.TickLateness} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("mix: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
