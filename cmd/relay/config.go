package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lianmai/relay/cluster"
	"github.com/lianmai/relay/gctune"
	"github.com/lianmai/relay/media"
	"github.com/lianmai/relay/mix"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
)

// Config is every setting of the relay. Each comes from a flag, or from its
// RELAY_* environment variable when the flag is not given, or else from
// its default. docs/configuration.md lists them.
type Config struct {
	HTTPAddr        string
	UDPAddr         string
	AnnounceIPs     []string
	Loopback        bool
	Seats           int
	MaxParticipants int
	MaxRooms        int
	MicTimeout      time.Duration
	AuthSecret      string
	Grace           time.Duration
	GOGC            int
	MemoryLimit     int64 // 0 automatic, <0 none
	ShutdownTimeout time.Duration
	DrainTimeout    time.Duration
	AllowedOrigins  []string
	MaxTracks       int
	MessageRate     float64
	MessageBurst    int
	MaxSDPSize      int
	JoinTimeout     time.Duration
	MaxPendingPerIP int
	JoinRatePerIP   float64
	JoinBurstPerIP  int
	MaxJoinedPerIP  int
	MaxTCPPerIP     int
	MaxConnections  int // 0: from the file descriptor limit
	TrustedProxies  []netip.Prefix
	LogLevel        slog.Level
	LogFormat       string
	// FanoutThreshold: subscribers a track's reader writes itself before
	// the rest go to the fan-out workers; 0 media.FanoutThreshold, -1
	// never.
	FanoutThreshold int
	DirectIngest    bool // -direct-ingest: the relay decrypts publishers' media off the socket itself
	DebugAddr       string
	AudienceListen  string // tracks or mix
	MixBitrate      int    // 0: the mixer's default
	MixComplexity   int    // -1: the mixer's default
	NATS            string // empty: a single relay
	NodeID          string
	NodeURL         string

	// DirectSend: listeners' packets are encrypted straight into the
	// send batch (false: through pion's SRTP session, for A/B runs).
	DirectSend bool
	// Takeover: a direct sub connection is taken over from pion once up.
	Takeover bool

	reachConfig
}

// errHelp is returned for -h: usage was printed, exit 0.
var errHelp = flag.ErrHelp

// parseConfig reads args, with getenv for the RELAY_* fallbacks. Usage and
// errors go to out.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(out)
	var announce, memLimit, logLevel, origins, proxies string
	fs.StringVar(&c.HTTPAddr, "http", ":8080", "HTTP listen address: the page at /, the WebSocket at /ws, WHIP and WHEP at /whip/ and /whep/, /metrics, /healthz, /readyz")
	fs.StringVar(&c.UDPAddr, "udp", ":50000", "UDP listen address for all WebRTC media (one port for every peer); an empty host listens on every interface")
	fs.StringVar(&announce, "announce-ip", "", "comma-separated public IPs to announce instead of the host's own (1:1 NAT, e.g. a cloud instance's public IP)")
	fs.BoolVar(&c.Loopback, "loopback", false, "use loopback addresses only (127.0.0.1), mDNS off: tests and demos on one machine")
	fs.IntVar(&c.Seats, "seats", sfu.DefaultSeats, "publishers (hosts plus guests) per room")
	fs.IntVar(&c.MaxParticipants, "max-participants", sfu.DefaultMaxParticipants, "participants per room (all roles)")
	fs.IntVar(&c.MaxRooms, "max-rooms", sfu.DefaultMaxRooms, "rooms per relay")
	fs.DurationVar(&c.MicTimeout, "mic-timeout", sfu.DefaultMicTimeout, "how long a mic request or invitation, or a cross-room invitation (pk_invite), waits for an answer")
	fs.StringVar(&c.AuthSecret, "auth-secret", "", "HS256 secret for join tokens; empty: no tokens, anyone may join as anyone (development only). Prefer the RELAY_AUTH_SECRET environment variable: flags show in ps")
	fs.DurationVar(&c.Grace, "grace", sfu.DefaultGracePeriod, "how long a participant whose connection failed is kept before it is removed (reason timeout)")
	fs.IntVar(&c.GOGC, "gogc", 0, fmt.Sprintf("GC target percentage; 0 means the GOGC environment variable or %d; -1 turns the GC off (needs a memory limit)", gctune.DefaultGOGC))
	fs.StringVar(&memLimit, "gomemlimit", "", "soft memory limit, e.g. 1GiB; empty: GOMEMLIMIT, else 90% of the cgroup limit, else none; \"none\" for none")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "on SIGTERM or SIGINT, how long connected clients get (told with a draining message) to move before they are closed; a second signal exits at once. Keep it below the orchestrator's kill timeout (docker stop -t, Kubernetes terminationGracePeriodSeconds)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 4*time.Second, "after the drain, how long closing the remaining clients may take before the relay exits")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser origins (https://app.example.com) whose pages may connect, besides the relay's own page and localhost; * allows any")
	fs.IntVar(&c.MaxTracks, "max-tracks", sfu.DefaultMaxTracks, "tracks one participant may publish")
	fs.Float64Var(&c.MessageRate, "message-rate", signaling.DefaultMessageRate, "signaling messages per second one connection may send, sustained (more: error rate_limited, then close)")
	fs.IntVar(&c.MessageBurst, "message-burst", signaling.DefaultMessageBurst, "signaling messages one connection may send at once")
	fs.IntVar(&c.MaxSDPSize, "max-sdp", signaling.DefaultMaxSDPSize, "largest offer or answer SDP accepted, in bytes")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", signaling.DefaultJoinTimeout, "a connection that has not joined this long after opening is closed")
	fs.IntVar(&c.MaxPendingPerIP, "max-pending-per-ip", signaling.DefaultMaxPendingPerAddr, "WebSockets one client address may hold open without joining (more get HTTP 429); -1: no limit")
	fs.Float64Var(&c.JoinRatePerIP, "join-rate-per-ip", signaling.DefaultJoinRatePerAddr, "joins per second one client address may make after its burst (more: error rate_limited, then close); -1: no limit")
	fs.IntVar(&c.JoinBurstPerIP, "join-burst-per-ip", signaling.DefaultJoinBurstPerAddr, "joins one client address may make at once")
	fs.IntVar(&c.MaxTCPPerIP, "max-tcp-per-ip", server.DefaultMaxTCPPerAddr, "TCP media connections (ICE-TCP, TURN over TCP and TLS) one client address may hold open; more are closed at once; -1: no limit")
	fs.IntVar(&c.MaxJoinedPerIP, "max-joined-per-ip", signaling.DefaultMaxJoinedPerAddr, "participants one client address may have in rooms at once (users behind one NAT share an address: keep it high); -1: no limit")
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "open WebSockets the relay holds at most (more get HTTP 503; past 95% /readyz fails and joins get unavailable); 0: from the file descriptor limit, leaving a tenth of it free; -1: no cap")
	fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client (e.g. 10.0.0.0/8); from other peers the header is ignored")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.FanoutThreshold, "fanout-threshold", 0, fmt.Sprintf("subscribers a track's reader writes itself; past them a big room's copies are written on every core (with GOMAXPROCS 2 or more); 0: %d (docs/performance.md), -1: never", media.FanoutThreshold))
	fs.BoolVar(&c.Takeover, "takeover", true, "take a listener's direct sub connection over from pion once it is up: the relay answers its ICE checks and negotiates it itself, and pion's connection (13 goroutines and its buffers) is closed (docs/performance.md); false: pion keeps every connection, and sub connections are not ICE lite")
	fs.BoolVar(&c.DirectSend, "direct-send", true, "encrypt listeners' packets straight into the send batch and make their sender reports in the relay (docs/performance.md); false: pion's SRTP session and sender-report interceptor, as before")
	fs.BoolVar(&c.DirectIngest, "direct-ingest", true, "the relay reads the media port itself (one socket per core, SO_REUSEPORT) and decrypts publishers' packets without pion's receive stack (pub connections then answer as the DTLS server); false: every packet passes pion, for A/B runs (docs/performance.md)")
	fs.StringVar(&c.AudienceListen, "audience-listen", string(sfu.ListenTracks), "what an audience member whose join does not say gets: tracks (one per publisher, what every version 1 client expects) or mix (the room's audience mix, one track)")
	fs.IntVar(&c.MixBitrate, "mix-bitrate", 0, fmt.Sprintf("bitrate of the audience mix's Opus stream, bits per second (%d to %d); 0: the mixer's default, %d", mix.MinBitrate, mix.MaxBitrate, mix.DefaultBitrate))
	fs.IntVar(&c.MixComplexity, "mix-complexity", -1, fmt.Sprintf("Opus encoder complexity of the audience mix, 0 (cheapest) to 10; -1: the mixer's default, %d", mix.DefaultComplexity))
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "address for Go's profiling endpoints (/debug/pprof/), e.g. 127.0.0.1:6060; empty: off. Never expose it publicly")
	fs.StringVar(&c.NATS, "nats", "", "NATS server URL (nats://host:4222; comma-separated for a NATS cluster) that makes this relay a node of a cluster (docs/cluster.md); empty: a single relay")
	fs.StringVar(&c.NodeID, "node-id", "", "with -nats: this node's id, unique in the cluster and stable across restarts (letters, digits, - and _); empty: the host name (a Kubernetes pod's name)")
	fs.StringVar(&c.NodeURL, "node-url", "", "with -nats: this node's public WebSocket URL (wss://relay-0.example.com/ws), which clients whose room lives here are redirected to")
	reach := defineReachFlags(fs, &c.reachConfig)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: relay [flags]\n\nLianmai Relay: a WebRTC audio relay for live co-streaming.\nEvery flag can also be set with the environment variable RELAY_<FLAG> (upper case, - as _), e.g. RELAY_HTTP=:9000; a flag given on the command line wins.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	// Environment first, so that command-line flags override it.
	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "RELAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q; see relay -h", fs.Arg(0))
	}

	for _, ip := range strings.Split(announce, ",") {
		if ip = strings.TrimSpace(ip); ip == "" {
			continue
		}
		if net.ParseIP(ip) == nil {
			return c, fmt.Errorf("-announce-ip: %q is not an IP address", ip)
		}
		c.AnnounceIPs = append(c.AnnounceIPs, ip)
	}
	switch strings.ToLower(memLimit) {
	case "":
	case "none", "off":
		c.MemoryLimit = -1
	default:
		n, err := gctune.ParseBytes(memLimit)
		if err != nil {
			return c, fmt.Errorf("-gomemlimit: %w", err)
		}
		c.MemoryLimit = n
	}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return c, fmt.Errorf("-log-level: %q: want debug, info, warn or error", logLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("-log-format: %q: want text or json", c.LogFormat)
	}
	if c.Seats < 1 {
		return c, fmt.Errorf("-seats: %d: a room needs at least one seat", c.Seats)
	}
	if c.Grace <= 0 || c.ShutdownTimeout <= 0 || c.MaxParticipants < 1 || c.MaxRooms < 1 || c.MicTimeout <= 0 ||
		c.DrainTimeout < 0 || c.MaxTracks < 1 || c.MessageRate <= 0 || c.MessageBurst < 1 || c.MaxSDPSize < 1 || c.JoinTimeout <= 0 {
		return c, errors.New("-grace, -shutdown-timeout, -max-participants, -max-rooms, -mic-timeout, -max-tracks, -message-rate, -message-burst, -max-sdp and -join-timeout must be positive, -drain-timeout 0 or more")
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/") {
			return c, fmt.Errorf("-allowed-origins: %q is not an origin; want scheme://host[:port], e.g. https://app.example.com, or *", o)
		}
		c.AllowedOrigins = append(c.AllowedOrigins, o)
	}
	if c.AuthSecret != "" && len(c.AuthSecret) < 16 {
		return c, errors.New("-auth-secret: use at least 16 characters (32 random bytes, e.g. from `openssl rand -hex 32`, is better)")
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			if a, aerr := netip.ParseAddr(p); aerr == nil {
				prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			} else {
				return c, fmt.Errorf("-trusted-proxies: %q is neither a CIDR (10.0.0.0/8) nor an IP address", p)
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	if c.JoinBurstPerIP < 1 {
		return c, fmt.Errorf("-join-burst-per-ip: %d: want 1 or more (turn the join limit off with -join-rate-per-ip -1)", c.JoinBurstPerIP)
	}
	if c.MaxPendingPerIP == 0 || c.MaxJoinedPerIP == 0 || c.JoinRatePerIP == 0 || c.MaxTCPPerIP == 0 || c.MaxTCPPerIP < -1 || c.MaxConnections < -1 {
		return c, errors.New("-max-pending-per-ip, -max-joined-per-ip, -max-tcp-per-ip and -join-rate-per-ip must be positive, or -1 for no limit; -max-connections 0 (from the file descriptor limit), a positive cap or -1")
	}
	if c.AudienceListen != string(sfu.ListenTracks) && c.AudienceListen != string(sfu.ListenMix) {
		return c, fmt.Errorf("-audience-listen: %q: want tracks or mix", c.AudienceListen)
	}
	if c.MixBitrate != 0 && (c.MixBitrate < mix.MinBitrate || c.MixBitrate > mix.MaxBitrate) {
		return c, fmt.Errorf("-mix-bitrate: %d: want %d to %d bits per second, or 0 for the mixer's default (%d)", c.MixBitrate, mix.MinBitrate, mix.MaxBitrate, mix.DefaultBitrate)
	}
	if c.MixComplexity < -1 || c.MixComplexity > 10 {
		return c, fmt.Errorf("-mix-complexity: %d: want 0 to 10, or -1 for the mixer's default", c.MixComplexity)
	}
	if c.FanoutThreshold < -1 {
		return c, fmt.Errorf("-fanout-threshold: %d: want -1 (never), 0 (the default, %d) or a number of subscribers", c.FanoutThreshold, media.FanoutThreshold)
	}
	if c.GOGC < -1 {
		return c, fmt.Errorf("-gogc: %d: want -1 (off), 0 (default) or a positive percentage", c.GOGC)
	}
	if err := reach.apply(&c); err != nil {
		return c, err
	}
	if err := c.checkCluster(); err != nil {
		return c, err
	}
	return c, nil
}

// checkCluster fills -node-id from the host name and checks the cluster
// flags; without -nats they must be empty.
func (c *Config) checkCluster() error {
	if c.NATS == "" {
		if c.NodeID != "" || c.NodeURL != "" {
			return errors.New("-node-id and -node-url need -nats: without it the relay is a single node")
		}
		return nil
	}
	if c.NodeID == "" {
		h, err := hostname()
		if err != nil {
			return fmt.Errorf("-node-id: empty and the host name is unknown (%v); give one", err)
		}
		c.NodeID, _, _ = strings.Cut(h, ".") // a pod's name; a host's short name
	}
	return c.clusterConfig().Validate()
}

// hostname is os.Hostname, a variable for tests.
var hostname = os.Hostname

// clusterConfig is the cluster's part of server.Config; nil without -nats.
func (c Config) clusterConfig() *cluster.Config {
	if c.NATS == "" {
		return nil
	}
	return &cluster.Config{NATSURL: c.NATS, NodeID: c.NodeID, NodeURL: c.NodeURL}
}

// relayConfig is what server.New needs.
func (c Config) relayConfig(log *slog.Logger) server.Config {
	return server.Config{
		UDPAddr:         c.UDPAddr,
		TCPAddr:         c.TCPAddr,
		MaxTCPPerAddr:   c.MaxTCPPerIP,
		TURN:            c.turnConfig(),
		AnnounceIPs:     c.AnnounceIPs,
		Loopback:        c.Loopback,
		FanoutThreshold: c.FanoutThreshold,
		NoDirectIngest:  !c.DirectIngest,
		SFU: sfu.Config{Seats: c.Seats, GracePeriod: c.Grace,
			MaxParticipants: c.MaxParticipants, MaxRooms: c.MaxRooms, MicTimeout: c.MicTimeout, MaxTracks: c.MaxTracks,
			AudienceListen: sfu.Listen(c.AudienceListen), DisableDirectSend: !c.DirectSend, DisableTakeover: !c.Takeover},
		Cluster:  c.clusterConfig(),
		NewMixer: newMixer(),
		Mix:      server.MixConfig{Bitrate: c.MixBitrate, Complexity: c.MixComplexity},
		Signaling: signaling.Config{AuthSecret: []byte(c.AuthSecret), AllowedOrigins: c.AllowedOrigins,
			MessageRate: c.MessageRate, MessageBurst: c.MessageBurst, MaxSDPSize: c.MaxSDPSize, JoinTimeout: c.JoinTimeout,
			MaxPendingPerAddr: c.MaxPendingPerIP, JoinRatePerAddr: c.JoinRatePerIP, JoinBurstPerAddr: c.JoinBurstPerIP,
			MaxJoinedPerAddr: c.MaxJoinedPerIP, MaxConnections: c.MaxConnections, TrustedProxies: c.TrustedProxies},
		Logger: log,
	}
}

// newMixer is the audience mixer, or nil in a build without cgo (main
// says so at start-up).
func newMixer() server.NewMixerFunc {
	if !server.MixAvailable {
		return nil
	}
	return server.LibopusMixer
}

func (c Config) gcConfig() gctune.Config {
	return gctune.Config{GOGC: c.GOGC, MemoryLimit: c.MemoryLimit}
}

func (c Config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
