package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
	"github.com/prometheus/client_golang/prometheus"
)

// Server accepts WebSocket sessions at /ws.
type Server struct {
	cfg      Config
	sfu      *sfu.SFU
	log      *slog.Logger
	upgrader websocket.Upgrader
	m        *metrics
	limits   *connLimiter
	refusals *throttledLog // refusals logged at most once per reason per interval
	parked   *parker       // connections that have sent nothing yet, held without a goroutine

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
	draining bool           // Drain has begun
	drainEnd time.Time      // when Drain gives up waiting
	wg       sync.WaitGroup // one per session
}

// Params are NewServer's dependencies.
type Params struct {
	Config   Config
	SFU      *sfu.SFU
	Registry prometheus.Registerer // nil: metrics not registered
}

// NewServer creates the signaling server.
func NewServer(p Params) *Server {
	p.Config.setDefaults()
	s := &Server{
		cfg: p.Config,
		sfu: p.SFU,
		log: p.Config.Logger,
		upgrader: websocket.Upgrader{
			// A small read buffer (larger messages are read past it,
			// straight into the message), and a write buffer borrowed
			// from the pool only while writing: an idle connection holds
			// 512 bytes of buffer.
			ReadBufferSize:  512,
			WriteBufferPool: writeBuffers,
			// Another site must not drive a visitor's browser into a room:
			// only the relay's own page, localhost and configured origins.
			CheckOrigin: newOriginChecker(p.Config.AllowedOrigins).check,
			Error:       upgradeError,
		},
		m:        newMetrics(p.Registry),
		limits:   newConnLimiter(p.Config),
		refusals: newThrottledLog(p.Config.Logger, 10*time.Second),
		sessions: make(map[*session]struct{}),
	}
	s.parked = newParker(parkerParams{
		joinTimeout: p.Config.JoinTimeout,
		log:         p.Config.Logger,
		onWake:      s.unpark,
		onClosed:    s.parkedClosed,
	})
	s.m.limit.Set(float64(max(0, p.Config.MaxConnections)))
	return s
}

// ServeHTTP admits the request under the connection limits, upgrades it to
// a WebSocket and parks it until the client sends something, or (where
// parking is not available) starts the session in a goroutine of its own
// at once; Drain and Shutdown wait for the sessions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "relay is shutting down; connect to another relay or retry shortly", http.StatusServiceUnavailable)
		return
	}
	addr := clientAddr(r, s.cfg.TrustedProxies)
	if ref := s.limits.open(addr, time.Now()); ref != nil {
		s.refuse(addr, ref)
		status := http.StatusTooManyRequests
		if ref.reason == refusedCapacity {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, ref.retryAfter.Round(time.Second)/time.Second))))
		http.Error(w, ref.message, status)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.limits.close(addr, false)
		return // the upgrader has answered with the HTTP error
	}
	// Either way this handler returns: net/http then lets go of what it
	// held for the request (its 4 KiB read and write buffers, the request,
	// its contexts), which otherwise every idle connection would keep.
	// Counted first: the parker may hand it on before park returns.
	s.m.sessions.Inc()
	s.m.parked.Inc()
	if s.parked.park(conn, r.RemoteAddr, addr) {
		return // no goroutine until the client sends something (park_linux.go)
	}
	s.m.parked.Dec()
	s.m.sessions.Dec()
	s.startSession(conn, r.RemoteAddr, addr, time.Now().Add(s.cfg.JoinTimeout))
}

// startSession runs conn's session in a goroutine of its own, which
// closes the connection at the end; the session must join by joinBy.
func (s *Server) startSession(conn *websocket.Conn, remote string, addr netip.Addr, joinBy time.Time) {
	ss := newSession(s, conn, remote, addr)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ss.closeWith(protocol.CloseGoingAway, "relay is shutting down")
		go func() {
			ss.run(joinBy)
			s.limits.close(addr, false)
		}()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	if s.draining {
		ss.send(s.drainingLocked())
	}
	s.mu.Unlock()
	s.m.sessions.Inc()
	go func() {
		defer func() {
			s.limits.close(addr, ss.joined.Load())
			s.mu.Lock()
			delete(s.sessions, ss)
			s.mu.Unlock()
			s.m.sessions.Dec()
			s.wg.Done()
		}()
		ss.run(joinBy)
	}()
}

// unpark starts the session of a parked connection that has sent
// something (or hung up), or that Drain wakes.
func (s *Server) unpark(conn *websocket.Conn, remote string, addr netip.Addr, joinBy time.Time) {
	s.m.parked.Dec()
	s.m.sessions.Dec() // startSession counts it again
	s.startSession(conn, remote, addr, joinBy)
}

// parkedClosed forgets a parked connection the parker has closed (join
// timeout, or Shutdown).
func (s *Server) parkedClosed(addr netip.Addr) {
	s.limits.close(addr, false)
	s.m.parked.Dec()
	s.m.sessions.Dec()
}

// writeBuffers are the WebSocket write buffers, shared by every session
// (gorilla takes one per message written and puts it back).
var writeBuffers = &sync.Pool{}

// upgradeError answers a refused upgrade with what to do about it.
func upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	msg := reason.Error()
	if status == http.StatusForbidden {
		msg = fmt.Sprintf("origin %q may not connect: serve the page from the relay or localhost, or add the origin to -allowed-origins", r.Header.Get("Origin"))
	}
	http.Error(w, msg, status)
}

// Drain starts a graceful shutdown: joins and resumes are refused with
// shutting_down, every session is told (draining, with the time left)
// and Drain waits until every session has ended or timeout has passed
// (or ctx ends). Shutdown then closes what is left.
func (s *Server) Drain(ctx context.Context, timeout time.Duration) {
	s.sfu.Drain()
	s.mu.Lock()
	s.draining, s.drainEnd = true, time.Now().Add(timeout)
	msg := s.drainingLocked()
	for ss := range s.sessions {
		if ss.closing() {
			continue // moved to another relay (MoveRoom), or ending anyway
		}
		ss.send(msg)
	}
	s.mu.Unlock()
	// Parked connections get sessions, which tell them as well; from now
	// on nothing is parked.
	s.parked.wakeAll()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = s.waitSessions(ctx)
}

// waitSessions waits until every session has ended or ctx ends. The
// waiting goroutine outlives a ctx that ends first until the sessions end
// (Shutdown ends them).
func (s *Server) waitSessions(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) drainingLocked() protocol.Draining {
	return protocol.Draining{
		Header:    protocol.Header{Type: protocol.TypeDraining},
		TimeoutMS: max(0, time.Until(s.drainEnd).Milliseconds()),
		Message:   "the relay is shutting down and takes no new joins; reconnect to another relay",
	}
}

// Shutdown refuses new sessions and joins, removes every participant,
// closes every WebSocket (code 1001) and waits for the sessions to end or
// ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if err := s.sfu.Close(); err != nil {
		s.log.Warn("close sfu", "err", err)
	}
	s.mu.Lock()
	for ss := range s.sessions {
		ss.closeWith(protocol.CloseGoingAway, "relay is shutting down")
	}
	s.mu.Unlock()
	// Parked connections are closed here and now (no session to wait for).
	s.parked.close(protocol.CloseGoingAway, "relay is shutting down")
	return s.waitSessions(ctx)
}

// refuse counts and logs (throttled) a refusal of addr.
func (s *Server) refuse(addr netip.Addr, ref *refusal) {
	s.m.refused.WithLabelValues(ref.reason).Inc()
	s.refusals.log(ref.reason, "connection refused by a limit", "reason", ref.reason, "addr", addr.String())
}

// Ready reports whether the relay takes new clients: nil, or why not (it
// is draining, or near its connection cap). /readyz serves it.
func (s *Server) Ready() error {
	s.mu.Lock()
	closing, draining := s.closing, s.draining
	s.mu.Unlock()
	switch {
	case closing || draining:
		return errors.New("shutting down")
	}
	if conns, max := s.limits.load(); max > 0 && float64(conns) > nearCapacity*float64(max) {
		return fmt.Errorf("near the connection limit: %d of %d open", conns, max)
	}
	return nil
}
