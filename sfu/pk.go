package sfu

import (
	"fmt"
	"time"
)

// Cross-room co-streaming ("PK", 跨房连麦): a host of one room invites
// another room; a host of that room accepts; while the two rooms are
// linked each one's publishers appear in the other as remote publishers
// (remote.go) fed with the source room's own tracks (pkmirror.go), and
// each room keeps its own audience, moderation and mix.
//
// The state of a link is guarded by SFU.pkMu, which serializes the
// control of links (invite, accept, reject, end, expiry) and nothing else:
// no packet path and no room event takes it. Under it, the two rooms'
// locks are taken one at a time, never together (lock order: SFU.pkMu,
// then one Room.mu, then SFU.mu). What a room must do when its own state
// ends a link (its last host left, it emptied) happens under its lock,
// where pkMu may not be taken: it hands the end to a goroutine.
//
// Both rooms on this relay: the link mirrors each room's publishers into
// the other (pkmirror.go). A room on another relay of the cluster: the
// link has one local room, the other is a name (pkLink.remote), and
// Config.PKPeer carries the control to that relay and shows its
// publishers here (pkpeer.go).

// PKReason says why an invitation ended without a link, or why a link
// ended.
type PKReason string

// Reasons in PKRejectedEvent and PKEndedEvent.
const (
	PKRejected  PKReason = "rejected"  // a host of the invited room said no
	PKTimeout   PKReason = "timeout"   // nobody answered within the mic timeout
	PKCancelled PKReason = "cancelled" // a host ended the invitation before an answer (pk_end)
	PKNoHost    PKReason = "no_host"   // one of the rooms has no host any more
	PKEndedBy   PKReason = "ended"     // a host ended the link (pk_end)
	PKLinkLost  PKReason = "link_lost" // across nodes: the other relay died, or the link between the relays failed
)

// pkState is where a link stands.
type pkState int

const (
	pkInvited pkState = iota // waits for the invited room's answer
	pkLinked                 // the rooms hear each other
	pkDone                   // rejected, expired or ended; never set back
)

// pkLink is a link between two rooms, from its invitation to its end.
// Both rooms point to it (Room.link) while it is not done.
type pkLink struct {
	from, to *Room  // from invited to; across nodes, the remote one is nil
	remote   string // across nodes: the other room's name (on another relay), "" on one node
	by       Info   // the inviting host

	// Guarded by SFU.pkMu.
	state  pkState
	timer  *time.Timer // the invitation's expiry
	mirror *pkMirror   // while linked, on one node
	stop   func()      // while linked, across nodes: closes the relay-to-relay link (PKPeer.PKLink)
	byPeer bool        // across nodes: the other relay ended it (it need not be told)
}

// other is the room of l that is not r (nil across nodes).
func (l *pkLink) other(r *Room) *Room {
	if r == l.from {
		return l.to
	}
	return l.from
}

// otherName is the name of the room of l that is not r.
func (l *pkLink) otherName(r *Room) string {
	if l.remote != "" {
		return l.remote
	}
	return l.other(r).name
}

// rooms are l's rooms on this relay: two, or one across nodes.
func (l *pkLink) rooms() []*Room {
	switch {
	case l.from == nil:
		return []*Room{l.to}
	case l.to == nil:
		return []*Room{l.from}
	}
	return []*Room{l.from, l.to}
}

// PKInvite: a host invites room to link with its own; every host of that
// room is told (PKInvitedEvent). One link per room: a room with an
// invitation or a link pending or running is ErrConflict, either side.
func (p *Participant) PKInvite(room string) error {
	s, r := p.sfu, p.room
	if err := p.pkHost(); err != nil {
		return err
	}
	if room == r.name {
		return fmt.Errorf("%w: a room cannot link with itself; name another room", ErrBadRequest)
	}
	to, ok := s.ownRoom(room)
	if !ok {
		if s.cfg.PKPeer != nil {
			return p.pkInviteRemote(room)
		}
		return fmt.Errorf("%w: there is no room %s on this relay", ErrNotFound, room)
	}
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	l := &pkLink{from: r, to: to}
	r.mu.Lock()
	err := r.claimLinkLocked(l, p)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	to.mu.Lock()
	err = to.claimLinkLocked(l, nil)
	if err == nil {
		to.sendHostsLocked(PKInvitedEvent{Room: r.name, By: l.by})
	}
	to.mu.Unlock()
	if err != nil {
		r.mu.Lock()
		r.link = nil
		r.mu.Unlock()
		return err
	}
	l.timer = time.AfterFunc(s.cfg.MicTimeout, func() { s.endLink(l, pkInvited, PKTimeout) })
	return nil
}

// claimLinkLocked makes l r's link, if r has none; by is the inviting
// host when r is the inviting room (checked still there), nil for the
// invited room (checked to have a host).
func (r *Room) claimLinkLocked(l *pkLink, by *Participant) error {
	if by != nil {
		if err := by.liveLocked(); err != nil {
			return err
		}
		l.by = by.info()
	}
	switch {
	case r.gone:
		return fmt.Errorf("%w: room %s has ended", ErrNotFound, r.name)
	case r.link != nil:
		return fmt.Errorf("%w: room %s already has a link or an invitation (one at a time); end it first", ErrConflict, r.name)
	case by == nil && !r.hasHostLocked():
		return fmt.Errorf("%w: room %s has no host to invite", ErrNotFound, r.name)
	}
	r.link = l
	return nil
}

// PKAccept: a host of the invited room accepts room's invitation; both
// rooms are told (PKStartedEvent) and hear each other from now on.
func (p *Participant) PKAccept(room string) error { return p.pkAnswer(room, true) }

// PKReject: a host of the invited room declines room's invitation; the
// hosts of both rooms are told (PKRejectedEvent, reason rejected).
func (p *Participant) PKReject(room string) error { return p.pkAnswer(room, false) }

// pkAnswer accepts or rejects the invitation from room.
func (p *Participant) pkAnswer(room string, accept bool) error {
	s := p.sfu
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	l, err := p.pkInvitation(room)
	if err != nil {
		return err
	}
	if !accept {
		s.endLinkLocked(l, PKRejected)
		return nil
	}
	if l.remote != "" {
		return s.pkAcceptRemoteLocked(l)
	}
	l.timer.Stop()
	// A link that just ended may still be taking its remote publishers
	// out of these rooms (same ids as the new link's): let it finish.
	for _, r := range []*Room{l.from, l.to} {
		if r.pkPrev != nil {
			<-r.pkPrev.done
			r.pkPrev = nil
		}
	}
	l.state = pkLinked
	l.mirror = newPKMirror(s.log.With("pk", l.from.name+"+"+l.to.name), l.from, l.to)
	for _, r := range []*Room{l.to, l.from} {
		r.mu.Lock()
		r.startMirrorLocked(l)
		r.mu.Unlock()
	}
	s.pkWG.Go(l.mirror.run)
	return nil
}

// PKEnd: a host of either room ends the link with room (PKEndedEvent,
// reason ended, to both rooms; the remote publishers leave with reason
// pk_ended), or withdraws or declines an invitation not yet answered
// (PKRejectedEvent, reason cancelled).
func (p *Participant) PKEnd(room string) error {
	s := p.sfu
	if err := p.pkHost(); err != nil {
		return err
	}
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	r := p.room
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	if l == nil || l.otherName(r) != room {
		return fmt.Errorf("%w: room %s is not linked with %s, nor invited", ErrNotFound, r.name, room)
	}
	if l.state == pkInvited {
		s.endLinkLocked(l, PKCancelled)
	} else {
		s.endLinkLocked(l, PKEndedBy)
	}
	return nil
}

// pkHost is nil if p may invite, answer or end: a host still in the room.
func (p *Participant) pkHost() error {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	if err := p.liveLocked(); err != nil {
		return err
	}
	if p.role != RoleHost {
		return fmt.Errorf("%w: only a host links rooms (a token with role host)", ErrForbidden)
	}
	return nil
}

// pkInvitation is the invitation from room that p, a host of the invited
// room, answers. SFU.pkMu must be held.
func (p *Participant) pkInvitation(room string) (*pkLink, error) {
	if err := p.pkHost(); err != nil {
		return nil, err
	}
	r := p.room
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	if l == nil || l.state != pkInvited || l.to != r || l.otherName(r) != room {
		return nil, fmt.Errorf("%w: room %s has no invitation from room %s", ErrNotFound, r.name, room)
	}
	return l, nil
}

// endLink ends l for reason if it is still in state want (a timer's or a
// room's hand-off may find it answered or ended meanwhile).
func (s *SFU) endLink(l *pkLink, want pkState, reason PKReason) {
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	if l.state == want {
		s.endLinkLocked(l, reason)
	}
}

// endLinkLocked ends l: an invitation with PKRejectedEvent to both rooms'
// hosts, a link with PKEndedEvent to everyone in both rooms, after which
// the mirror takes the remote publishers out. SFU.pkMu must be held.
func (s *SFU) endLinkLocked(l *pkLink, reason PKReason) {
	was := l.state
	if was == pkDone {
		return
	}
	l.state = pkDone
	if l.timer != nil {
		l.timer.Stop()
	}
	for _, r := range l.rooms() {
		r.mu.Lock()
		if r.link == l {
			r.link, r.mirror = nil, nil
		}
		if was == pkLinked {
			r.silenceRemotesLocked(l.otherName(r))
		}
		if !r.gone {
			other := l.otherName(r)
			if was == pkInvited {
				r.sendHostsLocked(PKRejectedEvent{Room: other, Reason: reason})
			} else {
				r.sendAllLocked(PKEndedEvent{Room: other, Reason: reason})
			}
		}
		r.mu.Unlock()
	}
	if l.mirror != nil {
		l.mirror.stop()
		l.from.pkPrev, l.to.pkPrev = l.mirror, l.mirror
	}
	if l.remote != "" {
		s.endRemoteLocked(l, reason)
	}
}

// silenceRemotesLocked stops forwarding the remote publishers of room
// from into r at once, as a mute would: the link has ended, and the
// mirror takes them out of r soon, but the audio stops now.
func (r *Room) silenceRemotesLocked(from string) {
	for _, x := range r.remotes {
		if x.info.Role == RoleRemote && x.info.Room == from {
			for _, rt := range x.tracks {
				rt.gate.SetMuted(true)
				r.muteMixInputLocked(rt.up, true)
			}
		}
	}
}

// startMirrorLocked starts mirroring r's publishers into the other room
// of l: its own publishers as they are now, then every change (the hooks
// in room.go call mirrorLocked). Everyone in r is told the link started.
func (r *Room) startMirrorLocked(l *pkLink) {
	if r.link != l {
		return // ended meanwhile (a room's hand-off waits for pkMu)
	}
	r.mirror = l.mirror
	for _, q := range r.participants {
		if !q.role.publishes() {
			continue
		}
		r.mirrorLocked(mirrorOp{kind: opJoin, id: q.id, name: q.name, muted: q.mutedLocked()})
		for _, t := range q.tracks {
			r.mirrorLocked(mirrorOp{kind: opPublish, id: q.id, track: t})
		}
	}
	r.sendAllLocked(PKStartedEvent{Room: l.other(r).name})
}

// pkHostLeftLocked ends r's link or invitation, from a goroutine of its
// own, when r has no host any more (its last host left, or it emptied).
// Nothing more of r is mirrored from now on: its publishers leave the
// other room with the link (reason pk_ended). true if it ends the link.
func (r *Room) pkHostLeftLocked() bool {
	l := r.link
	if l == nil || r.hasHostLocked() && !r.gone {
		return false
	}
	r.mirror = nil
	s := r.sfu
	s.pkWG.Go(func() {
		s.pkMu.Lock()
		defer s.pkMu.Unlock()
		s.endLinkLocked(l, PKNoHost)
	})
	return true
}
