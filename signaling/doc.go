// Package signaling serves the relay's WebSocket signaling API, protocol
// version 1 (docs/protocol.md): one session per WebSocket, which decodes
// client messages (package protocol), drives the sfu, and sends the sfu's
// events back as protocol messages.
//
// Each session has a reader goroutine, which handles messages one at a
// time in order, and a writer, which owns the connection's writes
// (messages from a bounded queue, pings, the closing frame) and is a
// goroutine only while it has one to write (writer.go). A client that
// does not read fast enough overflows its queue and is disconnected; it
// never blocks its room.
//
// A connection whose client has sent nothing yet has neither: it is
// parked (park.go) until its first byte, its join deadline, or Drain.
package signaling
