// Package server builds the whole relay from its configuration: the media
// port, the room layer (sfu), signaling, the metrics registry and the HTTP
// routes (the page, /ws, /metrics, /healthz, /readyz). cmd/relay and the
// tests (internal/relaytest) both build it here, so that the tests
// exercise the production routes.
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/cluster"
	"github.com/lianmai/relay/gctune"
	"github.com/lianmai/relay/media"
	"github.com/lianmai/relay/mix"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
	"github.com/lianmai/relay/whip"
	"github.com/pion/ice/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Config is what New needs.
type Config struct {
	// UDPAddr is the one UDP port for every peer's media (media.ListenUDP):
	// ":50000" in production, "127.0.0.1:0" in tests.
	UDPAddr string
	// TCPAddr is the one TCP port for ICE-TCP (listenTCP), for clients
	// whose networks block UDP; empty: no TCP candidates.
	TCPAddr string
	// AnnounceIPs replace the host candidates' addresses (1:1 NAT).
	AnnounceIPs []string
	// Loopback gathers loopback candidates only, mDNS off: tests and demos
	// on one machine.
	Loopback bool
	// FanoutThreshold is how many subscribers a track's reader writes
	// itself before the rest go to the fan-out workers (media.Batch
	// SetFanoutThreshold): 0 media.FanoutThreshold, -1 never.
	FanoutThreshold int
	// NoDirectIngest turns direct ingest off (media.ListenOptions.Direct,
	// on by default): every publisher packet then passes pion's stack, for
	// A/B runs (docs/performance.md).
	NoDirectIngest bool
	// TURN, if set, runs the embedded TURN server (turn.go) and hands its
	// URLs with per-participant credentials to clients in joined.
	TURN *TURNConfig
	// MaxTCPPerAddr caps the TCP media connections (ICE-TCP and TURN over
	// TCP and TLS together) one client address holds open (tcplimit.go);
	// 0: DefaultMaxTCPPerAddr, -1: no cap.
	MaxTCPPerAddr int
	// SFU and Signaling are the layers' own settings; New fills in what
	// it builds (the media port, metrics, logger).
	SFU       sfu.Config
	Signaling signaling.Config
	// NewMixer starts a room's audience mixer (mix.go), with Mix as its
	// settings; nil: the relay has no mix (SFU.NewMixer is set from it).
	NewMixer NewMixerFunc
	Mix      MixConfig
	// Cluster, if set, makes the relay a node of a cluster over NATS
	// (package cluster, docs/cluster.md): rooms are routed by the
	// directory. nil: a single relay.
	Cluster *cluster.Config
	// Logger, nil for slog.Default().
	Logger *slog.Logger
}

// Server is a built relay: serve Handler, then Drain and Shutdown.
type Server struct {
	sfu      *sfu.SFU
	sig      *signaling.Server
	reg      *prometheus.Registry
	handler  http.Handler
	draining atomic.Bool        // /readyz fails once set
	whip     *whip.Server       // WHIP and WHEP sessions
	tcp      *ice.TCPMuxDefault // the ICE-TCP port; nil when off
	udpAddrs []netip.AddrPort   // the media UDP port's addresses
	node     *cluster.Node      // nil for a single relay
	// closers are what New opened besides the media port (the ICE-TCP
	// port, the TURN server), closed by Shutdown after the sessions, in
	// reverse order.
	closers []io.Closer
}

// New opens the media port and builds the relay. On error nothing is left
// open.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gctune.NewCollector(),
	)
	metrics, err := sfu.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	udp, err := media.ListenUDPWith(cfg.UDPAddr, cfg.Loopback, media.ListenOptions{Direct: !cfg.NoDirectIngest})
	if err != nil {
		return nil, fmt.Errorf("cannot open the media port; choose another with -udp: %w", err)
	}
	media.BatchOf(udp).SetFanoutThreshold(cfg.FanoutThreshold)
	if d := media.DirectOf(udp); d != nil {
		for _, c := range d.Collectors() {
			if err := reg.Register(c); err != nil {
				_ = udp.Close()
				return nil, fmt.Errorf("direct ingest metrics: %w", err)
			}
		}
	}
	sc := cfg.SFU
	sc.ICE = sfu.ICEConfig{UDPMux: udp, AnnounceIPs: cfg.AnnounceIPs, Loopback: cfg.Loopback}
	var closers []io.Closer
	closeAll := func() {
		_ = udp.Close()
		for _, c := range slices.Backward(closers) {
			_ = c.Close()
		}
	}
	maxTCP := cfg.MaxTCPPerAddr
	if maxTCP == 0 {
		maxTCP = DefaultMaxTCPPerAddr
	}
	tcpLim, err := newTCPLimit(maxTCP, reg)
	if err != nil {
		closeAll()
		return nil, err
	}
	var tcpMux *ice.TCPMuxDefault
	if cfg.TCPAddr != "" {
		tcp, err := listenTCP(cfg.TCPAddr, tcpLim, log)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("cannot open the ICE-TCP port; choose another with -tcp, or turn it off with -tcp '': %w", err)
		}
		closers = append(closers, tcp)
		sc.ICE.TCPMux = tcp
		tcpMux = tcp
	}
	var turnSrv *turnServer
	if cfg.TURN != nil {
		turnSrv, err = startTURN(*cfg.TURN, listenAddrs(udp), cfg.AnnounceIPs, tcpLim, reg, log)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("cannot start the TURN server: %w", err)
		}
		closers = append(closers, turnSrv)
		sc.ICE.Relayed = turnSrv.isRelayed
	}
	if sc.ICE.Selected, err = selectedMetric(reg); err != nil {
		closeAll()
		return nil, err
	}
	sc.Metrics = metrics
	sc.Logger = log
	mixCfg := cfg.Mix
	mixCfg.Logger = log
	if cfg.NewMixer != nil {
		if mixCfg.Metrics, err = mix.NewMetrics(reg); err != nil {
			_ = udp.Close()
			return nil, err
		}
	}
	sc.NewMixer = sfuMixer(cfg.NewMixer, mixCfg)
	var node *cluster.Node
	if cfg.Cluster != nil {
		cc := *cfg.Cluster
		cc.Registry, cc.Logger = reg, log
		if node, err = cluster.Start(cc); err != nil {
			closeAll()
			return nil, fmt.Errorf("cannot join the cluster: %w", err)
		}
		closers = append(closers, node)
		sc.Router = node
		sc.Edge = node // listeners of rooms owned elsewhere are served here, over a link (docs/cluster.md, edges)
		// cross-room links with rooms on other relays (docs/cluster.md, PK across nodes)
		sc.PKPeer = node
	}
	rooms, err := sfu.New(sc)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("cannot start the media server: %w", err)
	}
	gc := cfg.Signaling
	gc.Logger = log
	if turnSrv != nil {
		gc.ICEServers = turnSrv.iceServers
	}
	r := &Server{
		sfu:      rooms,
		sig:      signaling.NewServer(signaling.Params{Config: gc, SFU: rooms, Registry: reg}),
		reg:      reg,
		tcp:      tcpMux,
		udpAddrs: listenAddrs(udp),
		closers:  closers,
		node:     node,
	}
	if node != nil {
		node.Attach(rooms)
		// A room another node claimed while this one was cut off from
		// the directory: its participants here move there.
		node.OnLost(func(room, url string) { r.sig.MoveRoom(room, url) })
	}
	r.whip = whip.New(whip.Params{Config: gc, SFU: rooms, Registry: reg, Logger: log})
	r.handler = r.routes()
	return r, nil
}

// selectedMetric counts the transports participants' connections select.
func selectedMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_ice_selected_total",
		Help: "Candidate pairs selected by participants' sub connections (one per participant, more after ICE restarts), by transport: udp, tcp (ICE-TCP), relay (TURN).",
	}, []string{"transport"})
	for _, t := range []string{sfu.TransportUDP, sfu.TransportTCP, sfu.TransportRelay} {
		c.WithLabelValues(t)
	}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register relay_ice_selected_total: %w", err)
	}
	return c, nil
}

// listenAddrs are the UDP mux's addresses.
func listenAddrs(mux ice.UDPMux) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range mux.GetListenAddresses() {
		if ua, ok := a.(*net.UDPAddr); ok {
			out = append(out, ua.AddrPort())
		}
	}
	return out
}

// MediaUDPAddrs are the media UDP port's addresses.
func (r *Server) MediaUDPAddrs() []netip.AddrPort { return r.udpAddrs }

// MediaTCPAddr is the ICE-TCP port's address, nil when it is off.
func (r *Server) MediaTCPAddr() net.Addr {
	if r.tcp == nil {
		return nil
	}
	return r.tcp.LocalAddr()
}

// Handler serves the relay's HTTP surface.
func (r *Server) Handler() http.Handler { return r.handler }

// Registry holds every metric the relay exports at /metrics.
func (r *Server) Registry() *prometheus.Registry { return r.reg }

// Drain starts a graceful shutdown: /readyz fails, joins and resumes are
// refused, every client is told to move, and Drain waits until every
// session has ended or timeout has passed (or ctx ends).
func (r *Server) Drain(ctx context.Context, timeout time.Duration) {
	r.draining.Store(true)
	r.whip.Drain()
	if r.node != nil {
		// No joins while the rooms are handed over; then each room's
		// participants are told where it went (docs/cluster.md, drain).
		r.sfu.Drain()
		for room, url := range r.node.Handover(ctx) {
			r.sig.MoveRoom(room, url)
		}
	}
	r.sig.Drain(ctx, timeout)
}

// Cluster is the relay's cluster node, nil for a single relay.
func (r *Server) Cluster() *cluster.Node { return r.node }

// Shutdown closes every session and participant and the media port, and
// waits for the sessions to end or ctx to expire. Call it before the HTTP
// server's own Shutdown, which does not wait for hijacked (WebSocket)
// connections.
func (r *Server) Shutdown(ctx context.Context) error {
	r.draining.Store(true)
	r.whip.Drain()
	err := r.sig.Shutdown(ctx)
	for _, c := range slices.Backward(r.closers) {
		_ = c.Close()
	}
	return err
}
