package server

import (
	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/mix"
	"github.com/lianmai/relay/sfu"
)

// MixAvailable says whether this build has the audience mixer: false when
// the relay was built without cgo (no libopus), and then LibopusMixer
// fails with mix.ErrUnavailable.
const MixAvailable = mix.Available

// LibopusMixer is the relay's audience mixer for Config.NewMixer: package
// mix (libopus) behind the room layer's interface.
func LibopusMixer(cfg MixConfig, out func(pkt *bufpool.Packet, n int)) (sfu.Mixer, error) {
	m, err := mix.New(mix.Config{Bitrate: cfg.Bitrate, Complexity: cfg.Complexity, Metrics: cfg.Metrics, Logger: cfg.Logger}, out)
	if err != nil {
		return nil, err
	}
	return libopusMixer{m}, nil
}

// libopusMixer adapts *mix.Mixer to sfu.Mixer: the two differ only in
// the input's type.
type libopusMixer struct{ *mix.Mixer }

func (m libopusMixer) AddInput() sfu.MixInput { return m.Mixer.AddInput() }

func (m libopusMixer) RemoveInput(in sfu.MixInput) {
	if in, ok := in.(*mix.Input); ok {
		m.Mixer.RemoveInput(in)
	}
}
