package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is what a Node needs.
type Config struct {
	// NATSURL is the NATS server (or comma-separated servers of one NATS
	// cluster), e.g. nats://nats:4222.
	NATSURL string
	// NodeID names this relay in the directory; unique in the cluster and
	// stable across restarts (a StatefulSet pod's name).
	NodeID string
	// NodeURL is this relay's public WebSocket URL, wss://name/ws: what
	// other nodes tell clients to reconnect to.
	NodeURL string
	// TTL is how long a directory entry outlives its owner's last
	// heartbeat: the staleness bound. Heartbeats run every TTL/3. 0:
	// DefaultTTL.
	TTL time.Duration
	// OpTimeout bounds each directory operation, so a join that needs the
	// directory never waits longer. 0: DefaultOpTimeout.
	OpTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts to NATS
	// (which go on forever). 0: DefaultReconnectWait.
	ReconnectWait time.Duration
	// Replicas of the directory's buckets in a NATS cluster. 0: 1.
	Replicas int
	// Registry for the cluster's metrics; nil: not registered.
	Registry prometheus.Registerer
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// Defaults for zero Config fields.
const (
	DefaultTTL           = 15 * time.Second
	DefaultOpTimeout     = 2 * time.Second
	DefaultReconnectWait = time.Second
	// The directory's buckets.
	RoomsBucket = "relay_rooms"
	NodesBucket = "relay_nodes"
	// minTTL keeps heartbeats (TTL/3) from becoming fast polling.
	minTTL = time.Second
)

// nodeIDPattern is what a node id may be: a valid key of the nodes bucket.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) setDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the settings a user gives (flags): NATS URL, node id and
// node URL.
func (c *Config) Validate() error {
	if c.NATSURL == "" {
		return errors.New("-nats: empty; give the NATS server's URL, e.g. nats://127.0.0.1:4222")
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		return fmt.Errorf("-node-id: %q: want 1 to 64 letters, digits, - or _ (e.g. the pod name relay-0), unique in the cluster", c.NodeID)
	}
	u, err := url.Parse(c.NodeURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("-node-url: %q: want this relay's public WebSocket URL, wss://host/ws (ws:// on a local network), which clients are told to reconnect to", c.NodeURL)
	}
	if c.TTL != 0 && c.TTL < minTTL {
		return fmt.Errorf("cluster TTL %v: at least %v", c.TTL, minTTL)
	}
	return nil
}
