//go:build !linux

package signaling

import (
	"net/netip"

	"github.com/gorilla/websocket"
)

// parker does not park outside Linux: each connection gets its session
// and goroutine as soon as it is upgraded (see park.go).
type parker struct{}

func newParker(parkerParams) *parker { return &parker{} }

// park always refuses: the caller starts the session.
func (*parker) park(*websocket.Conn, string, netip.Addr) bool { return false }

func (*parker) wakeAll() {}

func (*parker) close(int, string) {}
