package sfu

import "fmt"

// Mute stops (or resumes) forwarding target's audio. Anyone may mute or
// unmute itself; a host may mute or unmute anyone; a mute imposed by a
// host is lifted only by a host. A remote publisher (remote.go) is muted
// in this room only, by a host.
func (p *Participant) Mute(target string, muted bool) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := p.liveLocked(); err != nil {
		return err
	}
	if x := r.findRemoteLocked(target); x != nil {
		if p.role != RoleHost {
			return fmt.Errorf("%w: only hosts mute others", ErrForbidden)
		}
		r.muteRemoteLocked(x, muted)
		r.sendAllLocked(MutedEvent{Participant: x.info.ID, Muted: x.mutedLocked(), By: p.id})
		return nil
	}
	q := r.findLocked(target)
	if q == nil {
		return fmt.Errorf("%w: no participant %s in this room", ErrNotFound, target)
	}
	byHost := p.role == RoleHost
	switch {
	case q != p && !byHost:
		return fmt.Errorf("%w: only hosts mute others", ErrForbidden)
	case q == p && !byHost && !muted && q.hostMuted:
		return fmt.Errorf("%w: a host muted you; only a host can unmute you", ErrForbidden)
	}
	if byHost {
		q.hostMuted = muted
		if !muted {
			q.selfMuted = false
		}
	} else {
		q.selfMuted = muted
	}
	now := q.mutedLocked()
	for _, t := range q.tracks {
		t.SetMuted(now)
		r.muteMixInputLocked(t, now)
	}
	r.mirrorLocked(mirrorOp{kind: opMute, id: q.id, muted: now})
	ev := MutedEvent{Participant: q.id, Muted: now, By: p.id}
	for _, o := range r.participants {
		if o == q || visible(q, o) {
			o.sink.Send(ev)
		}
	}
	return nil
}

// mutedLocked reports whether q's audio is not forwarded.
func (q *Participant) mutedLocked() bool { return q.hostMuted || q.selfMuted }

// Kick removes target from the room at a host's request: it gets kicked,
// then its connection is closed; the others get participant_left with
// reason kicked.
func (p *Participant) Kick(target, reason string) error {
	r := p.room
	r.mu.Lock()
	if x := r.findRemoteLocked(target); x != nil {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s is in another room (%s); mute it here, or end the link", ErrForbidden, target, x.info.Room)
	}
	q, err := r.targetLocked(p, target, RoleHost)
	if err == nil && q == p {
		err = fmt.Errorf("%w: a host cannot kick itself; send leave", ErrBadRequest)
	}
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.expelLocked(q, reason)
	return nil
}

// expelLocked tells q it was kicked (reason, or a default), releases r.mu
// (held on entry) and removes q: its connection closed, the others told
// with ReasonKicked. A host's kick and an owner's kick of an edge
// listener (LocalKick) end this way.
func (r *Room) expelLocked(q *Participant, reason string) {
	if reason == "" {
		reason = "removed by a host"
	}
	q.sink.Send(KickedEvent{Reason: reason})
	r.mu.Unlock()
	q.remove(ReasonKicked)
}
