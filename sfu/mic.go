package sfu

import (
	"fmt"
	"time"
)

// micState is where an audience member stands in the mic workflow. Hosts
// and guests are always micNone: being on the mic is their role.
type micState int

const (
	micNone      micState = iota // an audience member with nothing pending
	micRequested                 // asked for the mic; waits for a host
	micInvited                   // invited by a host; waits for its own answer
)

// MicRequest: an audience member asks for the mic; every host is told.
func (p *Participant) MicRequest() error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := p.liveLocked(); err != nil {
		return err
	}
	if p.role != RoleAudience {
		return fmt.Errorf("%w: %s is already on the mic", ErrForbidden, p.role)
	}
	switch p.mic {
	case micRequested:
		return fmt.Errorf("%w: your request is already pending", ErrConflict)
	case micInvited:
		return fmt.Errorf("%w: a host has invited you; send mic_accept", ErrConflict)
	}
	if h := r.edge.Load(); h != nil {
		// Hosts and guests are served by the room's owner, and a request
		// is the step before the mic: the requester moves there first.
		return &MicElsewhereError{Room: r.name, URL: h.OwnerURL}
	}
	if !r.hasHostLocked() {
		p.sink.Send(MicRejectedEvent{Participant: p.id, Reason: MicNoHost})
		return nil
	}
	r.setMicLocked(p, micRequested)
	r.sendHostsLocked(MicRequestedEvent{Participant: p.id})
	return nil
}

// MicInvite: a host invites an audience member to the mic.
func (p *Participant) MicInvite(target string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	q, err := r.targetLocked(p, target, RoleHost)
	if err != nil {
		return err
	}
	if q.role != RoleAudience {
		return fmt.Errorf("%w: %s is already on the mic", ErrConflict, q.id)
	}
	switch q.mic {
	case micRequested:
		return fmt.Errorf("%w: %s has asked for the mic; accept the request instead", ErrConflict, q.id)
	case micInvited:
		return fmt.Errorf("%w: %s is already invited", ErrConflict, q.id)
	}
	r.setMicLocked(q, micInvited)
	ev := MicInvitedEvent{By: p.id}
	if q.via != nil { // a proxy: its edge delivers the invitation (proxy.go)
		ev.Ticket = r.inviteProxyLocked(q, p.id)
	}
	q.sink.Send(ev)
	return nil
}

// MicAccept: a host accepts target's request, or an audience member
// (target ignored) accepts its invitation. Either way the audience member
// becomes a guest, if a seat is free.
func (p *Participant) MicAccept(target string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	q, err := r.answerTargetLocked(p, target)
	if err != nil {
		return err
	}
	if q == p && q.mic != micInvited {
		return fmt.Errorf("%w: you have no pending invitation; a host accepts your request", ErrNotFound)
	}
	if h := r.edge.Load(); h != nil && q.ticket != "" {
		// Invited by a host of the room's owner (proxy.go): guests are
		// served there, so the listener moves there and accepts there.
		return &MicElsewhereError{Room: r.name, URL: h.OwnerURL, Ticket: q.ticket}
	}
	if r.seats >= r.sfu.cfg.Seats {
		return fmt.Errorf("%w: every seat is taken; take a guest off the mic first", ErrRoomFull)
	}
	r.setMicLocked(q, micNone)
	r.setRoleLocked(q, RoleGuest)
	r.acceptEarlyLocked(q)
	return nil
}

// MicReject: a host rejects target's request, or an audience member
// (target ignored) declines its invitation or withdraws its request.
func (p *Participant) MicReject(target string) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	q, err := r.answerTargetLocked(p, target)
	if err != nil {
		return err
	}
	ev := MicRejectedEvent{By: p.id, Participant: q.id, Reason: MicRejected}
	if q == p && q.mic == micRequested {
		ev.Reason = MicCancelled
	}
	declined := q == p && q.ticket != "" // an invitation from the owner's host: the owner hears of it
	r.setMicLocked(q, micNone)
	if declined {
		r.tellEdgeLocked(q, ListenerDeclined)
	}
	if r.endEarlyLocked(q) { // told even when it ended the request itself
		own := ev
		own.PubClosed = true
		q.sink.Send(own)
	} else if q != p {
		q.sink.Send(ev)
	}
	for _, h := range r.participants {
		if h.role == RoleHost && h != p {
			h.sink.Send(ev)
		}
	}
	return nil
}

// MicRelease takes a guest off the mic: the guest itself (target empty or
// its own id) or a host (target a guest). Its tracks end at once and its
// pub connection closes.
func (p *Participant) MicRelease(target string) error {
	r := p.room
	r.mu.Lock()
	if err := p.liveLocked(); err != nil {
		r.mu.Unlock()
		return err
	}
	q := p
	if target != "" && target != p.id {
		if p.role != RoleHost {
			r.mu.Unlock()
			return fmt.Errorf("%w: only hosts take others off the mic", ErrForbidden)
		}
		if q = r.findLocked(target); q == nil {
			r.mu.Unlock()
			return fmt.Errorf("%w: no participant %s in this room", ErrNotFound, target)
		}
	} else if p.role == RoleHost && target == "" {
		r.mu.Unlock()
		return fmt.Errorf("%w: name the guest to take off the mic in \"participant\"", ErrBadRequest)
	}
	if q.role != RoleGuest {
		r.mu.Unlock()
		if q == p && p.role == RoleAudience {
			return fmt.Errorf("%w: you are not on the mic", ErrForbidden)
		}
		return fmt.Errorf("%w: %s is not a guest on the mic", ErrNotFound, q.id)
	}
	r.setRoleLocked(q, RoleAudience)
	r.mu.Unlock()
	q.closePub()
	return nil
}

// answerTargetLocked finds whose request or invitation p answers: for a
// host, target's pending request; for an audience member, its own
// invitation or request.
func (r *Room) answerTargetLocked(p *Participant, target string) (*Participant, error) {
	if err := p.liveLocked(); err != nil {
		return nil, err
	}
	switch p.role {
	case RoleHost:
		if target == "" {
			return nil, fmt.Errorf("%w: name the audience member whose request you answer in \"participant\"", ErrBadRequest)
		}
		q := r.findLocked(target)
		if q == nil {
			return nil, fmt.Errorf("%w: no participant %s in this room", ErrNotFound, target)
		}
		if q.mic != micRequested {
			return nil, fmt.Errorf("%w: %s has no pending mic request", ErrNotFound, target)
		}
		return q, nil
	case RoleAudience:
		if p.mic == micNone {
			return nil, fmt.Errorf("%w: you have no pending invitation or request", ErrNotFound)
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w: a guest is already on the mic", ErrForbidden)
}

// targetLocked checks that p has role need and finds target.
func (r *Room) targetLocked(p *Participant, target string, need Role) (*Participant, error) {
	if err := p.liveLocked(); err != nil {
		return nil, err
	}
	if p.role != need {
		return nil, fmt.Errorf("%w: only a %s may do this", ErrForbidden, need)
	}
	q := r.findLocked(target)
	if q == nil {
		return nil, fmt.Errorf("%w: no participant %s in this room", ErrNotFound, target)
	}
	return q, nil
}

// setMicLocked moves q to state s and arms or disarms its expiry.
func (r *Room) setMicLocked(q *Participant, s micState) {
	q.mic = s
	q.micGen++
	if q.ticket != "" { // the invitation it named has ended
		delete(r.tickets, q.ticket)
		q.ticket = ""
	}
	if q.micTimer != nil {
		q.micTimer.Stop()
		q.micTimer = nil
	}
	if s == micNone {
		return
	}
	gen := q.micGen
	q.micTimer = time.AfterFunc(r.sfu.cfg.MicTimeout, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if q.gone || q.micGen != gen {
			return
		}
		r.setMicLocked(q, micNone)
		ev := MicRejectedEvent{Participant: q.id, Reason: MicTimeout}
		q.sink.Send(MicRejectedEvent{Participant: q.id, Reason: MicTimeout, PubClosed: r.endEarlyLocked(q)})
		r.sendHostsLocked(ev)
	})
}

// rejectPendingLocked ends every pending request and invitation: the last
// host has left.
func (r *Room) rejectPendingLocked() {
	clear(r.tickets) // proxies' invitations, whether their listeners moved here yet or not
	for _, q := range r.participants {
		if q.mic != micNone {
			r.setMicLocked(q, micNone)
			q.sink.Send(MicRejectedEvent{Participant: q.id, Reason: MicNoHost, PubClosed: r.endEarlyLocked(q)})
		}
	}
}

// setRoleLocked changes q's role between audience and guest and tells the
// room as Presence says: those who could not see q before learn of it with
// participant_joined, the others get role_changed (q itself included).
// Going back to the audience ends q's tracks.
func (r *Room) setRoleLocked(q *Participant, role Role) {
	old, was := q.role, q.listening()
	if role == RoleAudience {
		r.endTracksLocked(q, true)
	}
	r.countLocked(old, -1)
	r.countListenLocked(q, -1)
	q.role = role
	r.countLocked(role, +1)
	r.countListenLocked(q, +1)
	if role == RoleAudience {
		r.mirrorLocked(mirrorOp{kind: opLeave, id: q.id, reason: ReasonLeft})
	} else {
		r.mirrorLocked(mirrorOp{kind: opJoin, id: q.id, name: q.name, muted: q.mutedLocked()})
	}
	for _, o := range r.participants {
		switch {
		case o == q || o.role == RoleHost || role == RoleAudience:
			o.sink.Send(RoleChangedEvent{Participant: q.id, Role: role})
		default:
			o.sink.Send(ParticipantJoinedEvent{Participant: q.info()})
		}
	}
	r.listenChangedLocked(q, was) // an audience member on the mix hears tracks on the mic, and back
	r.audienceChangedLocked()
}

func (r *Room) hasHostLocked() bool {
	for _, q := range r.participants {
		if q.role == RoleHost {
			return true
		}
	}
	return false
}

func (r *Room) sendHostsLocked(ev Event) {
	for _, q := range r.participants {
		if q.role == RoleHost {
			q.sink.Send(ev)
		}
	}
}

func (r *Room) findLocked(id string) *Participant {
	for _, q := range r.participants {
		if q.id == id {
			return q
		}
	}
	return nil
}

// liveLocked is ErrClosed once p has been removed.
func (p *Participant) liveLocked() error {
	if p.gone {
		return ErrClosed
	}
	return nil
}
