package signaling

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/gorilla/websocket"
)

// A WebSocket whose client has sent nothing yet is parked: it waits for
// its first byte without a goroutine of its own, so that a flood of idle
// connections costs the relay their sockets and a little heap, not a
// goroutine stack each. When the client sends something (or hangs up),
// or Drain begins, the connection gets its session and goroutine as if it
// had just connected (the join deadline still counts from the upgrade).
// A parked connection that reaches its join deadline is closed by the
// parker itself, with the close frame a session sends. Linux parks with
// epoll (park_linux.go); elsewhere every connection gets its session at
// once (park_other.go).

// parkerParams are what the parker needs from the server.
type parkerParams struct {
	joinTimeout time.Duration
	log         *slog.Logger
	// onWake starts conn's session; it must join by joinBy. Called
	// without the parker's lock, at most once per parked connection.
	onWake func(conn *websocket.Conn, remote string, addr netip.Addr, joinBy time.Time)
	// onClosed is told of a parked connection the parker closed (its join
	// timeout, or Shutdown), once, after the close.
	onClosed func(addr netip.Addr)
}
