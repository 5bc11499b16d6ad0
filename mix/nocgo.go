//go:build !cgo

package mix

import "github.com/lianmai/relay/bufpool"

// Available reports whether this build can mix: false, it was built
// without cgo, so without libopus.
const Available = false

// Mixer is unavailable in a build without cgo; New returns ErrUnavailable.
type Mixer struct{}

// Input is unavailable in a build without cgo.
type Input struct{}

// New returns ErrUnavailable: without cgo there is no libopus to decode
// and encode with. Serve listeners separate tracks instead.
func New(cfg Config, out func(pkt *bufpool.Packet, n int)) (*Mixer, error) {
	return nil, ErrUnavailable
}

// AddInput returns an input that ignores what it is given.
func (m *Mixer) AddInput() *Input { return &Input{} }

// RemoveInput does nothing.
func (m *Mixer) RemoveInput(in *Input) {}

// Inputs is 0.
func (m *Mixer) Inputs() int { return 0 }

// Close does nothing.
func (m *Mixer) Close() {}

// WriteRTP does nothing.
func (in *Input) WriteRTP(seq uint16, ts uint32, payload []byte) {}

// SetMuted does nothing.
func (in *Input) SetMuted(muted bool) {}

// InputStats counts what became of one input's frames since AddInput.
type InputStats struct {
	Decoded   uint64 // frames decoded from their own packet
	FEC       uint64 // lost frames recovered from the next packet's FEC
	Concealed uint64 // frames synthesized by packet loss concealment
	Dropped   uint64 // packets the jitter buffer dropped (late, duplicate, overflow, drift, too large)
}

// Stats is zero.
func (in *Input) Stats() InputStats { return InputStats{} }
