package whip

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
	"github.com/lianmai/relay/signaling"
)

// Content types of the bodies.
const (
	typeSDP  = "application/sdp"
	typeFrag = "application/trickle-ice-sdpfrag"
)

// post starts a session: 201 with the answer and the session's Location.
func (s *Server) post(w http.ResponseWriter, r *http.Request, kind string) {
	ss, answer, herr := s.start(r, kind)
	if herr != nil {
		s.refused.WithLabelValues(kind, strconv.Itoa(herr.status)).Inc()
		refuse(w, herr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", typeSDP)
	h.Set("Location", "/"+kind+"/"+ss.room+"/"+ss.id)
	if s.cfg.ICEServers != nil {
		addICELinks(h, s.cfg.ICEServers(ss.participant().ID()))
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// start checks the request, admits it and joins its participant.
func (s *Server) start(r *http.Request, kind string) (*session, string, *httpError) {
	if s.isDraining() {
		return nil, "", errDraining
	}
	room := r.PathValue("room")
	if !protocol.ValidRoom(room) {
		return nil, "", fail(http.StatusBadRequest, "the room name must be 1 to 64 ASCII letters, digits, '-' or '_'")
	}
	body, herr := readBody(r, typeSDP, s.cfg.MaxSDPSize)
	if herr != nil {
		return nil, "", herr
	}
	info, herr := readOffer(body)
	if herr != nil {
		return nil, "", herr
	}
	listen := sfu.ListenMix
	switch {
	case kind == KindWHIP && !info.sendsAudio:
		return nil, "", fail(http.StatusBadRequest, "the offer sends no audio: WHIP publishes an audio m-section (sendonly or sendrecv, Opus)")
	case kind == KindWHEP && !info.receivesAudio:
		return nil, "", fail(http.StatusBadRequest, "the offer receives no audio: WHEP plays into an audio m-section (recvonly, Opus)")
	case kind == KindWHEP:
		switch l := r.URL.Query().Get("listen"); l {
		case "", string(sfu.ListenMix):
		case string(sfu.ListenTracks):
			listen = sfu.ListenTracks
		default:
			return nil, "", fail(http.StatusBadRequest, fmt.Sprintf("listen must be mix (the default) or tracks, not %q", l))
		}
	}
	name, role, herr := s.admit(r, kind, room)
	if herr != nil {
		return nil, "", herr
	}
	addr := signaling.ClientAddr(r, s.cfg.TrustedProxies)
	if herr, wait := s.limits.admit(addr, time.Now()); herr != nil {
		herr.retry = wait
		return nil, "", herr
	}
	ss := &session{srv: s, kind: kind, room: room, addr: addr, pc: sfu.Pub, ufrag: info.ufrag}
	if kind == KindWHEP {
		ss.pc = sfu.Sub
	}
	if !s.add(ss) {
		s.limits.release(addr)
		return nil, "", errDraining
	}
	answer, err := ss.join(name, role, listen, body)
	if err != nil {
		s.forget(ss)
		herr := statusOf(err)
		if herr.status == http.StatusInternalServerError {
			s.log.Error("session failed to start", "kind", kind, "room", room, "err", err)
		}
		return nil, "", herr
	}
	return ss, answer, nil
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// admit decides the participant's name and role. Without a token secret
// the query says (?name=, and for WHIP ?role=host or guest; host by
// default). With one, the bearer token decides as it does for join:
// its room must be the URL's, its name is the participant's, and for
// WHIP its role must publish (host or guest; ?role=guest may lower a
// host's). A WHEP player is always in the audience.
func (s *Server) admit(r *http.Request, kind, room string) (string, sfu.Role, *httpError) {
	q := r.URL.Query()
	role := sfu.RoleAudience
	if kind == KindWHIP {
		role = sfu.RoleHost
		switch asked := q.Get("role"); asked {
		case "", string(sfu.RoleHost):
		case string(sfu.RoleGuest):
			role = sfu.RoleGuest
		default:
			return "", "", fail(http.StatusBadRequest, fmt.Sprintf("role must be host or guest to publish, not %q", asked))
		}
	}
	if len(s.cfg.AuthSecret) == 0 {
		name := q.Get("name")
		if name == "" {
			name = map[string]string{KindWHIP: "WHIP publisher", KindWHEP: "WHEP player"}[kind]
		}
		if !protocol.ValidName(name) {
			return "", "", fail(http.StatusBadRequest, "name must be 1 to 64 characters without control characters")
		}
		return name, role, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = ""
	}
	c, err := auth.Verify(s.cfg.AuthSecret, strings.TrimSpace(token), time.Now())
	if err != nil {
		if errors.Is(err, auth.ErrMissing) {
			err = errors.New("this relay requires a join token: send Authorization: Bearer <token> (relay token, or your app's backend, makes one)")
		}
		return "", "", &httpError{status: http.StatusUnauthorized, msg: err.Error()}
	}
	if !protocol.ValidRole(c.Role) || !protocol.ValidName(c.Name) {
		return "", "", fail(http.StatusUnauthorized, "the token's role or name is not valid")
	}
	if c.Room != room {
		return "", "", fail(http.StatusForbidden, fmt.Sprintf("the token is for room %q, not %q", c.Room, room))
	}
	if kind == KindWHIP {
		granted := sfu.Role(c.Role)
		switch {
		case granted == sfu.RoleAudience:
			return "", "", fail(http.StatusForbidden, "the token allows audience only; publishing needs a host or guest token")
		case q.Get("role") == "":
			role = granted
		case role == sfu.RoleHost && granted == sfu.RoleGuest:
			return "", "", fail(http.StatusForbidden, "the token allows at most guest, not host")
		}
	}
	return c.Name, role, nil
}

// patch trickles the client's ICE candidates (RFC 8840 fragments): 204.
// An ICE restart (new credentials) is refused with 422, as RFC 9725 asks
// of a server that trickles but does not restart.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, kind string) {
	ss := s.lookup(r, kind)
	if ss == nil {
		refuse(w, errNoSession)
		return
	}
	body, herr := readBody(r, typeFrag, s.cfg.MaxSDPSize)
	if herr != nil {
		refuse(w, herr)
		return
	}
	frag, herr := parseFrag(body)
	if herr != nil {
		refuse(w, herr)
		return
	}
	if frag.ufrag != "" && frag.ufrag != ss.ufrag {
		refuse(w, fail(http.StatusUnprocessableEntity, "ICE restarts are not supported: end this session with DELETE and start a new one with POST"))
		return
	}
	p := ss.participant()
	for _, c := range frag.candidates {
		c.UsernameFragment = &ss.ufrag
		if err := p.AddCandidate(ss, ss.pc, &c); err != nil {
			refuse(w, statusOf(err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// delete ends the session: the participant leaves (reason left).
func (s *Server) delete(w http.ResponseWriter, r *http.Request, kind string) {
	ss := s.lookup(r, kind)
	if ss == nil {
		refuse(w, errNoSession)
		return
	}
	ss.participant().Leave()
	s.forget(ss)
	w.WriteHeader(http.StatusOK)
}

var errNoSession = &httpError{status: http.StatusNotFound, msg: "no such session: it has ended, or never existed; start one with POST"}

// readBody reads a request body of content type want, at most max bytes.
func readBody(r *http.Request, want string, max int) (string, *httpError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", fail(http.StatusBadRequest, "Content-Type is missing; send "+want)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != want {
		return "", fail(http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not accepted here; send %s", ct, want))
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, int64(max)))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return "", fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes, the most accepted", max))
	case err != nil:
		return "", fail(http.StatusBadRequest, "cannot read the body: "+err.Error())
	case len(b) == 0:
		return "", fail(http.StatusBadRequest, "the body is empty; send "+want)
	}
	return string(b), nil
}

// refuse answers with err's status and text.
func refuse(w http.ResponseWriter, err *httpError) {
	if err.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="relay"`)
	}
	if err.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, err.retry.Round(time.Second)/time.Second))))
	}
	http.Error(w, err.msg, err.status)
}

// options answers a CORS preflight (the cors wrapper adds the origin).
func (s *Server) options(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Accept-Post", typeSDP)
	h.Set("Accept-Patch", typeFrag)
	w.WriteHeader(http.StatusNoContent)
}

// cors lets browser pages of the relay's allowed origins (signaling's
// rules: its own, localhost and -allowed-origins) use the endpoints, and
// refuses others with 403. Requests without an Origin are not from a
// page and pass.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if !s.origin(r) {
				http.Error(w, fmt.Sprintf("origin %q may not use this relay: serve the page from the relay or localhost, or add the origin to -allowed-origins", origin), http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Location, Link, Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}
