package loadtest

import (
	"fmt"

	"github.com/lianmai/relay/internal/opusgen"
)

// voice is a publisher's audio: a loop of real 10 ms Opus frames from its
// own voice-like source, encoded once at setup so that pacing costs no
// encoder time. Read-only after encodeVoice; the pacer indexes it by
// frame number.
type voice struct {
	frames [][]byte
	levels []uint8 // RFC 6464 level of each frame (0 loudest, 127 silence)
}

// encodeVoice encodes frames 10 ms frames of the mono voice seeded by seed.
func encodeVoice(seed int64, frames int) (*voice, error) {
	src, err := opusgen.NewSource(seed, 1)
	if err != nil {
		return nil, fmt.Errorf("opus source: %w (is libopus-dev installed?)", err)
	}
	v := &voice{frames: make([][]byte, frames), levels: make([]uint8, frames)}
	for i := range frames {
		f, err := src.NextFrame()
		if err != nil {
			return nil, fmt.Errorf("encode voice frame %d: %w", i, err)
		}
		v.frames[i], v.levels[i] = f, src.LastLevel()
	}
	return v, nil
}
