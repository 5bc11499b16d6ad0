// Package sfu is the relay's media core: rooms, participants, roles and
// seats, published tracks, and the fan-out of their RTP packets to every
// subscriber. It speaks WebRTC (pion) to clients but knows nothing of HTTP,
// WebSocket or JSON: the signaling package drives it through Join and the
// Participant methods, and receives what it must tell clients through the
// Sink it passes in.
//
// The packet path (see docs/architecture.md and docs/performance.md):
//
//	publisher ─► upTrack.readLoop ─► for each subscriber: downTrack.write ─► pion (SRTP) ─► batched UDP (sendmmsg)
//
// One reader goroutine per published track writes the packet to every
// subscriber inline, inside one UDP write batch (udpbatch.go); no lock is
// held across a network write, and a UDP write never waits for the peer.
package sfu
