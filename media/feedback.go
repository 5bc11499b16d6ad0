package media

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// RTCPWriter is where the relay-made RTCP of a connection goes (a
// publisher's receiver reports and NACKs here, a listener's sender reports
// in reports.go): its *webrtc.PeerConnection, which encrypts it (SRTCP)
// and sends it.
type RTCPWriter interface {
	WriteRTCP(pkts []rtcp.Packet) error
}

// Feedback makes the relay's RTCP toward publishers: NACKs for the
// packets their streams are missing, every nackEvery, and receiver
// reports about every reportEvery, from the sequence numbers and arrival
// times each track's reader records (recvstats.go). One goroutine and one
// ticker serve every track of the relay, where pion's NACK generator and
// receiver-report interceptors run a goroutine and a ticker each per
// connection. The goroutine runs only while a track is registered: an
// idle relay does not wake up for it.
type Feedback struct {
	nackEvery, reportEvery time.Duration
	ssrc                   uint32 // the relay's SSRC as the sender of its NACKs and reports
	m                      *Metrics

	mu      sync.Mutex
	tracks  []*UpTrack // registered tracks; guarded by mu
	running bool       // the loop goroutine runs; guarded by mu
}

// NewFeedback makes the relay's RTCP toward publishers with these
// intervals. m counts the NACKs (relay_nack_sent_total).
func NewFeedback(nackEvery, reportEvery time.Duration, m *Metrics) *Feedback {
	return &Feedback{nackEvery: nackEvery, reportEvery: reportEvery, ssrc: rand.Uint32(), m: m}
}

// add registers t, whose rx and rtcp are set; its reader starts it.
func (f *Feedback) add(t *UpTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t.lastReport = Now() // the first report a reportEvery from now
	f.tracks = append(f.tracks, t)
	if !f.running {
		f.running = true
		go f.loop()
	}
}

// remove unregisters t; the loop ends at its next tick if t was the last.
func (f *Feedback) remove(t *UpTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.tracks {
		if x == t {
			last := len(f.tracks) - 1
			f.tracks[i] = f.tracks[last]
			f.tracks[last] = nil
			f.tracks = f.tracks[:last]
			return
		}
	}
}

// loop ticks every nackEvery until no track is registered.
func (f *Feedback) loop() {
	tick := time.NewTicker(f.nackEvery)
	defer tick.Stop()
	var tracks []*UpTrack                    // a snapshot per tick, reused
	missing := make([]uint16, 0, lossWindow) // reused by every track's NACK
	for range tick.C {
		f.mu.Lock()
		if len(f.tracks) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		tracks = append(tracks[:0], f.tracks...)
		f.mu.Unlock()
		now := Now()
		for _, t := range tracks {
			f.send(t, now, missing)
		}
		clear(tracks) // let closed tracks go
	}
}

// send writes t's NACK, if its stream misses packets, and its receiver
// report, if one is due, in one compound packet (the report first, as
// RFC 3550 6.1 asks). Only the loop calls it, which owns t.lastReport.
func (f *Feedback) send(t *UpTrack, now int64, missing []uint16) {
	rx := t.rx
	rx.mu.Lock()
	if !rx.started {
		rx.mu.Unlock()
		return
	}
	ssrc := rx.ssrc
	missing = missing[:0]
	if t.nack {
		missing = rx.missingLocked(missing)
	}
	var rr rtcp.ReceptionReport
	report := now-t.lastReport >= int64(f.reportEvery)
	if report {
		t.lastReport = now
		rr = rx.reportLocked(now)
	}
	rx.mu.Unlock()
	if len(missing) == 0 && !report {
		return
	}
	pkts := make([]rtcp.Packet, 0, 2)
	if report {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: f.ssrc, Reports: []rtcp.ReceptionReport{rr}})
	}
	if len(missing) > 0 {
		pkts = append(pkts, &rtcp.TransportLayerNack{SenderSSRC: f.ssrc, MediaSSRC: ssrc,
			Nacks: rtcp.NackPairsFromSequenceNumbers(missing)})
		if f.m != nil {
			f.m.NACKsSent.Add(float64(len(missing)))
		}
	}
	// An error means the connection is closing; its reader ends soon and
	// unregisters the track.
	_ = t.rtcp.WriteRTCP(pkts)
}
