package server

import (
	"log/slog"

	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/mix"
	"github.com/lianmai/relay/sfu"
)

// MixConfig is the audience mixer's settings, handed to NewMixer for
// every room's mixer. Bitrate 0 and Complexity -1 (mix.ComplexityDefault)
// leave the mixer's own defaults; Complexity 0 is the cheapest encoder
// setting, not the default, so set -1 when building one by hand.
type MixConfig struct {
	// Bitrate of the mixed Opus stream, bits per second; 0: the mixer's
	// default.
	Bitrate int
	// Complexity of the Opus encoder, 0 (cheapest) to 10; -1: the mixer's
	// default.
	Complexity int

	// Metrics and Logger are filled in by New: the mixers' metrics on the
	// relay's registry, and the relay's logger.
	Metrics *mix.Metrics
	Logger  *slog.Logger
}

// NewMixerFunc starts one room's audience mixer with cfg; each mixed RTP
// packet goes to out (see sfu.NewMixerFunc for the contract). The relay
// binary passes LibopusMixer (mixer.go); nil leaves the relay without a
// mix: everyone gets separate tracks.
type NewMixerFunc func(cfg MixConfig, out func(pkt *bufpool.Packet, n int)) (sfu.Mixer, error)

// sfuMixer binds the mixer settings to f for the room layer; nil if f is.
func sfuMixer(f NewMixerFunc, cfg MixConfig) sfu.NewMixerFunc {
	if f == nil {
		return nil
	}
	return func(out func(pkt *bufpool.Packet, n int)) (sfu.Mixer, error) { return f(cfg, out) }
}
