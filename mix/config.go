package mix

import (
	"fmt"
	"log/slog"
	"time"
)

// The mixer's fixed parameters: the RTP clock is the sample clock, one
// frame is 10 ms.
const (
	SampleRate    = 48000
	FrameDuration = 10 * time.Millisecond
	FrameSamples  = SampleRate / 100 // per channel; also the RTP timestamp step
	PayloadType   = 111              // the Opus payload type the relay negotiates
)

// DefaultBitrate is the mixed stream's bitrate when Config.Bitrate is 0:
// 32 kb/s is transparent for several voices in mono wideband/fullband Opus
// and a tenth of what a listener on 9 separate tracks downloads.
const DefaultBitrate = 32000

// ComplexityDefault in Config.Complexity keeps the mixer's default encoder
// complexity (DefaultComplexity). 0 is a valid complexity (the cheapest), so
// "default" needs a value of its own.
const ComplexityDefault = -1

// DefaultComplexity is the libopus complexity the mixer's encoder uses
// unless told otherwise. 5 rather than libopus's own 9 or 10: the encode is
// most of a tick and 9 cost about 2.4 times as much here; at 3 the quality
// tests fail (tones more than 2 dB apart, one 7 dB low after an unmute).
// docs/performance.md has the figures.
const DefaultComplexity = 5

// Bitrate limits libopus accepts for a mono stream.
const (
	MinBitrate = 6000
	MaxBitrate = 256000
)

// Config is what a Mixer is made with.
type Config struct {
	// Bitrate of the mixed stream in bits/s; 0: DefaultBitrate.
	Bitrate int
	// Complexity of the libopus encoder, 0 (cheapest) .. 10 (best);
	// ComplexityDefault (-1): DefaultComplexity. The zero value means
	// complexity 0, the cheapest and worst: set ComplexityDefault unless
	// 0 is meant.
	Complexity int
	// Metrics the mixer counts into; nil: a private set nobody scrapes.
	Metrics *Metrics
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	if c.Bitrate < MinBitrate || c.Bitrate > MaxBitrate {
		return c, fmt.Errorf("%w: bitrate %d b/s is outside %d..%d (0 for the default, %d)",
			ErrBadConfig, c.Bitrate, MinBitrate, MaxBitrate, DefaultBitrate)
	}
	if c.Complexity == ComplexityDefault {
		c.Complexity = DefaultComplexity
	}
	if c.Complexity < 0 || c.Complexity > 10 {
		return c, fmt.Errorf("%w: complexity %d is outside 0..10 (%d for the default, %d)",
			ErrBadConfig, c.Complexity, ComplexityDefault, DefaultComplexity)
	}
	if c.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return c, err
		}
		c.Metrics = m
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
