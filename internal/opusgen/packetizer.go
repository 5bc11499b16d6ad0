package opusgen

import (
	"math/rand/v2"

	"github.com/pion/rtp"
)

// Packetizer wraps 10 ms Opus payloads in RTP packets: version 2, the given
// payload type and SSRC, sequence numbers incrementing by one from a random
// start, timestamps advancing by 480 per packet from a random start, and the
// marker bit on the first packet (the start of a talkspurt).
//
// A Packetizer is not safe for concurrent use.
type Packetizer struct {
	pt    uint8
	ssrc  uint32
	seq   uint16
	ts    uint32
	first bool
}

// NewPacketizer returns a packetizer for payload type pt and SSRC ssrc.
func NewPacketizer(pt uint8, ssrc uint32) *Packetizer {
	return &Packetizer{
		pt:    pt,
		ssrc:  ssrc,
		seq:   uint16(rand.Uint32()),
		ts:    rand.Uint32(),
		first: true,
	}
}

// Next returns the sequence number and timestamp the next packet will
// carry.
func (p *Packetizer) Next() (seq uint16, ts uint32) { return p.seq, p.ts }

// Packet returns the next packet carrying payload. The packet refers to
// payload; it does not copy it.
func (p *Packetizer) Packet(payload []byte) *rtp.Packet {
	pkt := &rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         p.first,
			PayloadType:    p.pt,
			SequenceNumber: p.seq,
			Timestamp:      p.ts,
			SSRC:           p.ssrc,
		},
		Payload: payload,
	}
	p.first = false
	p.seq++
	p.ts += FrameSamples
	return pkt
}
