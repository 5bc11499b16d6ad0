package client

import (
	"errors"
	"fmt"

	"github.com/lianmai/relay/protocol"
)

// Sentinel errors, for errors.Is.
var (
	// ErrClosed: the client was closed (Close, Drop or Leave) before or
	// while the call ran.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected: the WebSocket ended while the call waited for the
	// server.
	ErrDisconnected = errors.New("client: websocket ended")
	// ErrAlreadyPublishing: Publish was called again after it succeeded or
	// while it runs. A failed Publish may be retried.
	ErrAlreadyPublishing = errors.New("client: already publishing")
	// ErrPeerFailed: a peer connection reached the failed or closed state,
	// or could not be set up, while the call waited for it to connect.
	ErrPeerFailed = errors.New("client: peer connection failed")
)

// ServerError is an `error` message from the relay, returned by Dial,
// Publish and Request when the relay refuses the message they sent.
// Use errors.As to get it.
type ServerError struct {
	Code    string // protocol.Code*, e.g. "forbidden"
	Message string
	ID      string // the id of the message that caused it, if any
	// URL and Room, with Code redirect: where to send the same join.
	URL, Room string
}

func (e *ServerError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("relay error %s (id %q): %s", e.Code, e.ID, e.Message)
	}
	return fmt.Sprintf("relay error %s: %s", e.Code, e.Message)
}

func newServerError(m *protocol.Error) *ServerError {
	return &ServerError{Code: m.Code, Message: m.Message, ID: m.ID, URL: m.URL, Room: m.Room}
}

// CloseError is returned by Leave when the relay did not close the
// WebSocket with code 1000. Code is the close code it sent, or 0 if the
// connection ended without a close frame.
type CloseError struct {
	Code int
}

func (e *CloseError) Error() string {
	if e.Code == 0 {
		return "client: websocket ended without a close frame"
	}
	return fmt.Sprintf("client: websocket closed with code %d, want %d", e.Code, protocol.CloseNormal)
}
