package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// Phases of a run, for the progress line and the time series.
const (
	phaseStart = iota
	phaseRamp
	phaseSettle
	phaseMeasure
	phaseTeardown
)

var phaseNames = [...]string{"start", "ramp", "settle", "measure", "teardown"}

// tail is how long publishers keep sending after a window closes, so that
// every frame sent inside it has time to arrive (five playout deadlines).
const tail = 250 * time.Millisecond

// runner is one run's state.
type runner struct {
	sc         Scenario
	cfg        Config
	log        *slog.Logger
	clientLog  *slog.Logger
	runID      string
	deadline   time.Duration
	maxFrames  int
	metricsURL string
	hc         *http.Client
	cluster    *clusterRun // nil for one relay
	startNs    int64
	startedAt  time.Time
	audRamp    report.Ramp // around the audience's joins; set by run only

	win           *window      // the measurement window; read by every reader per packet
	live          liveCounters // packets read and late frames, for the progress line and the series
	foreignTracks atomic.Uint64
	up            atomic.Int64 // participants joined and not yet gone
	phase         atomic.Int32

	slotMu   sync.Mutex
	nextSlot int64         // when the next join may start (join_rate); guarded by slotMu
	sem      chan struct{} // join_concurrency tokens; a join holds one while in flight

	mu         sync.Mutex           // guards the fields below
	logs       map[string]*frameLog // by publisher participant id
	parts      []*participant       // everyone who joined, in order; churned and mic guests too
	audience   [][]*participant     // per room: audience currently in (churn picks from it)
	hosts      [][]*participant     // per room
	joins      joinCounts
	churn      report.Churn
	mic        report.Mic
	micGrant   []float64
	micRel     []float64
	micPublish []float64 // role_changed guest to the guest's first frame sent, ms
	micHeard   []float64 // role_changed guest to a host's first packet of the guest, ms
	pk         report.PK
	pkSetup    []float64 // pk_accept to the other room's first packet at each host, ms
	warnings   []string
	series     []report.Sample
}

type joinCounts struct {
	attempted, succeeded, failed int
	failures                     []string
	joinedMs, connectedMs        []float64
}

const maxListed = 10 // failures and misses listed in the report

func newRunner(sc Scenario, cfg Config) (*runner, error) {
	murl, err := cfg.metricsURL()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := &runner{
		sc:         sc,
		cfg:        cfg,
		log:        cfg.Logger,
		clientLog:  cfg.ClientLog,
		runID:      "lt" + hex.EncodeToString(id[:]),
		deadline:   runDeadline(sc, cfg),
		metricsURL: murl,
		hc:         &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{MaxIdleConns: 2, TLSClientConfig: cfg.TLSConfig}},
		win:        newWindow(never, never),
		sem:        make(chan struct{}, sc.JoinConcurrency),
		logs:       make(map[string]*frameLog),
		audience:   make([][]*participant, sc.Rooms),
		hosts:      make([][]*participant, sc.Rooms),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clientLog == nil {
		r.clientLog = slog.New(slog.DiscardHandler)
	}
	if r.cluster, err = newClusterRun(cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	r.maxFrames = int(r.deadline/time.Duration(frameInterval)) + 100
	r.mic.Enabled = sc.MicCycleEvery > 0
	r.pk.Enabled = sc.PK
	return r, nil
}

func (r *runner) roomName(i int) string { return fmt.Sprintf("%s-r%d", r.runID, i) }

func (r *runner) frameLog(id string) *frameLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs[id]
}

func (r *runner) addFrameLog(l *frameLog) {
	r.mu.Lock()
	r.logs[l.id] = l
	r.mu.Unlock()
}

func (r *runner) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.log.Warn(msg)
	r.mu.Lock()
	r.warnings = append(r.warnings, msg)
	r.mu.Unlock()
}

// admit waits for the next join slot (join_rate) and a concurrency token
// (join_concurrency). The caller must call the returned release.
func (r *runner) admit(ctx context.Context) (release func(), err error) {
	r.slotMu.Lock()
	now := nanotime()
	at := max(now, r.nextSlot)
	r.nextSlot = at + int64(float64(time.Second)/r.sc.JoinRate)
	r.slotMu.Unlock()
	t := time.NewTimer(time.Duration(at - now))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r.sem <- struct{}{}:
		return func() { <-r.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// joinSpec is one participant to join.
type joinSpec struct {
	room   int
	role   string
	name   string
	listen string // audience only: ListenTracks or ListenMix
	decode bool
	sink   bool // audience only: its sockets drop media (Scenario.SinkAudience)
	seed   int64
	node   int // the relay it dials, in a cluster run (0: Config.URL)
}

// join joins one participant (the caller holds an admit token): dial,
// publish if it is a host or guest, wait for its peer connections. A
// failure is counted and returned; a join cut short by ctx is not counted.
func (r *runner) join(ctx context.Context, s joinSpec) (*participant, error) {
	jctx, cancel := context.WithTimeout(ctx, r.sc.JoinTimeout.D())
	defer cancel()
	p := &participant{r: r, room: s.room, name: s.name, role: s.role, listen: s.listen, decode: s.decode, sink: s.sink, node: s.node, own: newWindow(0, never)}
	r.mu.Lock()
	r.joins.attempted++
	r.mu.Unlock()
	err := p.dial(jctx)
	if err == nil && s.role != roleAudience {
		err = p.startPublishing(jctx, s.seed, r.maxFrames)
	}
	if err == nil {
		err = p.c.SubConnected(jctx)
	}
	if err != nil {
		if p.c != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.close(cctx)
			ccancel()
		}
		err = fmt.Errorf("%s joining room %d as %s: %w", s.name, s.room, s.role, err)
		if ctx.Err() != nil {
			return nil, err
		}
		r.mu.Lock()
		r.joins.failed++
		if len(r.joins.failures) < maxListed {
			r.joins.failures = append(r.joins.failures, err.Error())
		}
		r.mu.Unlock()
		r.log.Warn("join failed", "err", err)
		return nil, err
	}
	connected := nanotime()
	r.mu.Lock()
	r.joins.succeeded++
	r.joins.joinedMs = append(r.joins.joinedMs, float64(p.joinedNs-p.dialNs)/1e6)
	r.joins.connectedMs = append(r.joins.connectedMs, float64(connected-p.dialNs)/1e6)
	r.parts = append(r.parts, p)
	switch s.role {
	case roleAudience:
		r.audience[s.room] = append(r.audience[s.room], p)
	case roleHost:
		r.hosts[s.room] = append(r.hosts[s.room], p)
	}
	r.mu.Unlock()
	r.up.Add(1)
	return p, nil
}

// Roles as the protocol names them.
const (
	roleHost     = "host"
	roleGuest    = "guest"
	roleAudience = "audience"
)

// plan lists the ramp's joins: every room's publishers first (hosts, then
// guests), then the audience, rooms interleaved. The first MixListeners
// audience members of each room ask for the mix, the rest for tracks. The
// first decode_per_room of each of those two groups decode (a room
// without audience samples its publishers), so that each stream class
// has its decoded sample.
func (r *runner) plan() (pubs, audience []joinSpec) {
	sc := r.sc
	seed := sc.Seed * 1000
	for i := 0; i < sc.Hosts+sc.Guests; i++ {
		for room := 0; room < sc.Rooms; room++ {
			role, name := roleHost, fmt.Sprintf("h%d", i+1)
			if i >= sc.Hosts {
				role, name = roleGuest, fmt.Sprintf("g%d", i-sc.Hosts+1)
			}
			seed++
			pubs = append(pubs, joinSpec{room: room, role: role, name: name, seed: seed,
				decode: sc.Audience == 0 && i < sc.DecodePerRoom})
		}
	}
	mix := sc.MixListeners()
	for i := 0; i < sc.Audience; i++ {
		listen, nth := ListenMix, i // nth: the member's place in its group
		if i >= mix {
			listen, nth = ListenTracks, i-mix
		}
		for room := 0; room < sc.Rooms; room++ {
			audience = append(audience, joinSpec{room: room, role: roleAudience,
				name: fmt.Sprintf("a%d", i+1), listen: listen, decode: nth < sc.DecodePerRoom, node: r.cluster.nodeFor(len(audience))})
		}
	}
	for i := 0; i < sc.SinkAudience; i++ {
		for room := 0; room < sc.Rooms; room++ {
			audience = append(audience, joinSpec{room: room, role: roleAudience,
				name: fmt.Sprintf("s%d", i+1), listen: ListenTracks, sink: true, node: r.cluster.nodeFor(len(audience))})
		}
	}
	return pubs, audience
}

// ramp joins specs at the scenario's rate and concurrency, or with burst
// all at once, and waits for them all. It gives up early after
// maxConsecutiveFailures failures in a row: the relay is refusing everyone.
func (r *runner) ramp(ctx context.Context, specs []joinSpec, burst bool) error {
	const maxConsecutiveFailures = 10
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var consecutive atomic.Int32
	var launchErr error
	for _, s := range specs {
		release := func() {}
		if !burst {
			var err error
			if release, err = r.admit(ctx); err != nil {
				launchErr = err
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			if _, err := r.join(ctx, s); err != nil {
				if consecutive.Add(1) >= maxConsecutiveFailures {
					cancel(fmt.Errorf("%d joins in a row failed, the last: %w", maxConsecutiveFailures, err))
				}
				return
			}
			consecutive.Store(0)
		}()
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return launchErr
}
