package sfu

import (
	"fmt"
	"slices"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// Edge rooms and links: what a cluster (package cluster) needs of the room
// layer to serve a room's audience on relays other than its owner.
//
// On the owner, each edge is one hidden participant of the room (a link,
// JoinParams.Hidden): it listens to every track like an audience member
// with separate tracks, and gets the events an audience member gets, but
// nobody sees it and it is not in the audience count; its edge's
// listeners are, through SetListeners.
//
// On an edge, the room is an edge room (JoinEdgeRoom): its participants
// are the edge's listeners, its publishers are remote publishers
// (remote.go) whose tracks the link feeds, and the router (the directory)
// is never told about it, since another relay owns the room. Its audience
// count is the owner's total (SetAudienceElsewhere).

// EdgeHooks are how an edge room tells its cluster edge what happens.
// Each is called with the room's lock held (OnEnd with the SFU's lock
// too): they must not block or call back into the sfu.
type EdgeHooks struct {
	// OwnerURL is the owning relay's URL, named in errors (a mic request
	// on an edge is refused: the room's hosts are on the owner).
	OwnerURL string
	// OnAudience gets the room's own audience count (this relay's
	// listeners) whenever it may have changed.
	OnAudience func(local int)
	// OnListener gets each listener's join and leave, and a listener's
	// decline of an invitation from the owner (proxy.go), in order: the
	// owner shows its hosts a proxy for each.
	OnListener func(ListenerChange)
	// OnEnd: the edge room's last participant left and the room is gone,
	// or it became this relay's own room (a join routed here as its
	// owner, after the owner died): either way its link must close
	// without moving anyone.
	OnEnd func(r *Room)
}

// JoinEdgeRoom joins jp's room on this relay without asking the router:
// the caller (a cluster edge, Config.Edge) has been told another relay
// owns it. A room it creates is an edge room with hooks h (a join that
// finds the room existing joins it as it is). created: this join made
// the room, and the caller feeds it (Room.AddRemote).
func (s *SFU) JoinEdgeRoom(jp JoinParams, h EdgeHooks) (p *Participant, created bool, err error) {
	if err := validListen(jp.Listen); err != nil {
		return nil, false, err
	}
	if s.isClosing() {
		return nil, false, ErrShuttingDown
	}
	if jp.Role.publishes() {
		return nil, false, fmt.Errorf("%w: an edge serves listeners only; a %s joins the room's owner", ErrForbidden, jp.Role)
	}
	return s.joinHere(jp, &h)
}

// Room is the room p is in.
func (p *Participant) Room() *Room { return p.room }

// SetListeners sets how many audience members a hidden participant (a
// link) stands for: its edge's listeners, counted in the room's audience.
// A participant that is not hidden is left as it is.
func (p *Participant) SetListeners(n int) {
	if !p.hidden {
		return
	}
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return
	}
	if r.audienceElsewhere == nil {
		r.audienceElsewhere = make(map[*Participant]int)
	}
	r.audienceElsewhere[p] = max(n, 0)
	r.audienceChangedLocked()
}

// SetAudienceElsewhere sets how many audience members the room has on
// other relays (an edge room: the owner's total less this relay's own),
// added to the count its clients see.
func (r *Room) SetAudienceElsewhere(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return
	}
	r.audienceOffset = max(n, 0)
	r.audienceChangedLocked()
}

// audienceCountLocked is the audience count clients see: this relay's
// audience members, and those elsewhere.
func (r *Room) audienceCountLocked() int {
	n := r.audience + r.audienceOffset
	for _, k := range r.audienceElsewhere {
		n += k
	}
	return n
}

// forgetListenersLocked drops the listeners a leaving link stood for.
func (r *Room) forgetListenersLocked(p *Participant) {
	if p.hidden {
		delete(r.audienceElsewhere, p)
	}
}

// NewLinkConnection is a peer connection for an edge's end of a link: it
// receives as a publisher's pub connection does (the same codecs, NACKs
// toward the sender), on a UDP port of its own (see newAPI).
func (s *SFU) NewLinkConnection() (*webrtc.PeerConnection, error) {
	cfg, err := s.connConfig()
	if err != nil {
		return nil, err
	}
	return s.api.link.NewPeerConnection(cfg)
}

// NewLinkTrack is the track an edge makes of one of its link's tracks:
// id and streamID are the owner's (track id, publisher id), so that the
// edge's clients see the same ids. Its caller feeds it (ReadLoop), and
// the room's remote publisher shows it (Remote.Publish).
func (s *SFU) NewLinkTrack(id, streamID string, receiver *webrtc.RTPReceiver) *media.UpTrack {
	return s.newUpTrack(id, streamID, receiver, nil)
}

// DrainRTCP reads a link track's RTCP until its receiver stops, as the
// relay does for publishers, so that pion's interceptors see it.
func DrainRTCP(r *webrtc.RTPReceiver) { drainRTCP(r, nil) }

// Detach takes an edge room out of the relay's rooms at once, before its
// listeners are gone: its link failed, and the listeners, told to join
// again, must find a fresh room (the edge of a new link, or this relay's
// own room if it takes the room over). OnEnd is not called for it.
func (r *Room) Detach() {
	s := r.sfu
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
		s.cfg.Metrics.Rooms.Dec()
	}
}

// promoteLocked makes edge room r this relay's own room: the router has
// just routed a join of it here as its owner (the owner died and this
// relay took the room over). Its listeners stay; its link ends (OnEnd),
// taking the old owner's publishers away; the audience elsewhere is
// forgotten until links to this relay report theirs. Called with s.mu
// held.
func (s *SFU) promoteLocked(r *Room, h *EdgeHooks) {
	r.edge.Store(nil)
	if h.OnEnd != nil {
		h.OnEnd(r)
	}
	if s.cfg.Router != nil {
		s.cfg.Router.RoomCreated(r.name)
	}
	go func() { // r.mu comes before s.mu
		r.SetAudienceElsewhere(0)
		r.mu.Lock()
		r.startSpeakersLocked() // the room's own tracks' levels from now on
		r.mu.Unlock()
	}()
}

// SetSpeakers shows an edge room's clients the owner's speaker list. An
// edge room does not make its own: its tracks come over a link, and the
// relay forwards packets without their header extensions, so it has no
// audio levels.
func (r *Room) SetSpeakers(list []Speaker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone || r.edge.Load() == nil {
		return
	}
	r.sfu.cfg.Metrics.Speaking.Add(float64(len(list) - len(r.speakers)))
	r.speakers = list
	r.sendAllLocked(SpeakersEvent{Speakers: slices.Clone(list)})
}
