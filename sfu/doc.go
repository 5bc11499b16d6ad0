// Package sfu is the relay's room layer: rooms, participants, roles and
// seats, the mic workflow, moderation, active speakers, the negotiation of
// each participant's pub and sub peer connections (pion), and resume. It
// knows nothing of HTTP, WebSocket or JSON: the signaling package drives
// it through Join and the Participant methods, and receives what it must
// tell clients through the Sink it passes in.
//
// The packet path is package media: a published track is a
// media.UpTrack, each subscriber's copy of it a media.DownTrack added to
// the subscriber's sub connection. sfu decides who receives what
// (Room.tracksFor, Participant.runSync) and hands media what it needs at
// construction (the stream id, the UDP write batch, a first-packet
// callback for the join latency, metrics); media never imports sfu.
//
// The audience mix (mix.go): a room runs one Mixer, made by
// Config.NewMixer, while it has a mix listener and a published track;
// every published track feeds it through a media.Tap, and a mix listener
// receives its one track instead of the publishers'.
//
// Remote publishers (remote.go): a room can show and hear publishers that
// are not its participants, whose tracks are UpTracks fed elsewhere; a
// cross-room link (pk.go, pkmirror.go) uses them to show each linked
// room's publishers in the other, with the source room's own tracks.
package sfu
