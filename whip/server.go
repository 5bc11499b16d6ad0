package whip

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"sync"

	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of session: the values of relay_http_sessions' kind label.
const (
	KindWHIP = "whip"
	KindWHEP = "whep"
)

// Params are New's dependencies.
type Params struct {
	// Config is the signaling configuration: the same token secret,
	// allowed origins, SDP size and per-address limits apply.
	Config   signaling.Config
	SFU      *sfu.SFU
	Registry prometheus.Registerer // nil: metrics not registered
	Logger   *slog.Logger          // nil: slog.Default()
}

// Server holds the WHIP and WHEP sessions.
type Server struct {
	cfg     signaling.Config
	sfu     *sfu.SFU
	log     *slog.Logger
	origin  func(*http.Request) bool
	limits  *addrLimits
	gauge   *prometheus.GaugeVec // open sessions by kind
	refused *prometheus.CounterVec

	mu       sync.Mutex
	sessions map[string]*session // by id; guarded by mu
	draining bool                // guarded by mu: no new sessions
}

// New makes the server; mount Handler at /whip/ and /whep/.
func New(p Params) *Server {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg := p.Config
	if cfg.MaxSDPSize <= 0 {
		cfg.MaxSDPSize = signaling.DefaultMaxSDPSize
	}
	s := &Server{
		cfg:    cfg,
		sfu:    p.SFU,
		log:    log,
		origin: signaling.OriginChecker(cfg.AllowedOrigins),
		limits: newAddrLimits(cfg),
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relay_http_sessions",
			Help: "Open WHIP (publishing) and WHEP (playing) sessions, by kind; WebSocket sessions are relay_signaling_sessions.",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_http_sessions_refused_total",
			Help: "WHIP and WHEP session requests refused, by kind and HTTP status.",
		}, []string{"kind", "status"}),
		sessions: make(map[string]*session),
	}
	s.gauge.WithLabelValues(KindWHIP)
	s.gauge.WithLabelValues(KindWHEP)
	if p.Registry != nil {
		p.Registry.MustRegister(s.gauge, s.refused)
	}
	return s
}

// Handler serves the WHIP and WHEP endpoints and their sessions.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, kind := range []string{KindWHIP, KindWHEP} {
		mux.HandleFunc("POST /"+kind+"/{room}", func(w http.ResponseWriter, r *http.Request) { s.post(w, r, kind) })
		mux.HandleFunc("PATCH /"+kind+"/{room}/{session}", func(w http.ResponseWriter, r *http.Request) { s.patch(w, r, kind) })
		mux.HandleFunc("DELETE /"+kind+"/{room}/{session}", func(w http.ResponseWriter, r *http.Request) { s.delete(w, r, kind) })
		mux.HandleFunc("OPTIONS /"+kind+"/{room}", s.options)
		mux.HandleFunc("OPTIONS /"+kind+"/{room}/{session}", s.options)
	}
	return s.cors(mux)
}

// Drain refuses new sessions (503). Sessions already open keep playing or
// publishing until the relay shuts down: neither protocol can tell a
// client to move, and a listener keeps hearing the room meanwhile.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
}

// add registers a new session under a fresh id; false while draining.
func (s *Server) add(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	ss.id = newSessionID()
	s.sessions[ss.id] = ss
	s.gauge.WithLabelValues(ss.kind).Inc()
	return true
}

// forget drops a session and its address's count; only the first call
// for a session does anything.
func (s *Server) forget(ss *session) {
	s.mu.Lock()
	_, ok := s.sessions[ss.id]
	delete(s.sessions, ss.id)
	s.mu.Unlock()
	if ok {
		s.gauge.WithLabelValues(ss.kind).Dec()
		s.limits.release(ss.addr)
	}
}

// lookup finds the session a PATCH or DELETE names.
func (s *Server) lookup(r *http.Request, kind string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[r.PathValue("session")]
	if ss == nil || ss.kind != kind || ss.room != r.PathValue("room") || ss.participant() == nil {
		return nil // a session still joining has not told its URL to anyone
	}
	return ss
}

// newSessionID is an unguessable id: it is all that authorises a PATCH
// or DELETE, as the RFC's session URL is.
func newSessionID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
