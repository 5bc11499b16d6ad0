package media

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Relay-made sender reports (issue 19). pion's sender-report interceptor
// runs a ticker goroutine per connection and takes a lock per packet to
// count it; here one loop for the whole relay sends each down track's
// report about once per ReportInterval, spread over the interval, from
// counters the down track keeps anyway (DownTrack.counted). The reports
// go out through pion's WriteRTCP, so SRTCP stays pion's.

// ReportInterval is about how often each down track sends a sender
// report: pion's interceptor's default.
const ReportInterval = time.Second

// reportSlots is how many parts the interval is cut into: a track's
// report goes out in its slot's tick, so a room's reports do not all
// leave at once.
const reportSlots = 20

// opusClockRate is the RTP clock of every track the relay forwards.
const opusClockRate = 48000

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// Reporter sends the sender reports of every down track whose SubConn
// names it. Its loop runs while it has tracks.
type Reporter struct {
	mu      sync.Mutex
	slots   [reportSlots][]*DownTrack // guarded by mu
	next    int                       // guarded by mu: the slot of the next track added
	n       int                       // guarded by mu: tracks in slots
	stop    chan struct{}             // guarded by mu: closed to stop the running loop; nil when none runs
	closed  bool                      // guarded by mu
	running sync.WaitGroup            // the loops; Close waits for them
	passes  atomic.Uint64             // ticks that ran, for tests
}

// NewReporter makes a relay's sender-report loop (started with the first
// track).
func NewReporter() *Reporter { return &Reporter{} }

// Close stops the loop for good; later tracks get no reports.
func (r *Reporter) Close() {
	r.mu.Lock()
	r.closed = true
	r.stopLocked()
	r.mu.Unlock()
	r.running.Wait()
}

// stopLocked stops the running loop, if any. r.mu is held.
func (r *Reporter) stopLocked() {
	if r.stop != nil {
		close(r.stop)
		r.stop = nil
	}
}

// add gives d a slot, starting the loop if it is the first track.
func (r *Reporter) add(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, o := range r.slots[d.reportSlot] {
		if o == d {
			return
		}
	}
	d.reportSlot = r.next
	r.next = (r.next + 1) % reportSlots
	r.slots[d.reportSlot] = append(r.slots[d.reportSlot], d)
	r.n++
	if r.stop == nil {
		r.stop = make(chan struct{})
		r.running.Add(1)
		go r.loop(r.stop)
	}
}

// remove takes d out (a no-op if it is not in), stopping the loop with the
// last track.
func (r *Reporter) remove(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slots[d.reportSlot]
	for i, o := range s {
		if o == d {
			s[i] = s[len(s)-1]
			s[len(s)-1] = nil
			r.slots[d.reportSlot] = s[:len(s)-1]
			r.n--
			if r.n == 0 {
				r.stopLocked()
			}
			return
		}
	}
}

// loop sends one slot's reports per tick until stop closes. The ticks
// keep the grid of a ticker (ReportInterval / reportSlots apart), but the
// loop sleeps through the ticks of empty slots: a relay with a few
// listeners' tracks wakes a few times a second, not reportSlots times.
func (r *Reporter) loop(stop chan struct{}) {
	defer r.running.Done()
	const every = ReportInterval / reportSlots
	origin := time.Now()
	ticks := 1 // the next tick: origin + ticks × every
	t := time.NewTimer(every)
	defer t.Stop()
	var batch []*DownTrack // owned by the loop: the slot being reported
	slot := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.passes.Add(1)
		r.mu.Lock()
		batch = append(batch[:0], r.slots[slot]...)
		skip := r.nextOccupiedLocked(slot)
		r.mu.Unlock()
		slot = (slot + skip) % reportSlots
		ticks += skip
		next := origin.Add(time.Duration(ticks) * every)
		if late := time.Since(next); late > every {
			// Behind (a stalled machine): move the grid rather than run
			// the missed ticks back to back, as a ticker drops them.
			origin, next = origin.Add(late), next.Add(late)
		}
		t.Reset(time.Until(next))
		now, wall := Now(), time.Now()
		for i, d := range batch {
			if err := d.sendReport(now, wall); errors.Is(err, io.ErrClosedPipe) || errors.Is(err, webrtc.ErrConnectionClosed) {
				r.remove(d) // its connection closed under it
			}
			batch[i] = nil
		}
	}
}

// nextOccupiedLocked is how many ticks after slot's the next slot with a
// track comes (reportSlots: slot's own, a round later, or none). r.mu is
// held. A track added meanwhile to a slot skipped waits for its slot's
// next round: its first report comes within two intervals, not one.
func (r *Reporter) nextOccupiedLocked(slot int) int {
	for d := 1; d < reportSlots; d++ {
		if len(r.slots[(slot+d)%reportSlots]) > 0 {
			return d
		}
	}
	return reportSlots
}

// sendReport sends d's sender report for the moment now (Now()) and wall
// (the same moment's wall clock). Nothing before d's first live packet
// (RFC 3550: a sender report is about what was sent).
func (d *DownTrack) sendReport(now int64, wall time.Time) error {
	b := d.bound.Load()
	clock := d.rtpClock.Load()
	if b == nil || clock == 0 {
		return nil
	}
	if d.sub.TakenOver() {
		sr := d.senderReport(b.ssrc, clock, now, wall)
		return d.sub.writeOwnRTCP(&sr) // pion's connection is closed (takeover.go)
	}
	d.sub.mu.Lock()
	w := d.sub.rtcp
	d.sub.mu.Unlock()
	if w == nil {
		return nil
	}
	sr := d.senderReport(b.ssrc, clock, now, wall)
	return w.WriteRTCP([]rtcp.Packet{&sr})
}

// senderReport is d's report for ssrc at now (Now()) and wall, from clock
// (DownTrack.rtpClock) and the counters: the RTP timestamp is the last
// live packet's advanced by the time since it was sent, so it maps wall
// onto the rewritten timestamps the subscriber receives.
func (d *DownTrack) senderReport(ssrc uint32, clock uint64, now int64, wall time.Time) rtcp.SenderReport {
	ts, at := uint32(clock>>32), uint32(clock)
	elapsedUS := uint32(now/1000) - at // wraps every 71 minutes; a track that quiet is reported a little off
	rtpTS := ts + uint32(uint64(elapsedUS)*opusClockRate/1e6)
	return rtcp.SenderReport{
		SSRC:        ssrc,
		NTPTime:     ntpTime(wall),
		RTPTime:     rtpTS,
		PacketCount: d.sentPackets.Load(),
		OctetCount:  d.sentOctets.Load(),
	}
}

// ntpTime is t as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed
// point).
func ntpTime(t time.Time) uint64 {
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}
