// Package sfu is the relay's media core: rooms, participants, roles and
// seats, published tracks, and the fan-out of their RTP packets to every
// subscriber. It speaks WebRTC (pion) to clients but knows nothing of HTTP,
// WebSocket or JSON: the signaling package drives it through Join and the
// Participant methods, and receives what it must tell clients through the
// Sink it passes in.
//
// The packet path (see docs/performance.md):
//
//	publisher ─► upTrack.readLoop ──(retain, non-blocking send)──► subscriber.queue ─► subscriber.writeLoop ─► downTrack ─► pion (SRTP, UDP)
//
// One reader goroutine per published track, one writer goroutine per
// subscribing participant; no lock is held across a network write, and a
// full subscriber queue drops its oldest packet rather than block the
// reader.
package sfu
