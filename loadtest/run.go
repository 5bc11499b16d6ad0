package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/loadtest/report"
)

// Run runs sc against the relay cfg names and returns the report. It
// returns an error, and no report, when the run could not take place: a
// bad scenario (ErrBadScenario), a relay that does not answer
// (ErrRelayUnreachable) or refuses the load generator (ErrRefused), a run
// past its deadline. Everything it starts has ended when it returns.
func Run(ctx context.Context, sc Scenario, cfg Config) (*report.Report, error) {
	sc = sc.WithDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, err := newRunner(sc, cfg)
	if err != nil {
		return nil, err
	}
	defer r.hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeoutCause(ctx, r.deadline,
		fmt.Errorf("the run passed its deadline of %s (-deadline)", r.deadline.Round(time.Second)))
	defer cancel()
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*report.Report, error) {
	r.startNs, r.startedAt = nanotime(), time.Now()
	if err := r.preflight(ctx); err != nil {
		return nil, err
	}
	if err := r.waitNodes(ctx); err != nil {
		return nil, err
	}
	before, scrapeErr := r.snap(ctx) // baseline for the relay's join latency histogram
	r.snapNodes(ctx, snapBefore)
	if scrapeErr != nil {
		r.warn("relay /metrics at %s did not answer (%v); relay figures will be missing", r.metricsURL, scrapeErr)
	}

	samplerCtx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); r.sample(samplerCtx) }()
	defer func() { stopSampler(); <-samplerDone }()

	// Everything joined is torn down whatever happens below.
	defer r.teardown()

	r.phase.Store(phaseRamp)
	pubs, audience := r.plan()
	if err := r.ramp(ctx, pubs, false); err != nil {
		return nil, fmt.Errorf("joining publishers: %w", err)
	}
	if n := r.countPublishers(); n == 0 {
		return nil, fmt.Errorf("%w: no publisher could join; see the failures above", ErrRefused)
	}
	r.audRamp.Start, _ = r.snap(ctx)
	joinedBefore := r.succeeded()
	if err := r.ramp(ctx, audience, r.sc.JoinBurst); err != nil {
		return nil, fmt.Errorf("joining audience: %w", err)
	}
	r.audRamp.End, _ = r.snap(ctx)
	r.audRamp.Joined = r.succeeded() - joinedBefore
	if r.sc.PK {
		r.linkRooms(ctx)
	}

	r.phase.Store(phaseSettle)
	if err := sleepCtx(ctx, r.sc.Settle.D()); err != nil {
		return nil, fmt.Errorf("settling: %w", context.Cause(ctx))
	}

	r.phase.Store(phaseMeasure)
	r.win.start.Store(nanotime())
	start, _ := r.snap(ctx)
	r.snapNodes(ctx, snapStart)
	actorsCtx, stopActors := context.WithCancel(ctx)
	var actors sync.WaitGroup
	r.startActors(actorsCtx, &actors)
	err := sleepCtx(ctx, r.sc.Duration.D())
	r.win.end.Store(nanotime())
	end, _ := r.snap(ctx)
	r.snapNodes(ctx, snapEnd)
	stopActors()
	actors.Wait()
	if err != nil {
		return nil, fmt.Errorf("measuring: %w", context.Cause(ctx))
	}
	_ = sleepCtx(ctx, tail) // let the window's last frames arrive

	r.phase.Store(phaseTeardown)
	r.teardown()
	stopSampler()
	<-samplerDone
	return r.finish(before, start, end), nil
}

// preflight waits for the relay to accept TCP connections (up to
// WaitReady) and makes one probe join, so that an unreachable relay or a
// refused token ends the run at once with a clear message.
func (r *runner) preflight(ctx context.Context) error {
	if err := waitTCP(ctx, r.cfg.URL, r.cfg.WaitReady); err != nil {
		return err
	}
	pctx, pcancel := context.WithTimeout(ctx, r.sc.JoinTimeout.D())
	defer pcancel()
	p := &participant{r: r, room: 0, name: "probe", role: roleAudience, own: newWindow(0, never)}
	if err := p.dial(pctx); err != nil {
		var se *client.ServerError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: probe join: %w; check -token / -token-secret and the relay's limits", ErrRefused, err)
		}
		return fmt.Errorf("%w: probe join at %s: %w; is it a Lianmai relay (protocol v1) at that path?", ErrRelayUnreachable, r.cfg.URL, err)
	}
	// Over another transport than UDP, a relay that lacks it (no -turn,
	// say) still accepts the join: the probe must connect too.
	var connErr error
	if r.sc.Transport != TransportUDP {
		connErr = p.c.SubConnected(pctx)
	}
	if err := p.close(pctx); err != nil {
		r.log.Debug("probe leave", "err", err)
	}
	if connErr != nil {
		return fmt.Errorf("%w: the probe listener joined but did not connect over %s: %w.%s", ErrRelayUnreachable, r.sc.Transport, connErr, transportHint(r.sc.Transport))
	}
	return nil
}

// waitTCP waits up to wait (at least a second) for the relay at the
// WebSocket URL raw to accept TCP connections.
func waitTCP(ctx context.Context, raw string, wait time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadScenario, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[u.Scheme])
	}
	wait = max(wait, time.Second)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(wctx, "tcp", host)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if wctx.Err() != nil {
			return fmt.Errorf("%w: nothing answers at %s after %s (%v): is the relay running there? start it, or pass its address with -url",
				ErrRelayUnreachable, host, wait, err)
		}
		if err := sleepCtx(wctx, 100*time.Millisecond); err != nil {
			continue
		}
	}
}

// startActors starts churn and mic cycling for the measurement window.
func (r *runner) startActors(ctx context.Context, wg *sync.WaitGroup) {
	for room := 0; room < r.sc.Rooms; room++ {
		if r.sc.ChurnPerMin > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); r.churnRoom(ctx, room) }()
		}
		if r.sc.MicCycleEvery > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); r.micRoom(ctx, room) }()
		}
	}
}

// teardown closes every participant still joined, a few at a time, each
// bounded by a deadline. It is idempotent.
func (r *runner) teardown() {
	r.mu.Lock()
	parts := r.parts
	r.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, p := range parts {
		if !p.markClosing() {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.endWindow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.close(ctx); err != nil {
				r.log.Debug("leave at teardown", "err", err)
			}
			r.up.Add(-1)
		}()
	}
	wg.Wait()
}

func (r *runner) countPublishers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.logs)
}

// succeeded is the number of joins that have succeeded so far.
func (r *runner) succeeded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.joins.succeeded
}

// snap reads every counter a report is computed from. The error is the
// scrape's when /metrics did not answer; the snapshot then has no Metrics.
func (r *runner) snap(ctx context.Context) (report.Snapshot, error) {
	s := report.Snapshot{Nanos: nanotime(), SelfCPU: selfCPU(), Packets: r.live.packets.Load(), Late: r.live.late.Load(),
		Goroutines: runtime.NumGoroutine(), Host: readHostCPU()}
	if r.cfg.RelayPID > 0 {
		if ps, err := readProcStat(r.cfg.RelayPID); err == nil {
			s.Relay = &report.Process{CPU: ps.cpu, RSS: ps.rss, Wakeups: -1}
			if w, err := readWakeups(r.cfg.RelayPID); err == nil {
				s.Relay.Wakeups = w
			}
		}
	}
	var err error
	if r.metricsURL != "" {
		s.Metrics, err = scrape(ctx, r.hc, r.metricsURL)
	}
	return s, err
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
