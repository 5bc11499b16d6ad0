package media

import "sync/atomic"

// munger maps one publisher stream's sequence numbers and timestamps onto
// one subscriber's, keeping the subscriber's stream continuous when the
// publisher's is not: a new SSRC (the publisher reconnected) continues
// where the old one stopped, and a pause longer than resumeGap hides the
// gap in sequence numbers, so that the subscriber sees no burst of loss.
// Timestamps keep the real time elapsed.
//
// next and sent are called by the track's reader only; outTS and inSeq
// also by whoever serves the subscriber's NACKs (retransmissions), which is why the
// offsets are atomics.
type munger struct {
	// out = in + offset, modulo 2^16 and 2^32.
	seqOffset atomic.Uint32
	tsOffset  atomic.Uint32

	// Owned by the track's reader.
	started    bool
	inSSRC     uint32
	lastOutSeq uint16
	lastOutTS  uint32
	lastWrite  int64 // Now() of the last packet that went out
}

// resumeGap is how long a track may pause before its sequence numbers are
// rebased on resume, so that the subscriber sees a continuous stream
// rather than a burst of loss.
const resumeGap = 200e6 // ns

// minFrameTicks is the least a restarted stream's timestamps advance: one
// 2.5 ms Opus frame, the shortest there is, so that the first packet of
// the new stream never repeats the last timestamp of the old.
const minFrameTicks = 120

// next is the subscriber's sequence number and timestamp for the live
// packet f, read at now. It moves the offsets as the stream requires;
// call sent once the packet has gone out.
func (m *munger) next(f *rtpFields, now int64) (seq uint16, ts uint32) {
	switch {
	case !m.started:
		m.started, m.inSSRC, m.lastWrite = true, f.ssrc, now
	case f.ssrc != m.inSSRC:
		// A new stream from the publisher: continue this subscriber's
		// numbering where it stopped, and its clock by the time elapsed.
		m.inSSRC = f.ssrc
		m.seqOffset.Store(uint32(m.lastOutSeq + 1 - f.seq))
		elapsed := max(uint32((now-m.lastWrite)*int64(Opus.ClockRate)/1e9), minFrameTicks)
		m.tsOffset.Store(m.lastOutTS + elapsed - f.ts)
	default:
		seq := f.seq + uint16(m.seqOffset.Load())
		if now-m.lastWrite > resumeGap && seq != m.lastOutSeq+1 && seq-m.lastOutSeq < 0x8000 {
			// The stream paused and resumed with a gap: hide it.
			m.seqOffset.Store(uint32(m.lastOutSeq + 1 - f.seq))
		}
	}
	return f.seq + uint16(m.seqOffset.Load()), m.outTS(f.ts)
}

// sent records that the packet numbered seq, ts went out at now. A packet
// that failed to go out is not recorded, so that its loss shows.
func (m *munger) sent(seq uint16, ts uint32, now int64) {
	m.lastOutSeq, m.lastOutTS, m.lastWrite = seq, ts, now
}

// outTS is the subscriber's timestamp for the publisher's ts.
func (m *munger) outTS(ts uint32) uint32 { return ts + m.tsOffset.Load() }

// inSeq is the publisher's sequence number for the subscriber's seq, to
// find a packet the subscriber asks for in the history.
func (m *munger) inSeq(seq uint16) uint16 { return seq - uint16(m.seqOffset.Load()) }
