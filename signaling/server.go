package signaling

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

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

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
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
	return &Server{
		cfg: p.Config,
		sfu: p.SFU,
		log: p.Config.Logger,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			// CheckOrigin nil: gorilla's default refuses browsers whose
			// Origin is not this host, so another site cannot drive a
			// visitor's browser into a room.
		},
		m:        newMetrics(p.Registry),
		sessions: make(map[*session]struct{}),
	}
}

// ServeHTTP upgrades the request to a WebSocket and runs the session until
// it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "relay is shutting down; connect to another relay or retry shortly", http.StatusServiceUnavailable)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with the HTTP error
	}
	ss := newSession(s, conn, r.RemoteAddr)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ss.closeWith(protocol.CloseGoingAway, "relay is shutting down")
		ss.run()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.m.sessions.Inc()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		s.m.sessions.Dec()
		s.wg.Done()
	}()
	ss.run()
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
