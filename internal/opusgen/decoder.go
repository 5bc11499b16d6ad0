package opusgen

import (
	"errors"
	"fmt"

	"github.com/hraban/opus"
)

// Decoder decodes Opus payloads at 48 kHz, for tests that check what
// arrived. It keeps the PCM of the last decoded or concealed frame.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	dec      *opus.Decoder
	channels int
	pcm      []int16 // room for the longest Opus frame; reused
	last     []int16 // the last frame, a prefix of pcm
}

// NewDecoder returns a decoder for 1 or 2 channels.
func NewDecoder(channels int) (*Decoder, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("opusgen: channels must be 1 or 2, not %d", channels)
	}
	dec, err := opus.NewDecoder(SampleRate, channels)
	if err != nil {
		return nil, fmt.Errorf("opusgen: new decoder: %w", err)
	}
	return &Decoder{dec: dec, channels: channels, pcm: make([]int16, maxFrameSamples*channels)}, nil
}

// Decode decodes one payload and returns the number of samples per channel
// it held (480 for a 10 ms frame). An empty payload (an RTP padding packet)
// is an error; skip those before decoding.
func (d *Decoder) Decode(payload []byte) (samples int, err error) {
	if len(payload) == 0 {
		return 0, errors.New("opusgen: decode: empty payload")
	}
	n, err := d.dec.Decode(payload, d.pcm)
	if err != nil {
		return 0, fmt.Errorf("opusgen: decode: %w", err)
	}
	d.last = d.pcm[:n*d.channels]
	return n, nil
}

// Conceal synthesizes one lost 10 ms frame with the decoder's packet loss
// concealment.
func (d *Decoder) Conceal() error {
	// hraban/opus sizes the concealment by the buffer's capacity, which
	// must be exactly the missing duration.
	n := FrameSamples * d.channels
	buf := d.pcm[:n:n]
	if err := d.dec.DecodePLC(buf); err != nil {
		return fmt.Errorf("opusgen: conceal: %w", err)
	}
	d.last = buf
	return nil
}

// LastLevel returns the RFC 6464 level (see Level) of the last decoded or
// concealed frame, 127 before the first.
func (d *Decoder) LastLevel() uint8 { return Level(d.last) }

// Last returns the PCM of the last decoded or concealed frame,
// interleaved; nil before the first. It is the decoder's buffer: valid
// until the next Decode or Conceal.
func (d *Decoder) Last() []int16 { return d.last }
