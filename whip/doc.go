// Package whip serves the standard HTTP ways into a room: WHIP (RFC 9725)
// for publishers such as OBS, and WHEP for players. Each session is a
// participant of the room layer (sfu), driven as a WebSocket session
// drives one, but over one offer and one answer:
//
//   - POST /whip/{room} publishes as a host (or the token's guest): the
//     offer goes to the participant's pub connection; it has no sub.
//   - POST /whep/{room} listens as an audience member: the player offers
//     the sub connection (sfu.SubAnswered), which carries the room's mix,
//     or with ?listen=tracks the publishers' tracks, one per receiving
//     audio m-section.
//   - PATCH on the session's Location trickles ICE candidates; DELETE
//     ends it (the participant leaves with reason left).
//
// docs/whip-whep.md is the user's guide, with the limits.
package whip
