package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/protocol"
)

// FloodConfig says how `loadtest flood` attacks a relay (issue 17): idle
// WebSockets that never join and a stream of joins, all from one address,
// while a legitimate client from another address joins and measures.
type FloodConfig struct {
	URL        string // the relay's WebSocket, ws://host:port/ws
	MetricsURL string // the relay's /metrics; "" derives it from URL, "-" disables scraping
	RelayPID   int    // if > 0, the relay's CPU and RSS come from /proc/<pid>
	From       string // the flood's source address (an IP; every 127.x.y.z is loopback on Linux)
	LegitFrom  string // the legitimate client's source address; "" lets the system choose

	Idle      int           // idle WebSockets to hold open
	OpenRate  float64       // idle connection attempts per second
	Reopen    bool          // replace idle sockets the relay closes or refuses, keeping Idle open
	JoinRate  float64       // join attempts per second (each a new WebSocket); 0 none
	JoinLeave bool          // a flood join that got joined sends leave before closing
	Duration  time.Duration // how long the flood is up
	Settle    time.Duration // after the flood's sockets are closed, before the "after" figures
	Timeout   time.Duration // one flood connection: the upgrade, and a join's answer
	// STUNTo and STUNRate: Binding requests with made-up credentials to
	// the relay's UDP port during the flood; STUNRate 0 sends none.
	STUNTo   string
	STUNRate float64

	Legit        int           // joins of the legitimate client, quiet and during the flood
	LegitTimeout time.Duration // one legitimate join: dial to sub connected

	Token       string // sent in every join as is
	TokenSecret string // if set, every join carries an HS256 token signed with it
	Loopback    bool   // the legitimate client's ICE on loopback only
	WaitReady   time.Duration
	Interval    time.Duration // time-series and progress interval; 0 means 1s
	Progress    io.Writer     // the progress line; nil for none
	Logger      *slog.Logger  // nil discards
	ClientLog   *slog.Logger  // the legitimate client's and pion's logs; nil discards
}

const (
	floodBeforeWindow = 2 * time.Second // the relay at rest, before anything starts
	floodAfterWindow  = 2 * time.Second // the end of the settle: the "after" CPU
	floodFDSlack      = 256             // descriptors kept for the legitimate client, /metrics, stdio
	floodPortSlack    = 512             // local ports kept free besides the flood's
	floodBufSize      = 512             // a flood socket's read and write buffers
	floodMaxKeys      = 16              // distinct close reasons and Retry-After values kept
	floodLeaveWait    = 5 * time.Second // a legitimate client's leave
)

// joinCap is how many flood joins may be in flight at once: a second's
// worth per second of timeout, and a few more.
func (c FloodConfig) joinCap() int {
	if c.JoinRate <= 0 {
		return 0
	}
	return int(math.Ceil(c.JoinRate*c.Timeout.Seconds())) + 16
}

// Descriptors is how many file descriptors the flood may need at once:
// the idle sockets (open and being opened), the joins in flight and some
// slack for the legitimate client and the rest.
func (c FloodConfig) Descriptors() int { return c.Idle + c.joinCap() + floodFDSlack }

func (c FloodConfig) validate() error {
	if err := (Config{URL: c.URL, MetricsURL: c.MetricsURL}).validate(); err != nil {
		return err
	}
	for _, a := range []struct{ flag, v string }{{"-from", c.From}, {"-legit-from", c.LegitFrom}} {
		if a.v != "" && net.ParseIP(a.v) == nil {
			return fmt.Errorf("%w: %s %q: want an IP address such as 127.0.0.2", ErrBadScenario, a.flag, a.v)
		}
	}
	switch {
	case c.From == "":
		return fmt.Errorf("%w: -from is empty: give the flood's source address, e.g. 127.0.0.2", ErrBadScenario)
	case c.Idle < 0 || c.Legit < 0 || c.JoinRate < 0 || c.RelayPID < 0:
		return fmt.Errorf("%w: -idle, -legit, -joins and -relay-pid must not be negative", ErrBadScenario)
	case c.Idle > 0 && c.OpenRate <= 0:
		return fmt.Errorf("%w: -open-rate %g: want a positive rate for -idle %d", ErrBadScenario, c.OpenRate, c.Idle)
	case c.Duration <= 0 || c.Settle <= 0 || c.Timeout <= 0 || c.LegitTimeout <= 0:
		return fmt.Errorf("%w: -duration, -settle, -timeout and -legit-timeout must be positive", ErrBadScenario)
	case c.Token != "" && c.TokenSecret != "":
		return fmt.Errorf("%w: give -token or -token-secret, not both", ErrBadScenario)
	case c.WaitReady < 0 || c.Interval < 0:
		return fmt.Errorf("%w: -wait-ready and -interval must not be negative", ErrBadScenario)
	case c.STUNRate < 0 || c.STUNRate > 0 && c.STUNTo == "":
		return fmt.Errorf("%w: -stun-rate needs -stun-to, the relay's UDP address (e.g. 127.0.0.1:50000), and must not be negative", ErrBadScenario)
	}
	return nil
}

// checkPorts refuses a flood that needs more local ports than one source
// address has towards one relay port.
func (c FloodConfig) checkPorts() error {
	lo, hi, ok := localPortRange()
	if !ok {
		return nil
	}
	need := c.Idle + c.joinCap()
	if have := hi - lo + 1; need > have-floodPortSlack {
		return fmt.Errorf("%w: -idle %d and -joins %g need up to %d local ports from %s to one relay port; this machine's range is %d-%d (%d ports, %d kept free): lower -idle, or widen net.ipv4.ip_local_port_range",
			ErrBadScenario, c.Idle, c.JoinRate, need, c.From, lo, hi, have, floodPortSlack)
	}
	return nil
}

// localPortRange reads Linux's ephemeral port range.
func localPortRange() (lo, hi int, ok bool) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && hi >= lo
}

// deadline bounds the whole flood: the wait for the relay, the before
// window, both series of legitimate joins at their worst, the flood, its
// close and the settle, and a minute of slack.
func (c FloodConfig) deadline() time.Duration {
	legit := time.Duration(c.Legit) * (c.LegitTimeout + floodLeaveWait)
	return c.WaitReady + floodBeforeWindow + 2*legit + c.Duration + 2*c.Timeout + c.Settle + time.Minute
}

// Flood runs the flood cfg describes and returns what it measured. It
// returns an error only when the flood could not take place: bad settings
// (ErrBadScenario), an address it cannot bind, a relay that does not
// accept TCP connections (ErrRelayUnreachable), the run's deadline. A
// relay that refuses the flood's connections is a result. Everything it
// starts has ended when it returns.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkPorts(); err != nil {
		return nil, err
	}
	f, err := newFlood(cfg)
	if err != nil {
		return nil, err
	}
	defer f.hc.CloseIdleConnections()
	d := cfg.deadline()
	ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("the flood passed its deadline of %s", d.Round(time.Second)))
	defer cancel()
	return f.run(ctx)
}

// flood is one run of Flood.
type flood struct {
	cfg        FloodConfig
	log        *slog.Logger
	clientLog  *slog.Logger
	metricsURL string
	hc         *http.Client
	dialer     *websocket.Dialer // the flood's: from cfg.From, small buffers
	legitDial  *net.Dialer       // the legitimate client's
	runID      string
	startNs    int64
	phase      atomic.Pointer[string]

	wg   sync.WaitGroup // every flood connection's goroutine
	stun stunFlood      // the STUN part, if any

	mu            sync.Mutex // guards the fields below
	idle          FloodIdle
	joins         FloodJoins
	heldMs        []float64
	joinedMs      []float64
	idleOpen      int64
	refusedAfter  int64 // joins refused after the upgrade
	closedByRelay int64 // idle sockets the relay closed
	open          map[*websocket.Conn]struct{}
	stopping      bool // the flood's sockets are being closed: late upgrades close at once
	fromAddr      string
	legitAddr     string
	floodStart    int64
	floodEnd      int64
	warnings      []string
	warned        map[string]bool
	series        []FloodSample
	floodMetrics  []map[string]float64 // the relay's metrics of interest at each flood sample
}

func newFlood(cfg FloodConfig) (*flood, error) {
	murl, err := (Config{URL: cfg.URL, MetricsURL: cfg.MetricsURL}).metricsURL()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	f := &flood{
		cfg:        cfg,
		log:        cfg.Logger,
		clientLog:  cfg.ClientLog,
		metricsURL: murl,
		hc:         &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{MaxIdleConns: 2}},
		dialer: &websocket.Dialer{
			NetDialContext:   fromDialer(net.ParseIP(cfg.From)).DialContext,
			HandshakeTimeout: cfg.Timeout,
			ReadBufferSize:   floodBufSize,
			WriteBufferSize:  floodBufSize,
		},
		legitDial: fromDialer(net.ParseIP(cfg.LegitFrom)),
		runID:     "fl" + hex.EncodeToString(id[:]),
		open:      make(map[*websocket.Conn]struct{}),
		warned:    make(map[string]bool),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.clientLog == nil {
		f.clientLog = slog.New(slog.DiscardHandler)
	}
	f.setPhase(floodPhaseBefore)
	return f, nil
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (linux/in.h):
// a socket bound to an address before connect gets its port at connect,
// unique per destination, instead of at bind, unique per address.
const ipBindAddressNoPort = 24

// fromDialer dials from ip (nil: the system chooses). On Linux the local
// port is picked at connect (IP_BIND_ADDRESS_NO_PORT), so that ports in
// TIME_WAIT from earlier joins do not run the flood out of ports.
func fromDialer(ip net.IP) *net.Dialer {
	d := &net.Dialer{}
	if ip == nil {
		return d
	}
	d.LocalAddr = &net.TCPAddr{IP: ip}
	if runtime.GOOS == "linux" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1) // best effort
			})
		}
	}
	return d
}

func (f *flood) setPhase(p string) { f.phase.Store(&p) }

func (f *flood) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.log.Warn(msg)
	f.mu.Lock()
	f.warnings = append(f.warnings, msg)
	f.mu.Unlock()
}

func (f *flood) run(ctx context.Context) (*FloodResult, error) {
	f.startNs = nanotime()
	res := &FloodResult{StartedAt: time.Now(), Machine: machine(), Settings: f.settings()}
	if err := f.preflight(ctx); err != nil {
		return nil, err
	}
	samplerCtx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); f.sample(samplerCtx) }()
	defer func() { stopSampler(); <-samplerDone }()

	cause := func(what string) error { return fmt.Errorf("%s: %w", what, context.Cause(ctx)) }
	b0 := f.snap(ctx)
	if b0.Metrics == nil && f.metricsURL != "" {
		f.warn("the relay's /metrics at %s did not answer; its metrics will be missing (-metrics - to not ask)", f.metricsURL)
	}
	if f.cfg.RelayPID > 0 && b0.Relay == nil {
		f.warn("cannot read /proc/%d: is -relay-pid the relay's PID? CPU and RSS come from /metrics if it has them", f.cfg.RelayPID)
	}
	if sleepCtx(ctx, floodBeforeWindow) != nil {
		return nil, cause("before the flood")
	}
	b1 := f.snap(ctx)

	f.setPhase(floodPhaseQuiet)
	res.Legit.Room = f.runID + "-legit"
	res.Legit.Quiet = f.legitSeries(ctx, nil)
	if ctx.Err() != nil {
		return nil, cause("the quiet joins")
	}

	f.setPhase(floodPhaseFlood)
	res.Legit.Flood = f.runFlood(ctx)
	if ctx.Err() != nil {
		return nil, cause("the flood")
	}

	f.setPhase(floodPhaseSettle)
	if sleepCtx(ctx, f.cfg.Settle-min(f.cfg.Settle, floodAfterWindow)) != nil {
		return nil, cause("settling")
	}
	a0 := f.snap(ctx)
	if sleepCtx(ctx, min(f.cfg.Settle, floodAfterWindow)) != nil {
		return nil, cause("settling")
	}
	a1 := f.snap(ctx)
	stopSampler()
	<-samplerDone
	f.finish(res, b0, b1, a0, a1)
	if f.cfg.STUNRate > 0 {
		res.STUN = &FloodSTUN{To: f.cfg.STUNTo, Rate: f.cfg.STUNRate, Sent: f.stun.sent.Load(), Errors: f.stun.errs.Load()}
	}
	return res, nil
}

func (f *flood) settings() FloodSettings {
	c := f.cfg
	return FloodSettings{
		URL: c.URL, From: c.From, LegitFrom: c.LegitFrom, Idle: c.Idle, OpenRate: c.OpenRate, Reopen: c.Reopen,
		JoinRate: c.JoinRate, JoinLeave: c.JoinLeave, DurationSeconds: c.Duration.Seconds(), SettleSeconds: c.Settle.Seconds(),
		TimeoutSeconds: c.Timeout.Seconds(), Legit: c.Legit, RelayPID: c.RelayPID,
	}
}

// preflight checks that both source addresses can be bound and waits for
// the relay to accept a TCP connection from the flood's address.
func (f *flood) preflight(ctx context.Context) error {
	for _, a := range []struct{ flag, ip string }{{"-from", f.cfg.From}, {"-legit-from", f.cfg.LegitFrom}} {
		if a.ip == "" {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(a.ip, "0"))
		if err != nil {
			return fmt.Errorf("cannot bind %s (%s): %w; on Linux every 127.x.y.z is loopback, elsewhere add the address to the loopback interface or give %s 127.0.0.1", a.ip, a.flag, err, a.flag)
		}
		_ = ln.Close()
	}
	u, err := url.Parse(f.cfg.URL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[u.Scheme])
	}
	wctx, cancel := context.WithTimeout(ctx, max(f.cfg.WaitReady, time.Second))
	defer cancel()
	d := fromDialer(net.ParseIP(f.cfg.From))
	for {
		conn, err := d.DialContext(wctx, "tcp", host)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if wctx.Err() != nil {
			return fmt.Errorf("%w: %s did not accept a TCP connection from %s within %s (%v): is the relay running there? (-url, -wait-ready)",
				ErrRelayUnreachable, host, f.cfg.From, max(f.cfg.WaitReady, time.Second), err)
		}
		if sleepCtx(wctx, 100*time.Millisecond) != nil {
			continue
		}
	}
}

// runFlood runs the idle and join floods for the duration while the
// legitimate client joins, then closes the flood's sockets. It returns
// the legitimate client's joins.
func (f *flood) runFlood(ctx context.Context) LegitJoins {
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := nanotime()
	f.mu.Lock()
	f.floodStart = start
	f.mu.Unlock()

	var gens sync.WaitGroup
	if f.cfg.Idle > 0 {
		gens.Go(func() { f.openIdle(stopCtx, ctx) })
	}
	if f.cfg.JoinRate > 0 {
		gens.Go(func() { f.floodJoins(stopCtx, ctx) })
	}
	if f.cfg.STUNRate > 0 {
		gens.Go(func() {
			if err := f.stun.run(stopCtx, f.cfg.From, f.cfg.STUNTo, f.cfg.STUNRate); err != nil {
				f.warn("STUN flood: %v", err)
			}
		})
	}
	// The legitimate joins are spread over the flood once the idle
	// sockets have had time to open (half the flood at most).
	ramp := f.cfg.Duration / 2
	if f.cfg.Idle > 0 {
		ramp = min(ramp, time.Duration(float64(f.cfg.Idle)/f.cfg.OpenRate*float64(time.Second)))
	} else {
		ramp = 0
	}
	at := func(i int) int64 {
		return start + int64(ramp) + int64(f.cfg.Duration-ramp)*int64(i)/int64(max(f.cfg.Legit, 1))
	}
	legit := f.legitSeries(ctx, at)
	_ = sleepCtx(ctx, time.Duration(start+int64(f.cfg.Duration)-nanotime()))

	stop()
	gens.Wait()
	f.setPhase(floodPhaseClose)
	f.mu.Lock()
	f.stopping = true
	conns := make([]*websocket.Conn, 0, len(f.open))
	for c := range f.open {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		_ = c.Close() // the TCP connection, without a close frame: the attacker vanishes
	}
	f.wg.Wait() // dials in flight end within the timeout
	f.mu.Lock()
	f.floodEnd = nanotime()
	f.mu.Unlock()
	return legit
}

// pace calls start rate times per second until stop ends or start
// returns false. Starts missed while start blocked are caught up on in
// bursts of at most 50 ms' worth.
func pace(stop context.Context, rate float64, start func() bool) {
	const tick = 5 * time.Millisecond
	burst := max(1, int(rate*0.05))
	t0 := nanotime()
	n := 0
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		due := int(float64(nanotime()-t0)/1e9*rate) + 1
		n = max(n, due-burst)
		for ; n < due; n++ {
			if stop.Err() != nil || !start() {
				return
			}
		}
		select {
		case <-stop.Done():
			return
		case <-t.C:
		}
	}
}

// openIdle opens idle sockets at the open rate, keeping at most Idle open
// or being opened, until stop ends. ctx bounds each connection.
func (f *flood) openIdle(stop, ctx context.Context) {
	slots := make(chan struct{}, f.cfg.Idle)
	started := 0
	pace(stop, f.cfg.OpenRate, func() bool {
		if !f.cfg.Reopen && started >= f.cfg.Idle {
			return false
		}
		select {
		case slots <- struct{}{}:
		case <-stop.Done():
			return false
		}
		started++
		f.wg.Go(func() {
			f.idleConn(ctx)
			if f.cfg.Reopen {
				<-slots
			}
		})
		return true
	})
}

// idleConn opens one idle socket and holds it, answering the relay's
// pings, until the relay closes it or the flood ends.
func (f *flood) idleConn(ctx context.Context) {
	c, ok := f.dial(ctx, &f.idle.FloodUpgrades)
	if !ok {
		return
	}
	f.mu.Lock()
	if f.stopping {
		f.mu.Unlock()
		_ = c.Close()
		return
	}
	f.open[c] = struct{}{}
	f.idleOpen++
	f.idle.OpenMax = max(f.idle.OpenMax, f.idleOpen)
	f.mu.Unlock()

	opened := nanotime()
	var err error
	for err == nil {
		_, _, err = c.ReadMessage()
	}
	held := float64(nanotime()-opened) / 1e6
	_ = c.Close()

	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.open, c)
	f.idleOpen--
	if errors.Is(err, net.ErrClosed) {
		return // closed by the flood's end
	}
	f.closedByRelay++
	code := closeCode(err)
	inc(&f.idle.ClosedByRelay, code, 0)
	if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) && ce.Text != "" {
		inc(&f.idle.CloseReasons, code+": "+ce.Text, floodMaxKeys)
	}
	f.heldMs = append(f.heldMs, held)
}

// floodJoins starts joins at the join rate until stop ends; ctx bounds
// each.
func (f *flood) floodJoins(stop, ctx context.Context) {
	limit := int64(f.cfg.joinCap())
	var inflight atomic.Int64
	n := 0
	pace(stop, f.cfg.JoinRate, func() bool {
		if inflight.Load() >= limit {
			f.mu.Lock()
			f.joins.Skipped++
			f.mu.Unlock()
			return true
		}
		inflight.Add(1)
		n++
		name := fmt.Sprintf("flood-%d", n)
		f.wg.Go(func() {
			defer inflight.Add(-1)
			f.joinConn(ctx, name)
		})
		return true
	})
}

// joinConn opens a WebSocket, sends an audience join, waits for the
// answer and closes.
func (f *flood) joinConn(ctx context.Context, name string) {
	dialNs, dialed := nanotime(), time.Now()
	c, ok := f.dial(ctx, &f.joins.FloodUpgrades)
	if !ok {
		return
	}
	defer func() {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = c.Close()
	}()
	deadline := dialed.Add(f.cfg.Timeout)
	_ = c.SetWriteDeadline(deadline)
	_ = c.SetReadDeadline(deadline)
	join, err := f.joinMessage(f.runID+"-flood", name)
	if err == nil {
		err = c.WriteMessage(websocket.TextMessage, join)
	}
	for err == nil {
		var data []byte
		var typ int
		typ, data, err = c.ReadMessage()
		if err != nil || typ != websocket.TextMessage {
			continue
		}
		var m struct {
			Type string `json:"type"`
			Code string `json:"code"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case protocol.TypeJoined:
			f.mu.Lock()
			f.joins.Joined++
			f.joinedMs = append(f.joinedMs, float64(nanotime()-dialNs)/1e6)
			f.mu.Unlock()
			if f.cfg.JoinLeave {
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave"}`))
			}
			return
		case protocol.TypeError:
			f.mu.Lock()
			inc(&f.joins.Errors, m.Code, 0)
			f.refusedAfter++
			f.mu.Unlock()
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusedAfter++
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		f.joins.NoAnswer++
		return
	}
	inc(&f.joins.ClosedBeforeJoined, closeCode(err), 0)
}

// joinMessage is a valid audience join of room.
func (f *flood) joinMessage(room, name string) ([]byte, error) {
	token, err := f.token(room, name)
	if err != nil {
		return nil, err
	}
	v := protocol.Version
	return json.Marshal(&protocol.Join{
		Header: protocol.Header{Type: protocol.TypeJoin}, Room: room, Name: name,
		Role: protocol.RoleAudience, Token: token, Version: &v,
	})
}

// token is the token a join carries: -token, or one minted for it.
func (f *flood) token(room, name string) (string, error) {
	if f.cfg.TokenSecret == "" {
		return f.cfg.Token, nil
	}
	tok, err := auth.Mint([]byte(f.cfg.TokenSecret), room, name, protocol.RoleAudience, f.cfg.deadline()+time.Hour, time.Now())
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	return tok, nil
}

// dial makes one upgrade attempt from the flood's address and counts its
// outcome in up.
func (f *flood) dial(ctx context.Context, up *FloodUpgrades) (*websocket.Conn, bool) {
	f.mu.Lock()
	up.Attempts++
	f.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	c, resp, err := f.dialer.DialContext(dctx, f.cfg.URL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		up.Accepted++
		if f.fromAddr == "" {
			f.fromAddr = hostOf(c.LocalAddr())
		}
		return c, true
	case resp != nil:
		up.Refused++
		inc(&up.RefusedByStatus, strconv.Itoa(resp.StatusCode), 0)
		inc(&up.RetryAfter, resp.Header.Get("Retry-After"), floodMaxKeys)
	default:
		kind := failureKind(err)
		up.Failed++
		inc(&up.FailedBy, kind, 0)
		if key := "dial " + kind; kind == "other" && !f.warned[key] {
			f.warned[key] = true
			f.warnings = append(f.warnings, fmt.Sprintf("a flood connection failed: %v", err))
		}
	}
	return nil, false
}

// failureKind names why an upgrade got no HTTP answer.
func failureKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "local_no_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "local_no_fd"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// closeCode names how the relay ended a WebSocket: its close code, or
// "none" without a close frame.
func closeCode(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return strconv.Itoa(ce.Code)
	}
	return "none"
}

// inc adds one to (*m)[key], making the map if needed. With limit > 0, a
// new key beyond limit distinct ones counts under "other".
func inc(m *map[string]int64, key string, limit int) {
	if *m == nil {
		*m = make(map[string]int64)
	}
	if _, ok := (*m)[key]; !ok && limit > 0 && len(*m) >= limit {
		key = "other"
	}
	(*m)[key]++
}

// hostOf is an address without its port.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// floodCounts are the flood's counters at one instant, both floods added.
type floodCounts struct {
	attempts, accepted, refused, failed, refusedAfter, closedByRelay, idleOpen int64
}

func (f *flood) countsLocked() floodCounts {
	return floodCounts{
		attempts:      f.idle.Attempts + f.joins.Attempts,
		accepted:      f.idle.Accepted + f.joins.Accepted,
		refused:       f.idle.Refused + f.joins.Refused,
		failed:        f.idle.Failed + f.joins.Failed,
		refusedAfter:  f.refusedAfter,
		closedByRelay: f.closedByRelay,
		idleOpen:      f.idleOpen,
	}
}
