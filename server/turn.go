package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST credential scheme is HMAC-SHA1
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// TURNConfig configures the embedded TURN server: a fallback for clients
// that reach neither the media UDP port nor the ICE-TCP port (a firewall
// that allows only outgoing TCP to 443, or a proxy's TLS). It relays only
// between its clients and the relay's own media port.
type TURNConfig struct {
	// UDPAddr, TCPAddr and TLSAddr are its listen addresses (":3478",
	// ":3478", ":5349" or ":443"); empty: not on that transport. TLSAddr
	// needs TLS.
	UDPAddr, TCPAddr, TLSAddr string
	// TLS is the certificate for TLSAddr (the relay's HTTPS one).
	TLS *tls.Config
	// Host is the name or IP clients reach it at, put in the URLs of
	// ice_servers; for turns: the name the certificate is for.
	Host string
	// Secret signs the credentials (HMAC-SHA1, the TURN REST API scheme);
	// empty: a random one per process.
	Secret []byte
	// TTL is how long a participant's credentials open new allocations
	// (and refresh them); zero: DefaultTURNTTL.
	TTL time.Duration
}

// DefaultTURNTTL is how long TURN credentials last by default: a day's
// broadcast. An allocation is refreshed with the same credentials, so it
// ends when they expire; the client then rejoins (and gets new ones).
const DefaultTURNTTL = 12 * time.Hour

// turnRealm is the TURN realm (part of the long-term credential key).
const turnRealm = "lianmai"

// maxAllocationsPerParticipant bounds the allocations one participant's
// credentials hold at once. A browser makes one per TURN URL and peer
// connection (3 × 2), and an ICE restart may make new ones before the old
// expire; more is a client abusing its credentials.
const maxAllocationsPerParticipant = 12

// turnServer is the running embedded TURN server.
type turnServer struct {
	srv    *turn.Server
	cfg    TURNConfig
	urls   []string
	guard  *mediaGuard
	logger *slog.Logger

	allocations *prometheus.GaugeVec   // by listener: udp, tcp, tls
	refused     *prometheus.CounterVec // by reason

	quotaMu sync.Mutex
	held    map[string]int // open allocations by participant; guarded by quotaMu
}

// startTURN starts the TURN server. media is the relay's media UDP
// addresses (the only peers it relays to), announce the IPs the relay's
// candidates carry instead of them.
func startTURN(cfg TURNConfig, media []netip.AddrPort, announce []string, limit *tcpLimit, reg prometheus.Registerer, log *slog.Logger) (*turnServer, error) {
	if cfg.Host == "" {
		return nil, errors.New("TURN needs the host name or IP clients reach it at (-turn-host)")
	}
	if cfg.UDPAddr == "" && cfg.TCPAddr == "" && cfg.TLSAddr == "" {
		return nil, errors.New("TURN needs at least one of -turn-udp, -turn-tcp and -turn-tls")
	}
	if cfg.TLSAddr != "" && cfg.TLS == nil {
		return nil, errors.New("-turn-tls needs a certificate (-tls-cert/-tls-key or -acme-domain)")
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = make([]byte, 32)
		_, _ = rand.Read(cfg.Secret) // never fails (crypto/rand)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTURNTTL
	}
	t := &turnServer{
		cfg: cfg, logger: log, held: make(map[string]int),
		allocations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_turn_allocations", Help: "Allocations on the embedded TURN server, by the transport its client reached it over (udp, tcp, tls).",
		}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_turn_refused_total", Help: "What the embedded TURN server refused: auth (bad or expired credentials), quota (a participant's allocations beyond its quota), permission (a peer other than the relay's media port), packet (a datagram to or from another address, dropped).",
		}, []string{"reason"}),
	}
	for _, l := range []string{"udp", "tcp", "tls"} {
		t.allocations.WithLabelValues(l)
	}
	for _, r := range []string{"auth", "quota", "permission", "packet"} {
		t.refused.WithLabelValues(r)
	}
	guard, err := newMediaGuard(media, announce, t.refused.WithLabelValues("packet"))
	if err != nil {
		return nil, err
	}
	t.guard = guard
	if reg != nil {
		for _, c := range []prometheus.Collector{t.allocations, t.refused} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register TURN metrics: %w", err)
			}
		}
	}

	sc := turn.ServerConfig{Realm: turnRealm, AuthHandler: t.auth, QuotaHandler: t.quota, LoggerFactory: quietPion{log}}
	var closers []interface{ Close() error }
	fail := func(err error) (*turnServer, error) {
		for _, c := range closers {
			_ = c.Close()
		}
		return nil, err
	}
	gen := &relayGen{guard: guard}
	perm := func(_ net.Addr, peer net.IP) bool {
		if guard.allowedIP(peer) {
			return true
		}
		t.refused.WithLabelValues("permission").Inc()
		return false
	}
	var tlsPort int
	if cfg.UDPAddr != "" {
		pc, err := net.ListenPacket("udp", cfg.UDPAddr)
		if err != nil {
			return fail(fmt.Errorf("listen for TURN on UDP %s (-turn-udp): %w", cfg.UDPAddr, err))
		}
		closers = append(closers, pc)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: pc, RelayAddressGenerator: gen, PermissionHandler: perm})
		t.urls = append(t.urls, fmt.Sprintf("turn:%s?transport=udp", net.JoinHostPort(cfg.Host, port(pc.LocalAddr()))))
	}
	for _, l := range []struct {
		addr, flag, scheme, name string
		tls                      bool
	}{{cfg.TCPAddr, "-turn-tcp", "turn", "turn-tcp", false}, {cfg.TLSAddr, "-turn-tls", "turns", "turn-tls", true}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fail(fmt.Errorf("listen for TURN on TCP %s (%s): %w", l.addr, l.flag, err))
		}
		var wrapped net.Listener = newClosingListener(ln, limit, l.name)
		closers = append(closers, wrapped)
		if l.tls {
			tlsPort, _ = strconv.Atoi(port(ln.Addr()))
			wrapped = tls.NewListener(wrapped, cfg.TLS)
		}
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: wrapped, RelayAddressGenerator: gen, PermissionHandler: perm})
		t.urls = append(t.urls, fmt.Sprintf("%s:%s?transport=tcp", l.scheme, net.JoinHostPort(cfg.Host, port(ln.Addr()))))
	}
	// The transport a client reached the server over, from the local
	// address of its five-tuple (the protocol the handlers get is the
	// relayed one: always UDP).
	transport := func(local net.Addr) string {
		switch a := local.(type) {
		case *net.TCPAddr:
			if a.Port == tlsPort {
				return "tls"
			}
			return "tcp"
		default:
			return "udp"
		}
	}
	sc.EventHandler.OnAuth = func(_, _ net.Addr, _, _, _, _ string, verdict bool) {
		if !verdict { // a good username with a wrong password
			t.refused.WithLabelValues("auth").Inc()
		}
	}
	sc.EventHandler.OnAllocationCreated = func(_, local net.Addr, _, participant, _ string, _ net.Addr, _ int) {
		t.allocations.WithLabelValues(transport(local)).Inc()
		t.hold(participant, 1)
	}
	sc.EventHandler.OnAllocationDeleted = func(_, local net.Addr, _, participant, _ string) {
		t.allocations.WithLabelValues(transport(local)).Dec()
		t.hold(participant, -1)
	}
	srv, err := turn.NewServer(sc)
	if err != nil {
		return fail(fmt.Errorf("start the TURN server: %w", err))
	}
	t.srv = srv
	log.Info("TURN server listening", "urls", t.urls, "relays_to", media)
	return t, nil
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// isRelayed reports whether addr is the relayed address of one of the
// server's allocations.
func (t *turnServer) isRelayed(addr netip.AddrPort) bool {
	_, ok := t.guard.relayed.Load(addr)
	return ok
}

// Close stops the TURN server and its allocations.
func (t *turnServer) Close() error { return t.srv.Close() }

// iceServers are the TURN URLs with credentials for participant.
func (t *turnServer) iceServers(participant string) []protocol.ICEServer {
	user := strconv.FormatInt(time.Now().Add(t.cfg.TTL).Unix(), 10) + ":" + participant
	return []protocol.ICEServer{{URLs: t.urls, Username: user, Credential: turnPassword(t.cfg.Secret, user)}}
}

// turnPassword is base64(HMAC-SHA1(secret, username)): the TURN REST API
// credential (draft-uberti-behave-turn-rest), which coturn and pion read.
func turnPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// quota lets participant (the user id auth returned) allocate while it
// holds fewer than maxAllocationsPerParticipant allocations. Checked
// before the allocation is made and counted after, so concurrent requests
// may pass it by a few.
func (t *turnServer) quota(participant, _ string, _ net.Addr) bool {
	t.quotaMu.Lock()
	ok := t.held[participant] < maxAllocationsPerParticipant
	t.quotaMu.Unlock()
	if !ok {
		t.refused.WithLabelValues("quota").Inc()
	}
	return ok
}

func (t *turnServer) hold(participant string, d int) {
	t.quotaMu.Lock()
	defer t.quotaMu.Unlock()
	if t.held[participant] += d; t.held[participant] <= 0 {
		delete(t.held, participant)
	}
}

// auth accepts a username "expiry:participant" whose expiry (Unix
// seconds) has not passed, with the key of its password: a request
// signed with any other password fails its integrity check.
func (t *turnServer) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	exp, id, ok := strings.Cut(ra.Username, ":")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if !ok || id == "" || err != nil || time.Now().Unix() > sec {
		t.refused.WithLabelValues("auth").Inc()
		return "", nil, false
	}
	return id, turn.GenerateAuthKey(ra.Username, ra.Realm, turnPassword(t.cfg.Secret, ra.Username)), true
}
