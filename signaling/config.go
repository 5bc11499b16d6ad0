package signaling

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/lianmai/relay/protocol"
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
	// Per client address (see clientAddr; IPv6 by /64). Zero values take
	// the defaults below; a negative value turns the limit off.
	//
	// MaxPendingPerAddr is how many WebSockets one address may hold open
	// without having joined; more are refused with HTTP 429.
	MaxPendingPerAddr int
	// JoinRatePerAddr and JoinBurstPerAddr limit the joins one address
	// makes: a burst, then a rate per second. More get error
	// rate_limited and the connection is closed (1008).
	JoinRatePerAddr  float64
	JoinBurstPerAddr int
	// MaxJoinedPerAddr is how many joined participants one address may
	// have at once. Users behind one NAT share an address: keep it high.
	MaxJoinedPerAddr int
	// MaxConnections caps the relay's open WebSockets (each holds a file
	// descriptor); more are refused with HTTP 503, and past 95% of it
	// joins get unavailable and Ready fails. 0 or less: no cap.
	// cmd/relay derives it from the file descriptor limit
	// (MaxConnectionsFor).
	MaxConnections int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; from any other peer the header is ignored.
	TrustedProxies []netip.Prefix
	// ICEServers, if set, gives the STUN/TURN servers (with credentials)
	// for a participant, sent in its joined as ice_servers.
	ICEServers func(participant string) []protocol.ICEServer
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
	// A browser opens one WebSocket per tab; 20 unjoined ones from one
	// address are a page reloading in many tabs at once, not a user.
	DefaultMaxPendingPerAddr = 20
	// 20 joins at once and 5 a second after: an office or a school class
	// behind one NAT joining together, not a flood.
	DefaultJoinRatePerAddr  = 5
	DefaultJoinBurstPerAddr = 20
	// Generous: a carrier-grade NAT puts thousands of phones behind one
	// address; this only stops one machine from taking a relay's rooms.
	DefaultMaxJoinedPerAddr = 500
	writeTimeout            = 10 * time.Second
	closeWait               = time.Second // after our close frame, for the client's
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
	if c.MaxPendingPerAddr == 0 {
		c.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if c.JoinRatePerAddr == 0 {
		c.JoinRatePerAddr = DefaultJoinRatePerAddr
	}
	if c.JoinBurstPerAddr <= 0 {
		c.JoinBurstPerAddr = DefaultJoinBurstPerAddr
	}
	if c.MaxJoinedPerAddr == 0 {
		c.MaxJoinedPerAddr = DefaultMaxJoinedPerAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// fdReserve is what MaxConnectionsFor keeps for everything but WebSockets:
// the listeners, the media sockets, log and profile files, and the
// connections in the kernel's accept queue.
const fdReserve = 256

// MaxConnectionsFor is the connection cap for a file descriptor limit:
// each WebSocket holds one descriptor, and a tenth of the limit (at least
// fdReserve) stays free for the rest, so that one address opening
// connections cannot starve the media sockets and new ICE sessions.
func MaxConnectionsFor(nofile uint64) int {
	reserve := max(fdReserve, nofile/10)
	if nofile <= reserve {
		return 1
	}
	return int(min(nofile-reserve, 1<<30))
}
