package sfu

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/pion/ice/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what the sfu needs from the relay's configuration.
type Config struct {
	// Seats is how many publishers (hosts plus guests) a room holds.
	Seats int
	// GracePeriod is how long a participant whose WebSocket or ICE
	// transport failed is kept before it is removed with reason timeout.
	GracePeriod time.Duration
	// MaxParticipants is how many participants a room holds.
	MaxParticipants int
	// MaxRooms is how many rooms the relay holds.
	MaxRooms int
	// MicTimeout is how long a mic request or invitation, or a cross-room
	// invitation (pk.go), waits for an answer before it is rejected with
	// reason timeout.
	MicTimeout time.Duration
	// SpeakerThreshold is the smoothed audio level (0 to 1, from RFC 6464
	// -dBov as 1 - dBov/127) at which a publisher counts as speaking.
	SpeakerThreshold float64
	// MaxTracks is how many tracks (sending m-sections of its pub offer)
	// a participant may publish.
	MaxTracks int
	// ICE says how peers reach the relay.
	ICE ICEConfig
	// NewMixer starts a room's audience mix (package mix, through the
	// relay's constructor); nil: the relay has no mix, and everyone gets
	// tracks (a join asking for the mix too: joined.listen says so).
	NewMixer NewMixerFunc
	// AudienceListen is what an audience member whose join does not say
	// gets: ListenTracks (the default; what every version 1 client
	// expects) or ListenMix.
	AudienceListen Listen
	// DisableDirectSend keeps every sub connection on pion's send path
	// (SRTP session, sender-report interceptor) instead of the direct
	// one (direct.go): for A/B measurement, and an operator's escape hatch.
	DisableDirectSend bool
	// DisableTakeover keeps every sub connection pion's for its whole
	// life, instead of the relay taking a direct one over once it is up
	// (takeover.go); then sub connections are not ICE lite either.
	DisableTakeover bool
	// TakeoverAfter is how long a direct sub connection stays pion's
	// after DTLS is up (0: 3 s): the client's last handshake flight may
	// be retransmitted meanwhile, which only pion can answer.
	TakeoverAfter time.Duration
	// Router, in a cluster, says which relay serves a room (route.go);
	// nil: a single relay, every room here.
	Router Router
	// Edge serves listeners of rooms other relays own (route.go); nil:
	// they are redirected to the owner.
	Edge EdgeJoiner
	// PKPeer carries cross-room links whose other room is on another
	// relay of the cluster (pkpeer.go); nil: a link's rooms must both be
	// on this relay.
	PKPeer PKPeer
	// Metrics, nil for a private set nobody scrapes (tests).
	Metrics *Metrics
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// ICEConfig says how peers reach the relay.
type ICEConfig struct {
	// UDPMux carries every peer's media on one UDP port (see
	// media.ListenUDP; its writes are batched only when it is that one).
	// The sfu closes it on Close.
	UDPMux ice.UDPMux
	// TCPMux, if set, adds passive ICE-TCP candidates on one TCP port
	// (see server's listenTCP), for clients whose networks block UDP. The
	// sfu does not close it: whoever made it does, after the sfu.
	TCPMux ice.TCPMux
	// AnnounceIPs replaces the relay's host candidates' addresses (1:1
	// NAT: a cloud instance's public IP).
	AnnounceIPs []string
	// Loopback gathers loopback candidates only, with mDNS off: tests and
	// demos on one machine.
	Loopback bool
	// Selected, if set, counts the candidate pairs participants' sub
	// connections select, by transport (TransportUDP, TransportTCP,
	// TransportRelay): relay_ice_selected_total.
	Selected *prometheus.CounterVec
	// Relayed, if set, reports whether an address is a relayed address
	// of the embedded TURN server (see transportOf).
	Relayed func(netip.AddrPort) bool
}

// Defaults for zero Config fields.
const (
	DefaultSeats       = 9
	DefaultGracePeriod = 10 * time.Second
	// DefaultMaxParticipants and DefaultMaxRooms are guards against abuse,
	// well above what one relay core serves (docs/performance.md).
	DefaultMaxParticipants  = 1000
	DefaultMaxRooms         = 1000
	DefaultMicTimeout       = 30 * time.Second
	DefaultMaxTracks        = 2   // a microphone and, say, a music or screen-audio track
	DefaultSpeakerThreshold = 0.6 // about -51 dBov: speech, not room noise
)

func (c *Config) setDefaults() {
	if c.TakeoverAfter <= 0 {
		c.TakeoverAfter = takeoverDelay
	}
	if c.Seats <= 0 {
		c.Seats = DefaultSeats
	}
	if c.GracePeriod <= 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.MaxParticipants <= 0 {
		c.MaxParticipants = DefaultMaxParticipants
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = DefaultMaxRooms
	}
	if c.MicTimeout <= 0 {
		c.MicTimeout = DefaultMicTimeout
	}
	if c.SpeakerThreshold <= 0 {
		c.SpeakerThreshold = DefaultSpeakerThreshold
	}
	if c.MaxTracks <= 0 {
		c.MaxTracks = DefaultMaxTracks
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AudienceListen == "" {
		c.AudienceListen = ListenTracks
	}
}
