//go:build cgo

package mix

import (
	"github.com/lianmai/relay/bufpool"
)

// tick makes the mix of one frame. frame is the mixer's clock: the number
// of 10 ms periods since the mixer started (run passes its schedule index;
// tests pass a fake one). The packet's timestamp is ts0 + 480×frame, so
// timestamps follow the steady clock whether or not ticks were skipped.
func (m *Mixer) tick(frame uint64) {
	clear(m.acc)
	contributed := 0
	for _, in := range *m.inputs.Load() {
		if m.take(in) {
			contributed++
		}
	}
	if contributed == 0 {
		if m.quiet >= silenceTail {
			return // nobody to hear: skip; the next packet carries the marker
		}
		m.quiet++
	} else {
		m.quiet = 0
	}
	if m.lim.process(m.acc, m.pcm) {
		m.met.FramesLimited.Inc()
	}
	pkt := bufpool.Get()
	buf := pkt.Buf()
	n, err := m.enc.Encode(m.pcm, buf[headerSize:])
	if err != nil {
		pkt.Release()
		m.met.EncodeErrors.Inc()
		return // a gap: the next packet carries the marker
	}
	marker := !m.sent || frame != m.last+1
	putHeader(buf, marker, m.seq, m.ts0+uint32(frame*FrameSamples), m.ssrc)
	n += headerSize
	pkt.SetLen(n)
	m.seq++
	m.sent, m.last = true, frame
	m.met.PacketsOut.Inc()
	m.out(pkt, n)
}

// take adds the input's next 10 ms to the sum, and reports whether it had
// any (a muted, removed or idle input has none and costs no decode).
func (m *Mixer) take(in *Input) bool {
	// Longer packets (20 ms) leave samples for the next ticks; shorter
	// ones (5 ms) need several packets per tick, hence the loop.
	for tries := 0; in.pcmLen < FrameSamples && tries < 4; tries++ {
		in.mu.Lock()
		if in.muted || in.removed {
			in.mu.Unlock()
			in.pcmLen = 0
			return false
		}
		act, n := in.jb.pop(m.payload)
		in.mu.Unlock()
		if act == actNothing {
			break
		}
		m.decode(in, act, m.payload[:n])
	}
	if in.pcmLen == 0 {
		return false
	}
	k := min(in.pcmLen, FrameSamples)
	for i, v := range in.pcm[:k] {
		m.acc[i] += int32(v)
	}
	in.pcmLen = copy(in.pcm, in.pcm[k:in.pcmLen])
	return true
}

// decode appends the input's next frame to its pcm, as act says.
func (m *Mixer) decode(in *Input, act action, payload []byte) {
	dst := in.pcm[in.pcmLen:]
	switch act {
	case actPlay:
		n, err := in.dec.Decode(payload, dst)
		if err == nil {
			in.pcmLen += n
			in.lastDur = n
			in.decoded.Add(1)
			m.met.FramesDecoded.Inc()
			return
		}
		m.met.DecodeErrors.Inc()
	case actFEC:
		// Only SILK and hybrid packets carry in-band FEC (libopus would
		// silently conceal instead): count what really was recovered.
		if !hasSILK(payload) {
			break
		}
		// hraban/opus sizes FEC and concealment by the buffer's capacity:
		// exactly the missing duration.
		if err := in.dec.DecodeFEC(payload, dst[:in.lastDur:in.lastDur]); err == nil {
			in.pcmLen += in.lastDur
			in.fec.Add(1)
			m.met.FramesFEC.Inc()
			return
		}
		m.met.DecodeErrors.Inc()
	}
	if err := in.dec.DecodePLC(dst[:in.lastDur:in.lastDur]); err != nil {
		m.met.DecodeErrors.Inc()
		return
	}
	in.pcmLen += in.lastDur
	in.concealed.Add(1)
	m.met.FramesConcealed.Inc()
}

// hasSILK reports whether an Opus packet's TOC byte says SILK or hybrid
// mode (configurations 0..15, RFC 6716 section 3.1), the modes whose
// packets can carry the previous frame's in-band FEC.
func hasSILK(payload []byte) bool { return payload[0]>>3 < 16 }
