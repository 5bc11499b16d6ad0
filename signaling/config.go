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
	writeTimeout          = 10 * time.Second
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
