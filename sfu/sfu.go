package sfu

import (
	"github.com/lianmai/relay/media"

	"fmt"
	"log/slog"
	"sync"
	"time"
)

// SFU holds the relay's rooms.
type SFU struct {
	cfg      Config
	api      apis
	feedback *media.Feedback // the relay's RTCP toward publishers: one loop for all (media/feedback.go)
	cert     dtlsCert        // every peer connection's DTLS certificate (certs.go)
	log      *slog.Logger

	mu        sync.Mutex
	rooms     map[string]*Room
	resumable map[string]*Participant // by resume token; every participant not yet removed
	closing   bool                    // draining or closed: no new joins or resumes

	// pkMu serializes the control of cross-room links (pk.go); taken
	// before any Room.mu, and never on a packet path.
	pkMu sync.Mutex
	pkWG sync.WaitGroup // links' goroutines (mirrors, ends handed off by rooms); Close waits for them
}

// New creates the SFU. It owns cfg.ICE.UDPMux from now on.
func New(cfg Config) (*SFU, error) {
	cfg.setDefaults()
	if err := validListen(cfg.AudienceListen); err != nil {
		return nil, fmt.Errorf("audience listen: %w", err)
	}
	if cfg.AudienceListen == ListenMix && cfg.NewMixer == nil {
		cfg.Logger.Warn("the audience mix is unavailable in this relay (it has no mixer): -audience-listen mix falls back to tracks, and joins asking for the mix get separate tracks")
		cfg.AudienceListen = ListenTracks
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	api, err := newAPI(cfg.ICE, !cfg.DisableDirectSend)
	if api.direct != nil {
		api.direct.takeover = !cfg.DisableTakeover
	}
	if err != nil {
		return nil, err
	}
	return &SFU{cfg: cfg, api: api, feedback: media.NewFeedback(NACKInterval, ReportInterval, cfg.Metrics.Media), log: cfg.Logger, rooms: make(map[string]*Room), resumable: make(map[string]*Participant)}, nil
}

// JoinParams describes a join.
type JoinParams struct {
	Room, Name string
	Role       Role
	Sink       Sink
	RequestID  string    // the join message's id, echoed in JoinedEvent
	ReceivedAt time.Time // when the join arrived; zero for now
	// Listen is what the participant receives while in the audience:
	// ListenMix, ListenTracks, or "" for the relay's default. Without a
	// mixer (Config.NewMixer nil) it is always tracks.
	Listen Listen
	// Sub says who offers the sub connection: SubOffered (the default,
	// the protocol's sub), or for clients over HTTP that cannot take the
	// relay's offers (WHIP and WHEP; httpsub.go) SubNone or SubAnswered
	// (SubOffer is the client's offer).
	Sub      SubMode
	SubOffer string
	// FullAnswers makes every answer the relay sends wait for its ICE
	// candidates and carry them all: for clients it cannot trickle to.
	FullAnswers bool
	// Hidden makes the participant invisible (edgeroom.go): a relay-to-
	// relay link of a cluster edge, which listens for the edge's own
	// listeners. It is in no joined list and no participant event, and
	// not in the audience count (SetListeners adds its edge's).
	Hidden bool
	// OwnOnly (with Hidden): the participant hears the room's own
	// publishers only, not the remote publishers shown in it: the owner's
	// end of a cross-node PK link, which must not send a linked room's
	// tracks back to where they came from.
	OwnOnly bool
}

// Join adds a participant to a room (creating the room if needed). The
// sink gets JoinedEvent, then the first sub offer, before Join returns
// (unless a resume with JoinedEvent's token took the participant over
// meanwhile: then the new session gets the offer, of a new connection).
func (s *SFU) Join(jp JoinParams) (*Participant, error) {
	if jp.ReceivedAt.IsZero() {
		jp.ReceivedAt = time.Now()
	}
	if err := validListen(jp.Listen); err != nil {
		return nil, err
	}
	if s.isClosing() {
		return nil, ErrShuttingDown
	}
	if p, err := s.route(jp); p != nil || err != nil {
		return p, err
	}
	p, _, err := s.joinHere(jp, nil)
	return p, err
}

// joinHere joins jp's room on this relay, creating it if needed (an edge
// room with hooks when edge is set, edgeroom.go). created: this join
// made the room.
func (s *SFU) joinHere(jp JoinParams, edge *EdgeHooks) (p *Participant, created bool, err error) {
	listen := jp.Listen
	if listen == "" || s.cfg.NewMixer == nil {
		listen = s.cfg.AudienceListen
	}
	p = &Participant{
		id:          newID("p_"),
		hidden:      jp.Hidden,
		ownOnly:     jp.Hidden && jp.OwnOnly,
		name:        jp.Name,
		role:        jp.Role,
		listen:      listen,
		sfu:         s,
		sink:        newSinkSwitch(jp.Sink),
		joinedAt:    jp.ReceivedAt,
		joinReqID:   jp.RequestID,
		down:        make(map[*media.UpTrack]subTrack),
		needOffer:   jp.Sub == SubOffered,
		offersSub:   jp.Sub == SubOffered,
		fullAnswers: jp.FullAnswers,
	}
	p.log = s.log.With("room", jp.Room, "participant", p.id)
	p.resumeToken = newResumeToken()
	p.subGate = &candidateGate{pc: Sub, sink: p.sink, log: p.log}
	p.pubGate = &candidateGate{pc: Pub, sink: p.sink, log: p.log}
	sub, answer, err := p.openSub(jp)
	if err != nil {
		return nil, false, err
	}
	p.subPC = sub

	for {
		r, made, err := s.room(jp.Room, edge)
		if err != nil {
			closeSub(sub)
			return nil, false, err
		}
		p.room = r
		ok, err := r.join(p)
		if err != nil {
			closeSub(sub)
			return nil, false, fmt.Errorf("join room %s: %w", jp.Room, err)
		}
		if ok {
			created = made
			break
		}
	}
	p.sendSubAnswer(answer)
	p.runSync()
	return p, created, nil
}

// room finds or creates the named room; edge makes a room it creates an
// edge room (edgeroom.go), which the router is not told about. created:
// this call made it.
func (s *SFU) room(name string, edge *EdgeHooks) (r *Room, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, false, ErrShuttingDown
	}
	r = s.rooms[name]
	if r == nil {
		if len(s.rooms) >= s.cfg.MaxRooms {
			return nil, false, fmt.Errorf("%w: the relay has its limit of %d rooms", ErrRoomFull, s.cfg.MaxRooms)
		}
		r = &Room{name: name, sfu: s}
		r.edge.Store(edge)
		s.rooms[name] = r
		s.cfg.Metrics.Rooms.Inc()
		created = true
		if s.cfg.Router != nil && edge == nil {
			s.cfg.Router.RoomCreated(name)
		}
	} else if h := r.edge.Load(); h != nil && edge == nil {
		s.promoteLocked(r, h)
	}
	return r, created, nil
}

// removeRoom forgets r; called with r.mu held (lock order: room, then sfu).
func (s *SFU) removeRoom(r *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
		s.cfg.Metrics.Rooms.Dec()
		switch h := r.edge.Load(); {
		case h != nil:
			if h.OnEnd != nil {
				h.OnEnd(r)
			}
		case s.cfg.Router != nil:
			s.cfg.Router.RoomRemoved(r.name)
		}
	}
}

// isClosing reports whether the relay drains or has closed.
func (s *SFU) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Drain refuses new joins and resumes (ErrShuttingDown) and leaves every
// participant as it is, until Close.
func (s *SFU) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
}

// Close refuses new joins, removes every participant (their sinks are
// closed with ReasonShutdown) and releases the UDP port.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closing = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range rooms {
		for _, p := range r.snapshot() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.remove(ReasonShutdown)
			}()
		}
	}
	wg.Wait()
	s.pkWG.Wait() // the emptied rooms' links end
	if s.api.direct != nil {
		s.api.direct.reports.Close()
	}
	if s.cfg.ICE.UDPMux != nil {
		return s.cfg.ICE.UDPMux.Close()
	}
	return nil
}
