// Package mix makes the audience mix: one Opus stream per room, decoded
// from every publisher, summed, limited and re-encoded every 10 ms.
//
// A Mixer owns one goroutine that ticks on an absolute 10 ms schedule.
// Each tick takes one frame from every Input's jitter buffer (decode, FEC,
// concealment or nothing), sums them in int32, runs a soft limiter, encodes
// one 10 ms Opus frame (48 kHz, mono, in-band FEC on) and hands one
// complete RTP packet in a pooled bufpool.Packet to the mixer's out
// function. Publishers' reader goroutines feed the Inputs with WriteRTP;
// it copies the payload into a preallocated slot and returns.
//
// The mix needs libopus (cgo, through github.com/hraban/opus). A relay
// built without cgo still compiles this package: Available is false and
// New returns ErrUnavailable. Build with the tag nolibopusfile unless
// libopusfile-dev is installed:
//
//	go test -tags nolibopusfile ./mix/
//
// Choices, and why:
//
//   - Mono output, always. Publishers' microphones send mono Opus
//     (browsers' default), a mix of voices has no stereo image without
//     panning, and mono halves the PCM work and the listeners' bitrate.
//     Stereo inputs are decoded to mono by libopus (it downmixes).
//   - Every tick where some input contributes (a decoded, FEC-recovered or
//     concealed frame) emits a packet; when nothing contributes, the mixer
//     emits silenceTail more frames (so the encoder's lookahead drains) and
//     then skips ticks until an input contributes again. Skipped ticks use
//     no sequence numbers (the next packet's is the last one's plus one),
//     the timestamp keeps advancing 480 per tick, and the first packet
//     after a gap carries the RTP marker.
//   - Steady state allocates nothing per tick: decoders, the encoder, the
//     jitter buffers' slots and all PCM scratch are allocated once per
//     mixer or input; packets come from bufpool.
package mix
