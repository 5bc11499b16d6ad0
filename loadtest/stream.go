package loadtest

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// playoutDeadline is how long after its send time a frame may arrive and
// still be played: a fixed 40 ms jitter buffer. A frame that misses it is
// late, and the listener hears concealment in its place.
const playoutDeadline = int64(40 * time.Millisecond)

// window is a measurement window: frames sent in [start, end] count.
// Both are ns since epoch, stored atomically because reader goroutines
// read them on every packet; never until set.
type window struct {
	start atomic.Int64
	end   atomic.Int64
}

// newWindow returns a window from start to end; never for either means
// not set yet (a start of never counts nothing, an end of never everything
// after the start).
func newWindow(start, end int64) *window {
	w := &window{}
	w.start.Store(start)
	w.end.Store(end)
	return w
}

// contains says whether a frame sent at ns falls inside both windows.
func contains(ns int64, run, own *window) bool {
	return ns >= run.start.Load() && ns >= own.start.Load() &&
		ns <= run.end.Load() && ns <= own.end.Load()
}

// streamStats is what one receiver measured of one publisher's stream.
// Owned by the stream's reader goroutine while it runs; read by the
// report only after that goroutine has ended.
type streamStats struct {
	log      *frameLog
	run, own *window // the run's measurement window and the receiver's own (churn ends it early)
	dialNs   int64   // when the receiver started to dial, for join latency

	seen       []uint64 // bitset by frame index: received at least once
	firstFrame int64    // frame index of the first packet, -1 before
	firstNs    int64    // arrival time of the first packet

	packets     uint64 // every packet read, padding and duplicates included
	received    uint64 // distinct in-window frames received, on time or not
	onTime      uint64 // of those, arriving within playoutDeadline of their send time
	late        uint64 // of those, arriving after it
	duplicates  uint64 // in-window packets for a frame already received (retransmissions)
	seqMismatch uint64 // packets whose sequence number is not the one their frame was sent with
	unknown     uint64 // packets whose timestamp matches no frame the publisher stamped
	padding     uint64 // packets without payload, skipped

	lat      report.Hist  // one-way latency of every in-window packet, first copies only
	repaired uint64       // in-window frames lost on the uplink and received anyway (retransmitted)
	repair   *report.Hist // their one-way latency; nil until the first
	play     *playout     // nil unless this receiver decodes (the stutter sample)

	live *liveCounters // the run's live counters, for the progress line and the time series

	heard *atomic.Int64 // if set, takes the arrival time of the first packet (once, of all who share it)
}

// liveCounters are updated by every reader as packets arrive.
type liveCounters struct {
	packets atomic.Uint64 // packets read
	late    atomic.Uint64 // in-window frames that arrived after their deadline
}

func newStreamStats(log *frameLog, run, own *window, dialNs int64, play *playout, live *liveCounters) *streamStats {
	return &streamStats{
		log: log, run: run, own: own, dialNs: dialNs, play: play,
		seen:       make([]uint64, (len(log.stamps)+63)/64),
		firstFrame: -1,
		live:       live,
	}
}

// onPacket accounts for one RTP packet (raw, header included) that
// arrived at now. It does not allocate.
func (s *streamStats) onPacket(now int64, raw []byte) {
	s.packets++
	s.live.packets.Add(1)
	payload, ok := rtpPayload(raw)
	if !ok || len(payload) == 0 {
		s.padding++
		return
	}
	seq := binary.BigEndian.Uint16(raw[2:])
	ts := binary.BigEndian.Uint32(raw[4:])
	k := s.log.frameOf(ts)
	sent, _, ok := s.log.sent(k)
	if !ok {
		s.unknown++
		return
	}
	if !s.log.seqMatches(k, seq) {
		s.seqMismatch++
	}
	if s.firstFrame < 0 {
		s.firstFrame, s.firstNs = k, now
		if s.heard != nil {
			s.heard.CompareAndSwap(0, now)
		}
	}
	if s.play != nil {
		s.play.arrive(k, now, payload)
	}
	in := k >= s.firstFrame && contains(sent, s.run, s.own)
	word, bit := k/64, uint64(1)<<(k%64)
	if s.seen[word]&bit != 0 {
		if in {
			s.duplicates++
		}
		return
	}
	s.seen[word] |= bit
	if !in {
		return
	}
	lat := now - sent
	s.lat.Add(lat)
	s.received++
	if s.log.uplinkLost(k) {
		s.repaired++
		if s.repair == nil {
			s.repair = &report.Hist{}
		}
		s.repair.Add(lat)
	}
	if lat <= playoutDeadline {
		s.onTime++
	} else {
		s.late++
		s.live.late.Add(1)
	}
}

// rtpPayload returns the payload of an RTP packet, without CSRCs, header
// extension and padding.
func rtpPayload(b []byte) ([]byte, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 {
		end -= int(b[end-1])
	}
	if off > end {
		return nil, false
	}
	return b[off:end], true
}

// streamResult is a stream's final accounting over its window.
type streamResult struct {
	expected      int64 // frames the publisher produced in the window, dropped ones included
	senderDropped int64 // of those, dropped by injected sender loss before sending
	lost          int64 // sent but never received
	stutter       int64 // not playable by their deadline: lost, late or dropped by the sender
	joinNs        int64 // dial to first packet, or -1 if the publisher was not yet sending at dial
}

// finish computes the stream's result. Call it after the reader ended and
// both windows are final.
func (s *streamStats) finish() streamResult {
	r := streamResult{joinNs: -1}
	if first := s.log.first.Load(); s.firstFrame >= 0 && first != 0 && first < s.dialNs {
		r.joinNs = s.firstNs - s.dialNs
	}
	if s.firstFrame < 0 {
		return r
	}
	firstSent, _, _ := s.log.sent(s.firstFrame)
	start := max(s.run.start.Load(), s.own.start.Load(), firstSent)
	end := min(s.run.end.Load(), s.own.end.Load())
	if start == never || end == never {
		return r
	}
	a := max(s.firstFrame, s.log.firstAtOrAfter(start))
	b := s.log.lastAtOrBefore(end)
	if b < a {
		return r
	}
	if s.play != nil {
		s.play.finish(b)
	}
	r.expected = b - a + 1
	r.senderDropped = s.log.droppedIn(a, b)
	r.lost = max(r.expected-r.senderDropped-int64(s.received), 0)
	r.stutter = max(r.expected-int64(s.onTime), 0)
	return r
}
