package loadtest

import (
	"encoding/binary"

	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/loadtest/report"
)

// mixStreamID is the MediaStream id of the room's audience mix in the sub
// connection (issue 12). Its RTP carries the mixer's own SSRC, sequence
// numbers and timestamps, not any publisher's, so no frame log can tell
// when its frames were sent: mixStats measures it against its own clock.
const mixStreamID = "mix"

// seqSlack is how many sequence numbers before a receiver's first packet
// the duplicate bitset keeps room for: packets reordered ahead of it.
const seqSlack = 64

// mixStats is what one receiver measured of the room's mix. Frame k of
// the mix is the one whose RTP timestamp is ts0 + 480k, ts0 being the
// first packet's; it is due at baseNs (the first packet's arrival) +
// (ts − ts0)/48 ms, and played at its due time + playoutDeadline, the
// track path's 40 ms. Loss comes from sequence-number gaps (extended over
// wrap-around), since the mixer numbers its packets +1 each.
//
// A packet counts when its due time falls inside the run's and the
// receiver's windows. Owned by the stream's reader goroutine while it
// runs; read by the report only after that goroutine has ended.
type mixStats struct {
	run, own *window
	dialNs   int64

	started bool
	ts0     uint32   // RTP timestamp of the first packet (with payload)
	baseNs  int64    // its arrival time: the mix clock's origin
	seqBase int64    // the extended sequence number bit 0 of seen stands for
	maxExt  int64    // the highest extended sequence number read
	seen    []uint64 // bitset by extended sequence number − seqBase
	frames  int64    // frames the run can hold: a timestamp further on is not the mix's

	// The in-window packets' extents, for loss and skipped frames; valid
	// when received > 0.
	minSeq, maxSeq     int64
	minFrame, maxFrame int64

	packets    uint64 // every packet read, padding and duplicates included
	padding    uint64 // packets without payload, skipped
	received   uint64 // distinct in-window packets
	onTime     uint64 // of those, arriving by their due time + playoutDeadline
	late       uint64 // of those, arriving after it
	duplicates uint64 // in-window packets whose sequence number was read already
	unknown    uint64 // sequence numbers or timestamps too far from the stream's to place (a restarted mixer, a wild jump)

	lateness report.Hist // arrival − due time of every distinct in-window packet; early ones count 0
	play     *playout    // nil unless this receiver decodes (the stutter sample)

	live *liveCounters
}

// newMixStats returns the stats of one mix stream; maxPackets bounds the
// sequence numbers it can tell apart (the run's frames: one packet per
// 10 ms).
func newMixStats(run, own *window, dialNs int64, maxPackets int, live *liveCounters) *mixStats {
	return &mixStats{run: run, own: own, dialNs: dialNs, live: live, frames: int64(maxPackets),
		seen: make([]uint64, (maxPackets+seqSlack+63)/64)}
}

// frameAt is frame k's due time on the mix clock (frameClock).
func (m *mixStats) frameAt(k int64) (int64, bool) {
	if !m.started {
		return 0, false
	}
	return m.baseNs + k*frameInterval, true
}

// onPacket accounts for one RTP packet of the mix (raw, header included)
// that arrived at now. It does not allocate.
func (m *mixStats) onPacket(now int64, raw []byte) {
	m.packets++
	m.live.packets.Add(1)
	payload, ok := rtpPayload(raw)
	if !ok || len(payload) == 0 {
		m.padding++
		return
	}
	seq := binary.BigEndian.Uint16(raw[2:])
	ts := binary.BigEndian.Uint32(raw[4:])
	if !m.started {
		m.started = true
		m.ts0, m.baseNs = ts, now
		m.maxExt = 1<<40 + int64(seq) // far from 0, so that going back never underflows
		m.seqBase = m.maxExt - seqSlack
	}
	// Extend the sequence number: the nearest to the highest so far,
	// forward or back, across wrap-around. One that cannot be placed does
	// not move the highest, so that a stray packet leaves the stream's
	// numbering alone.
	ext := m.maxExt + int64(int16(seq-uint16(m.maxExt)))
	i := ext - m.seqBase
	// The timestamp's offset from the first packet's, in samples; signed,
	// so that a packet reordered ahead of the first is before it. A frame
	// past what the run can hold would have the playout conceal millions.
	d := int64(int32(ts - m.ts0))
	k := floorDiv(d, opusgen.FrameSamples)
	if i < 0 || i >= int64(len(m.seen))*64 || k >= m.frames {
		m.unknown++
		return
	}
	m.maxExt = max(m.maxExt, ext)
	due := m.baseNs + d*1e9/opusgen.SampleRate

	if m.play != nil {
		m.play.arrive(k, now, payload)
	}
	in := k >= 0 && contains(due, m.run, m.own)
	word, bit := i/64, uint64(1)<<(i%64)
	if m.seen[word]&bit != 0 {
		if in {
			m.duplicates++
		}
		return
	}
	m.seen[word] |= bit
	if !in {
		return
	}
	if m.received == 0 {
		m.minSeq, m.maxSeq, m.minFrame, m.maxFrame = ext, ext, k, k
	}
	m.minSeq, m.maxSeq = min(m.minSeq, ext), max(m.maxSeq, ext)
	m.minFrame, m.maxFrame = min(m.minFrame, k), max(m.maxFrame, k)
	m.received++
	late := now - due
	m.lateness.Add(max(late, 0))
	if late <= playoutDeadline {
		m.onTime++
	} else {
		m.late++
		m.live.late.Add(1)
	}
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// mixResult is a mix stream's final accounting over its window.
type mixResult struct {
	expectedPackets int64 // sequence numbers from the first in-window packet's to the last's
	lost            int64 // of those, never received: the network's loss, after any repair
	skipped         int64 // frames the timestamps skip where no sequence number is missing: ticks the mixer sent nothing for
	expectedFrames  int64 // frames due in the window from the first packet on, by the mix clock
	stutter         int64 // of those, not received by their due time + playoutDeadline
	firstNs         int64 // dial to the first packet, -1 if none
}

// finish computes the stream's result. Call it after the reader ended and
// both windows are final.
func (m *mixStats) finish() mixResult {
	r := mixResult{firstNs: -1}
	if !m.started {
		return r
	}
	r.firstNs = m.baseNs - m.dialNs
	start := max(m.run.start.Load(), m.own.start.Load())
	end := min(m.run.end.Load(), m.own.end.Load())
	if start == never || end == never || end < start {
		return r
	}
	// Frames due in [start, end], from frame 0 (the first packet) on.
	a := max(0, floorDiv(start-m.baseNs+frameInterval-1, frameInterval))
	b := floorDiv(end-m.baseNs, frameInterval)
	if b < a {
		return r
	}
	if m.play != nil {
		m.play.finish(b)
	}
	r.expectedFrames = b - a + 1
	r.stutter = max(r.expectedFrames-int64(m.onTime), 0)
	if m.received > 0 {
		r.expectedPackets = m.maxSeq - m.minSeq + 1
		r.lost = max(r.expectedPackets-int64(m.received), 0)
		r.skipped = max((m.maxFrame-m.minFrame)-(m.maxSeq-m.minSeq), 0)
	}
	return r
}
