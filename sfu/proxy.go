package sfu

import (
	"fmt"
	"slices"
	"time"
)

// Proxy participants: the listeners a cluster's edges serve, shown in the
// room on its owner so that its hosts see, invite and kick them as if
// they were here (Presence: hosts see every audience member).
//
// A proxy is an audience member of the owner's room with no connection
// and no media: the edge serves its media. It belongs to one link (the
// hidden participant of its edge, AddProxy) and leaves with it. Hosts get
// it in joined.participants and get participant_joined/left for it;
// nobody else does, as for any audience member. It is in the room's
// audience count (a link that reports its listeners one by one no longer
// reports a count, SetListeners) but in no gauge of this relay: the edge
// counts its listener.
//
// Its sink gets only what the edge must act on: KickedEvent (a host kicked
// it), MicInvitedEvent (a host invited it; Ticket set), MicRejectedEvent
// (the invitation ended here: timeout, or the room's last host left).
//
// An invitation crosses relays with a ticket: the invited listener
// accepts on its edge, which moves it to the owner (MicElsewhereError with
// Then mic_accept and the ticket); joined there as audience, it sends
// mic_accept with the ticket (AcceptTicket) and becomes a guest. The
// ticket outlives the proxy (which leaves as the listener leaves its
// edge) until the invitation's timeout.

// ProxyParams describe a listener another relay serves (AddProxy).
type ProxyParams struct {
	// ID is the listener's id on its relay. The proxy keeps it when no
	// participant here has it; otherwise it gets an id of this relay's
	// (clients of the owner then know it by that id, and its sink by
	// its own: ProxyID and ID).
	ID   string
	Name string
	// Sink gets the events the serving relay must act on (see above).
	Sink Sink
}

// inviteTicket is an invitation of a proxy, kept until it is accepted
// through AcceptTicket, ends, or expires.
type inviteTicket struct {
	by      string    // the inviting host
	expires time.Time // the invitation's timeout
}

// AddProxy adds a proxy audience member (pp) for link p, a hidden
// participant: hosts get participant_joined, and the audience count
// grows. ErrForbidden if p is not a link, ErrClosed once p has left,
// ErrBadRequest without an id.
func (p *Participant) AddProxy(pp ProxyParams) (*Participant, error) {
	if !p.hidden {
		return nil, fmt.Errorf("%w: only a relay link adds proxy participants", ErrForbidden)
	}
	if pp.ID == "" || pp.Sink == nil {
		return nil, fmt.Errorf("%w: a proxy participant needs an id and a sink", ErrBadRequest)
	}
	r := p.room
	q := &Participant{
		id:      pp.ID,
		name:    pp.Name,
		role:    RoleAudience,
		listen:  ListenTracks, // never listens here: neither a mix listener nor in a gauge
		room:    r,
		sfu:     p.sfu,
		sink:    newSinkSwitch(pp.Sink),
		via:     p,
		proxyID: pp.ID,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return nil, fmt.Errorf("%w: the link has left room %s", ErrClosed, r.name)
	}
	if r.findLocked(q.id) != nil || r.findRemoteLocked(q.id) != nil {
		q.id = newID("p_") // two relays gave out the same id: this room's clients need one per participant
	}
	q.log = p.sfu.log.With("room", r.name, "participant", q.id, "proxy", pp.ID)
	q.subGate = &candidateGate{pc: Sub, sink: q.sink, log: q.log}
	q.pubGate = &candidateGate{pc: Pub, sink: q.sink, log: q.log}
	r.participants = append(r.participants, q)
	r.audience++
	r.proxies++
	for _, h := range r.participants {
		if h != q && visible(q, h) {
			h.sink.Send(ParticipantJoinedEvent{Participant: q.info()})
		}
	}
	r.audienceChangedLocked()
	return q, nil
}

// Lost removes a proxy participant with reason timeout: the relay that
// served it is gone. Anyone else is left as it is.
func (p *Participant) Lost() {
	if p.via != nil {
		p.remove(ReasonTimeout)
	}
}

// ProxyID is a proxy participant's id on the relay that serves it (ID is
// its id in this room; they differ after a collision); "" for others.
func (p *Participant) ProxyID() string { return p.proxyID }

// dropProxiesLocked removes link's proxies (the link left) and tells the
// hosts, with reason.
func (r *Room) dropProxiesLocked(link *Participant, reason Reason) {
	if r.proxies == 0 {
		return
	}
	var gone []*Participant
	r.participants = slices.DeleteFunc(r.participants, func(q *Participant) bool {
		if q.via != link {
			return false
		}
		gone = append(gone, q)
		return true
	})
	for _, q := range gone {
		q.gone = true
		if q.micTimer != nil {
			q.micTimer.Stop()
		}
		r.audience--
		r.proxies--
		if reason == ReasonShutdown {
			continue
		}
		for _, h := range r.participants {
			if visible(q, h) {
				h.sink.Send(ParticipantLeftEvent{ID: q.id, Reason: reason})
			}
		}
	}
}

// inviteProxyLocked records q's invitation (q a proxy) under a new ticket,
// which its MicInvitedEvent carries to the relay serving it.
func (r *Room) inviteProxyLocked(q *Participant, by string) string {
	now := time.Now()
	if r.tickets == nil {
		r.tickets = make(map[string]inviteTicket)
	}
	for t, it := range r.tickets {
		if now.After(it.expires) {
			delete(r.tickets, t)
		}
	}
	t := newResumeToken()
	r.tickets[t] = inviteTicket{by: by, expires: now.Add(r.sfu.cfg.MicTimeout)}
	q.ticket = t
	return t
}

// AcceptTicket: an audience member accepts an invitation it got as a
// listener of another relay (a cluster edge), which moved it here with
// the invitation's ticket (MicElsewhereError.Ticket). It becomes a guest,
// if a seat is free, as with MicAccept. ErrNotFound when the ticket names
// no pending invitation (it timed out, or the room's last host left).
func (p *Participant) AcceptTicket(ticket string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := p.liveLocked(); err != nil {
		return err
	}
	if p.role != RoleAudience {
		return fmt.Errorf("%w: you are already on the mic", ErrForbidden)
	}
	it, ok := r.tickets[ticket]
	if !ok || time.Now().After(it.expires) {
		delete(r.tickets, ticket)
		return fmt.Errorf("%w: no pending invitation with this ticket (it timed out, or the room's last host left); ask for the mic instead", ErrNotFound)
	}
	if r.seats >= r.sfu.cfg.Seats {
		return fmt.Errorf("%w: every seat is taken; take a guest off the mic first", ErrRoomFull)
	}
	delete(r.tickets, ticket)
	for _, q := range r.participants { // the proxy, if its edge has not yet said it left
		if q.ticket == ticket {
			q.ticket = ""
			r.setMicLocked(q, micNone)
		}
	}
	r.setMicLocked(p, micNone)
	r.setRoleLocked(p, RoleGuest)
	r.acceptEarlyLocked(p)
	return nil
}

// LocalInvited: a host of the room's owner invited listener id of this
// edge room (its proxy there): the listener gets mic_invited as on the
// owner, and its mic_accept moves it there with ticket. ErrNotFound if it
// is not here (it left), ErrConflict if it already has an invitation.
func (r *Room) LocalInvited(id, by, ticket string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.findLocked(id)
	if q == nil || q.hidden {
		return fmt.Errorf("%w: no listener %s here", ErrNotFound, id)
	}
	if q.role != RoleAudience || q.mic != micNone {
		return fmt.Errorf("%w: %s is already invited", ErrConflict, id)
	}
	r.setMicLocked(q, micInvited)
	q.ticket = ticket
	q.sink.Send(MicInvitedEvent{By: by, Elsewhere: true})
	return nil
}

// LocalInvitationEnded: the owner ended listener id's invitation (reason
// timeout, or no_host): it gets mic_rejected as on the owner. Nothing
// happens if it has no invitation from the owner (any more).
func (r *Room) LocalInvitationEnded(id string, reason MicReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.findLocked(id)
	if q == nil || q.ticket == "" || q.mic != micInvited {
		return
	}
	r.setMicLocked(q, micNone)
	q.sink.Send(MicRejectedEvent{Participant: q.id, Reason: reason, PubClosed: r.endEarlyLocked(q)})
}

// LocalKick: a host of the room's owner kicked listener id of this edge
// room: it is expelled as a kick here does it (kicked, then its
// connection closed; ReasonKicked). false if it is not here.
func (r *Room) LocalKick(id, reason string) bool {
	r.mu.Lock()
	q := r.findLocked(id)
	if q == nil || q.hidden {
		r.mu.Unlock()
		return false
	}
	r.expelLocked(q, reason)
	return true
}

// tellEdgeLocked gives the edge room's hooks a change of its listeners
// (audience members; an edge room has no others but links).
func (r *Room) tellEdgeLocked(p *Participant, kind ListenerChangeKind) {
	h := r.edge.Load()
	if h == nil || h.OnListener == nil || p.hidden || p.role != RoleAudience {
		return
	}
	h.OnListener(ListenerChange{Kind: kind, Info: p.info()})
}

// ListenerChangeKind says what changed in ListenerChange.
type ListenerChangeKind int

// Kinds of ListenerChange.
const (
	ListenerJoined   ListenerChangeKind = iota // joined the edge room
	ListenerLeft                               // left it (for whatever reason)
	ListenerDeclined                           // declined the owner's invitation (mic_reject)
)

// ListenerChange is one change of an edge room's listeners, for its
// owner (EdgeHooks.OnListener).
type ListenerChange struct {
	Kind ListenerChangeKind
	Info Info
}
