// Package opusgen makes real Opus audio for tests and the load generator:
// synthetic voice-like sources encoded as 10 ms frames, an RTP packetizer
// with correct headers, and a decoder wrapper that counts samples and
// conceals lost frames.
//
// It uses github.com/hraban/opus (cgo, libopus). Build with the tag
// nolibopusfile unless libopusfile-dev is installed:
//
//	go test -tags nolibopusfile ./internal/opusgen/
//
// Keep this package out of the relay binary: the relay builds with
// CGO_ENABLED=0.
//
// Nothing here is safe for concurrent use; give each goroutine its own
// Source, Packetizer and Decoder.
package opusgen

const (
	// SampleRate is the Opus clock and sample rate used throughout.
	SampleRate = 48000
	// FrameSamples is the number of samples per channel in one 10 ms frame,
	// and the RTP timestamp increment per frame.
	FrameSamples = SampleRate / 100
	// maxFrameSamples is the longest Opus frame (120 ms), per channel.
	maxFrameSamples = SampleRate * 120 / 1000
	// maxPacket is the size of the encoder's output buffer; a 10 ms frame
	// at any bitrate libopus picks fits with room to spare.
	maxPacket = 1500
)
