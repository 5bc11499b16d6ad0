package media

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
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
// packets their streams are missing, at ticks nackEvery apart, and
// receiver reports about every reportEvery, from the sequence numbers
// and arrival times each track's reader records (recvstats.go). One
// goroutine and one timer serve every track of the relay, where pion's
// NACK generator and receiver-report interceptors run a goroutine and a
// ticker each per connection. The loop wakes only for a tick with work:
// a NACK (a reader that sees a packet go missing wakes it for the next
// tick, and it ticks while anything is missing) or a report due. Its
// ticks keep one grid, nackEvery apart, so a NACK leaves when a plain
// ticker's would; a relay whose publishers lose nothing wakes for the
// reports alone. The goroutine runs only while a track is registered.
type Feedback struct {
	nackEvery, reportEvery time.Duration
	ssrc                   uint32 // the relay's SSRC as the sender of its NACKs and reports
	m                      *Metrics
	poke                   chan struct{} // a reader saw a packet go missing, or the last track left

	mu      sync.Mutex
	tracks  []*UpTrack // registered tracks; guarded by mu
	running bool       // the loop goroutine runs; guarded by mu

	passes atomic.Uint64 // ticks that ran, for tests
}

// NewFeedback makes the relay's RTCP toward publishers with these
// intervals. m counts the NACKs (relay_nack_sent_total).
func NewFeedback(nackEvery, reportEvery time.Duration, m *Metrics) *Feedback {
	return &Feedback{nackEvery: nackEvery, reportEvery: reportEvery, ssrc: rand.Uint32(), m: m, poke: make(chan struct{}, 1)}
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
	} else {
		f.wake() // its first report may be due before the loop's next tick
	}
}

// remove unregisters t; the loop ends if t was the last.
func (f *Feedback) remove(t *UpTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.tracks {
		if x == t {
			last := len(f.tracks) - 1
			f.tracks[i] = f.tracks[last]
			f.tracks[last] = nil
			f.tracks = f.tracks[:last]
			if last == 0 {
				f.wake()
			}
			return
		}
	}
}

// wake has the loop look again at its next tick; it never blocks.
func (f *Feedback) wake() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// never is a deadline that does not come.
const never = int64(1<<63 - 1)

// loop runs the ticks that have work until no track is registered.
func (f *Feedback) loop() {
	origin := Now() // the ticks are origin + k × nackEvery
	every := int64(f.nackEvery)
	tickAfter := func(t int64) int64 { // the first tick at or after t
		if t <= origin {
			return origin
		}
		return origin + (t-origin+every-1)/every*every
	}
	// The first tick with work: the first reports, unless a reader
	// wakes the loop sooner.
	deadline := tickAfter(origin + int64(f.reportEvery))
	timer := time.NewTimer(time.Duration(deadline - origin))
	defer timer.Stop()
	var tracks []*UpTrack                    // a snapshot per tick, reused
	missing := make([]uint16, 0, lossWindow) // reused by every track's NACK
	for {
		select {
		case <-timer.C:
		case <-f.poke:
			f.mu.Lock()
			if len(f.tracks) == 0 {
				f.running = false // an add from now on starts a new loop
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			// Something to do at the next tick: sooner than the timer?
			now := Now()
			if next := tickAfter(now + 1); next < deadline {
				deadline = next
				timer.Reset(time.Duration(deadline - now))
			}
			continue
		}
		f.mu.Lock()
		if len(f.tracks) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		tracks = append(tracks[:0], f.tracks...)
		f.mu.Unlock()
		f.passes.Add(1)
		now := Now()
		next := never
		for _, t := range tracks {
			if at := f.send(t, now, missing); at < next {
				next = at
			}
		}
		clear(tracks) // let closed tracks go
		deadline = tickAfter(max(next, now+1))
		if next == never {
			deadline = now + int64(f.reportEvery) // tracks without a stream yet: look again later
		}
		timer.Reset(time.Duration(deadline - now))
	}
}

// send writes t's NACK, if its stream misses packets, and its receiver
// report, if one is due, in one compound packet (the report first, as
// RFC 3550 6.1 asks), and returns when t next needs a tick: at once (the
// next tick) while packets are missing, else when its report is due;
// never before its stream's first packet. Only the loop calls it, which
// owns t.lastReport.
func (f *Feedback) send(t *UpTrack, now int64, missing []uint16) (next int64) {
	rx := t.rx
	rx.mu.Lock()
	if !rx.started {
		rx.mu.Unlock()
		return never
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
	next = t.lastReport + int64(f.reportEvery)
	if len(missing) > 0 {
		next = now
	}
	if len(missing) == 0 && !report {
		return next
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
	return next
}
