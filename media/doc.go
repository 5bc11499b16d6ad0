// Package media is the relay's packet path: published tracks (UpTrack),
// each subscriber's copy of one (DownTrack), the header rewriting that
// keeps each subscriber's stream continuous (munger), the NACK history,
// RFC 6464 audio levels, and the one UDP port with its batched writes
// (ListenUDP). It knows nothing of rooms, participants or signaling: what
// it needs from them (the stream id, the write batch, a first-packet
// callback, metrics) is handed in at construction, and the room layer
// (package sfu) imports it, never the reverse.
//
// The packet path (see docs/architecture.md and docs/performance.md):
//
//	publisher ─► UpTrack.ReadLoop ─► parse the header once ─► for each subscriber: DownTrack.writeLive ─► pion (SRTP) ─► batched UDP (sendmmsg)
//
// One reader goroutine per published track writes the packet to every
// subscriber inline, inside one UDP write batch (udpbatch.go); past
// FanoutThreshold subscribers it shares them with the relay's fan-out
// workers, one per core (fanout.go, fanout_workers.go). The reader
// never waits for a peer: a UDP send does not block on its receiver. The
// batch's flush holds its lane's flushMu across sendmmsg, so that
// batches leave in order; only flushers take that lock.
//
// A published track may have a Tap, loaded once per packet, which gets
// each forwarded payload (the audience mix's input); the mix itself goes
// out on a track of the relay's own (UpTrackParams.Local) through
// UpTrack.Forward, the same fan-out as a publisher's packets.
//
// Ownership: the reader owns the packet it reads (bufpool) and hands one
// reference to the history, and one to each fan-out worker it queues a
// shard on; each DownTrack's header and munger state is owned by the
// goroutine that writes it (the reader, or its shard's worker, for its
// whole life on the track), its retransmission header by whoever serves
// its NACKs, one at a time (DownTrack.rtxMu).
package media
