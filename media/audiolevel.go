package media

import (
	"encoding/binary"
	"math"
	"sync/atomic"
)

// audioLevel finds the RFC 6464 audio level (0 loudest … 127 silent, in
// -dBov) in the header extension with the given id of b, the packet f was
// parsed from, without allocating.
func audioLevel(b []byte, f *rtpFields, id uint8) (uint8, bool) {
	off := f.extOffset
	if off == 0 {
		return 0, false
	}
	// parseRTP checked that the extension lies within b.
	profile := binary.BigEndian.Uint16(b[off:])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	i := off + 4
	switch {
	case profile == 0xbede: // RFC 8285 one-byte header
		for i < end {
			h := b[i]
			eid, n := h>>4, int(h&0x0f)+1
			switch {
			case eid == 0: // padding
				i++
				continue
			case eid == 15:
				return 0, false
			case eid == id && i+1 < end:
				return b[i+1] & 0x7f, true
			}
			i += 1 + n
		}
	case profile&0xfff0 == 0x1000: // RFC 8285 two-byte header
		for i+1 < end {
			eid, n := b[i], int(b[i+1])
			if eid == 0 {
				i++
				continue
			}
			if eid == id && n >= 1 && i+2 < end {
				return b[i+2] & 0x7f, true
			}
			i += 2 + n
		}
	}
	return 0, false
}

// levelMeter keeps a publisher's smoothed audio level. The track's reader
// is the only writer; the room's speaker ticker reads.
type levelMeter struct {
	smoothed atomic.Uint32 // 0 (silent) … 1 (full scale), float32 bits
	at       atomic.Int64  // nanotime of the last update
}

// levelSmoothing is the weight of each new 10 ms packet: a time constant
// of about 100 ms, quick enough to follow turns in a conversation, slow
// enough not to flicker between syllables.
const levelSmoothing = 0.1

// update adds one packet's level in -dBov.
func (m *levelMeter) update(dBov uint8, now int64) {
	v := float32(127-dBov) / 127
	cur := math.Float32frombits(m.smoothed.Load())
	m.smoothed.Store(math.Float32bits(cur + levelSmoothing*(v-cur)))
	m.at.Store(now)
}

// level is the smoothed level, or 0 when no level arrived within stale ns
// (a publisher in DTX silence sends nothing).
func (m *levelMeter) level(now, stale int64) float64 {
	if now-m.at.Load() > stale {
		return 0
	}
	return float64(math.Float32frombits(m.smoothed.Load()))
}
