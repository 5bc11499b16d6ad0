package signaling

import (
	"log/slog"
	"time"
)

// Config is what signaling needs from the relay's configuration.
type Config struct {
	// PingInterval is how often the server pings each WebSocket.
	PingInterval time.Duration
	// SilenceTimeout: a WebSocket from which nothing (message or pong)
	// arrived for this long has failed.
	SilenceTimeout time.Duration
	// SendQueue is how many messages may wait for a slow client before it
	// is disconnected.
	SendQueue int
	// MessageRate and MessageBurst limit what one connection may send: a
	// burst of MessageBurst messages, then MessageRate per second. More
	// gets error rate_limited and the connection is closed (1008).
	MessageRate  float64
	MessageBurst int
	// JoinTimeout: a connection that has not joined this long after it
	// opened is closed (1008).
	JoinTimeout time.Duration
	// MaxSDPSize is the largest offer or answer SDP accepted, in bytes.
	MaxSDPSize int
	// AllowedOrigins are the browser origins (scheme://host[:port]) besides
	// the relay's own and localhost whose pages may connect; "*" allows
	// every origin.
	AllowedOrigins []string
	// AuthSecret, when set, makes join require an HS256 token signed with
	// it (package auth). Empty: the relay trusts the role in join.
	AuthSecret []byte
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// Defaults for zero Config fields.
const (
	DefaultPingInterval   = 10 * time.Second
	DefaultSilenceTimeout = 30 * time.Second
	DefaultSendQueue      = 256
	DefaultMessageRate    = 20  // per second, sustained: far above any real client
	DefaultMessageBurst   = 100 // a join and both connections' trickled candidates
	DefaultJoinTimeout    = 10 * time.Second
	DefaultMaxSDPSize     = 16 << 10 // a browser's audio offer is 2 to 6 KiB
	writeTimeout          = 10 * time.Second
	closeWait             = time.Second // after our close frame, for the client's
)

func (c *Config) setDefaults() {
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = DefaultSilenceTimeout
	}
	if c.SendQueue <= 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.MessageRate <= 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.MaxSDPSize <= 0 {
		c.MaxSDPSize = DefaultMaxSDPSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
