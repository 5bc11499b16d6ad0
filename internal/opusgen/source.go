package opusgen

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/hraban/opus"
)

// Source produces a synthetic signal encoded as 10 ms Opus frames at 48 kHz.
// A voice source (NewSource) sounds vaguely like speech: a few harmonics of
// a slowly gliding pitch, amplitude-modulated at a syllable rate around
// 4 Hz, plus a little noise. Its parameters come from the seed, so two
// sources with different seeds produce different audio and different
// payloads. A silent source (NewSilentSource) produces digital silence.
//
// A Source is not safe for concurrent use.
type Source struct {
	enc      *opus.Encoder
	channels int
	silent   bool

	rng *rand.Rand
	// Voice parameters, fixed at construction from the seed.
	pitch     float64    // base pitch, Hz
	glideRate float64    // Hz of the pitch glide
	glideTone float64    // relative depth of the glide
	sylRate   float64    // Hz of the syllable envelope
	harmonics [6]float64 // amplitude of harmonic k+1
	phase0    float64    // glide phase offset
	gain      float64    // peak amplitude, as a fraction of full scale

	n     int64   // samples produced so far, per channel
	phase float64 // oscillator phase of the fundamental, radians
	pcm   []int16 // one frame, interleaved; reused
	out   []byte  // encoder output; reused, copied out
	level uint8   // level of the last frame
}

// NewSource returns a voice-like source seeded by seed, with 1 or 2
// channels (a stereo source carries the same signal in both).
func NewSource(seed int64, channels int) (*Source, error) {
	s, err := newSource(channels)
	if err != nil {
		return nil, err
	}
	s.rng = rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	r := s.rng
	s.pitch = 90 + r.Float64()*160 // 90..250 Hz: low male to high female
	s.glideRate = 0.2 + r.Float64()*0.5
	s.glideTone = 0.08 + r.Float64()*0.12
	s.sylRate = 3 + r.Float64()*2 // 3..5 Hz
	for k := range s.harmonics {
		s.harmonics[k] = (0.5 + r.Float64()) / float64(k+1)
	}
	s.phase0 = r.Float64() * 2 * math.Pi
	s.gain = 0.25 + r.Float64()*0.15
	return s, nil
}

// NewSilentSource returns a source of digital silence; its LastLevel is 127.
func NewSilentSource(channels int) (*Source, error) {
	s, err := newSource(channels)
	if err != nil {
		return nil, err
	}
	s.silent = true
	return s, nil
}

func newSource(channels int) (*Source, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("opusgen: channels must be 1 or 2, not %d", channels)
	}
	enc, err := opus.NewEncoder(SampleRate, channels, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opusgen: new encoder: %w", err)
	}
	return &Source{
		enc:      enc,
		channels: channels,
		pcm:      make([]int16, FrameSamples*channels),
		out:      make([]byte, maxPacket),
		level:    127,
	}, nil
}

// Channels returns the source's channel count.
func (s *Source) Channels() int { return s.channels }

// NextFrame synthesizes the next 10 ms and returns it encoded as one Opus
// payload. The returned slice is new on every call and belongs to the
// caller.
func (s *Source) NextFrame() ([]byte, error) {
	if s.silent {
		clear(s.pcm)
	} else {
		s.synthesize()
	}
	s.level = Level(s.pcm)
	n, err := s.enc.Encode(s.pcm, s.out)
	if err != nil {
		return nil, fmt.Errorf("opusgen: encode: %w", err)
	}
	frame := make([]byte, n)
	copy(frame, s.out[:n])
	return frame, nil
}

// LastLevel returns the audio level of the most recent frame's PCM in
// -dBov as RFC 6464 has it: 0 is the loudest, 127 silence. Before the first
// frame it is 127.
func (s *Source) LastLevel() uint8 { return s.level }

func (s *Source) synthesize() {
	const dt = 1.0 / SampleRate
	for i := 0; i < FrameSamples; i++ {
		t := float64(s.n) * dt
		f0 := s.pitch * (1 + s.glideTone*math.Sin(2*math.Pi*s.glideRate*t+s.phase0))
		s.phase += 2 * math.Pi * f0 * dt
		if s.phase > 2*math.Pi {
			s.phase -= 2 * math.Pi
		}
		var v float64
		for k, a := range s.harmonics {
			v += a * math.Sin(float64(k+1)*s.phase)
		}
		// Syllables: a raised cosine that never quite reaches zero, so
		// every frame is clearly louder than silence.
		env := 0.15 + 0.85*0.5*(1-math.Cos(2*math.Pi*s.sylRate*t))
		v = v*env*0.5 + (s.rng.Float64()*2-1)*0.02
		x := s.gain * v
		if x > 1 {
			x = 1
		} else if x < -1 {
			x = -1
		}
		sample := int16(x * math.MaxInt16)
		for c := 0; c < s.channels; c++ {
			s.pcm[i*s.channels+c] = sample
		}
		s.n++
	}
}

// Level returns the RFC 6464 audio level of interleaved 16-bit PCM: the RMS
// relative to full scale in -dBov, clamped to 0 (loudest) .. 127 (silence).
func Level(pcm []int16) uint8 {
	if len(pcm) == 0 {
		return 127
	}
	var sum float64
	for _, v := range pcm {
		x := float64(v) / math.MaxInt16
		sum += x * x
	}
	rms := math.Sqrt(sum / float64(len(pcm)))
	if rms == 0 {
		return 127
	}
	db := -20 * math.Log10(rms)
	switch {
	case db <= 0:
		return 0
	case db >= 127:
		return 127
	}
	return uint8(math.Round(db))
}
