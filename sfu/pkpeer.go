package sfu

import (
	"fmt"
	"time"
)

// Cross-room links across the nodes of a cluster. The state machine stays
// pk.go's, one per room: a link whose other room is on another relay has
// one local room (pkLink.from or .to) and the other's name
// (pkLink.remote). Config.PKPeer (package cluster) carries what a host
// does here to the other room's relay, which calls the PKRemote* methods
// below on its SFU; when the link starts, each relay shows the other
// room's publishers in its own room (PKPeer.PKLink), as remote publishers
// with role remote and their room's name, fed by a relay-to-relay link.
//
// The peer's requests are made without SFU.pkMu held (two relays asking
// each other at once must not wait on each other's lock); the state is
// checked again when the answer is back.

// PKPeer carries links to rooms on other relays (Config.PKPeer).
type PKPeer interface {
	// PKInvite carries an invitation from room from (by, its host) to
	// room to on another relay, whose hosts get PKInvitedEvent. Its error
	// wraps ErrNotFound when no relay has room to, or the other relay's
	// refusal (ErrConflict, ErrNotFound) as this package's errors.
	PKInvite(from, to string, by Info) error
	// PKAccept tells the relay of room from that a host of room to
	// accepted; nil once from is linked there too.
	PKAccept(to, from string) error
	// PKEnd tells the relay of room remote that the invitation or link
	// with room local ended, for reason. It must not block (it is called
	// with SFU.pkMu held): the other relay's state follows it.
	PKEnd(local, remote string, reason PKReason)
	// PKLink shows the publishers of room remote (on another relay) in r
	// as remote publishers until stop is called (stop blocks until they
	// have left). A link that fails calls SFU.PKLinkFailed.
	PKLink(r *Room, remote string) (stop func())
}

// ownRoom is the named room if this relay serves it as its own: an edge
// room (edgeroom.go) only shows a room another relay owns, whose hosts are
// there.
func (s *SFU) ownRoom(name string) (*Room, bool) {
	r, ok := s.Room(name)
	if !ok || r.edge.Load() != nil {
		return nil, false
	}
	return r, true
}

// pkInviteRemote invites room, which is not on this relay, to link with
// p's room (through Config.PKPeer).
func (p *Participant) pkInviteRemote(room string) error {
	s, r := p.sfu, p.room
	l := &pkLink{from: r, remote: room}
	s.pkMu.Lock()
	r.mu.Lock()
	err := r.claimLinkLocked(l, p)
	r.mu.Unlock()
	s.pkMu.Unlock()
	if err != nil {
		return err
	}
	err = s.cfg.PKPeer.PKInvite(r.name, room, l.by)
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	if err != nil {
		if l.state == pkInvited {
			l.state = pkDone
			r.mu.Lock()
			if r.link == l {
				r.link = nil
			}
			r.mu.Unlock()
		}
		return err
	}
	if l.state == pkInvited && l.timer == nil {
		l.timer = time.AfterFunc(s.cfg.MicTimeout, func() { s.endLink(l, pkInvited, PKTimeout) })
	}
	return nil
}

// pkAcceptRemoteLocked accepts l, an invitation from another relay's
// room: that relay is told first (its room linked), then this room is.
// SFU.pkMu is held, and released while the other relay answers.
func (s *SFU) pkAcceptRemoteLocked(l *pkLink) error {
	r := l.to
	s.pkMu.Unlock()
	err := s.cfg.PKPeer.PKAccept(r.name, l.remote)
	s.pkMu.Lock()
	if l.state != pkInvited { // expired or ended meanwhile; the other relay was told
		return fmt.Errorf("%w: the invitation from room %s has ended", ErrNotFound, l.remote)
	}
	if err != nil {
		// It refused, or did not answer in time: it is told the
		// invitation is over either way (a no-op if it has none).
		s.endLinkLocked(l, PKCancelled)
		return err
	}
	s.startRemoteLocked(l)
	return nil
}

// startRemoteLocked links l's local room to its remote one: its
// participants are told, and the other room's publishers are shown here.
func (s *SFU) startRemoteLocked(l *pkLink) {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.state = pkLinked
	r := l.rooms()[0]
	if r.pkPrev != nil { // the last link's remote publishers (same ids) must be gone first
		<-r.pkPrev.done
		r.pkPrev = nil
	}
	r.mu.Lock()
	live := r.link == l && !r.gone
	if live {
		r.sendAllLocked(PKStartedEvent{Room: l.remote})
	}
	r.mu.Unlock()
	if live {
		l.stop = s.cfg.PKPeer.PKLink(r, l.remote)
	}
}

// endRemoteLocked finishes the end of l across nodes: the other relay is
// told (unless it told us), and the relay-to-relay link is closed in the
// background; a next link of this room waits for it (pkPrev).
func (s *SFU) endRemoteLocked(l *pkLink, reason PKReason) {
	r := l.rooms()[0]
	if !l.byPeer {
		s.cfg.PKPeer.PKEnd(r.name, l.remote, reason)
	}
	if l.stop == nil {
		return
	}
	done := &pkMirror{done: make(chan struct{})}
	r.pkPrev = done
	stop := l.stop
	s.pkWG.Go(func() {
		defer close(done.done)
		stop()
	})
}

// remoteLink is room's link or invitation with room remote on another
// relay. SFU.pkMu must be held.
func (s *SFU) remoteLink(room, remote string) (*pkLink, *Room, error) {
	r, ok := s.ownRoom(room)
	if !ok {
		return nil, nil, fmt.Errorf("%w: there is no room %s on this relay", ErrNotFound, room)
	}
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	if l == nil || l.remote != remote || l.state == pkDone {
		return nil, r, fmt.Errorf("%w: room %s has no link or invitation with room %s", ErrNotFound, room, remote)
	}
	return l, r, nil
}

// PKRemoteInvite: room from on another relay (by, its host) invites room
// to, here; its hosts get PKInvitedEvent, and the invitation expires after
// the mic timeout as on one node. Errors as PKInvite's.
func (s *SFU) PKRemoteInvite(to, from string, by Info) error {
	if to == from {
		return fmt.Errorf("%w: a room cannot link with itself; name another room", ErrBadRequest)
	}
	r, ok := s.ownRoom(to)
	if !ok {
		return fmt.Errorf("%w: there is no room %s", ErrNotFound, to)
	}
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	l := &pkLink{to: r, remote: from, by: by}
	r.mu.Lock()
	err := r.claimLinkLocked(l, nil)
	if err == nil {
		r.sendHostsLocked(PKInvitedEvent{Room: from, By: by})
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	l.timer = time.AfterFunc(s.cfg.MicTimeout, func() { s.endLink(l, pkInvited, PKTimeout) })
	return nil
}

// PKRemoteAccept: a host of room to, on another relay, accepted the
// invitation of room from, here: from is linked (PKStartedEvent) and shows
// to's publishers.
func (s *SFU) PKRemoteAccept(from, to string) error {
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	l, _, err := s.remoteLink(from, to)
	if err != nil {
		return err
	}
	if l.state != pkInvited || l.from == nil {
		return fmt.Errorf("%w: room %s has not invited room %s", ErrNotFound, from, to)
	}
	s.startRemoteLocked(l)
	return nil
}

// PKRemoteEnd: the other relay ended the invitation or link between room
// local, here, and room remote, for reason: as on one node, local's hosts
// get PKRejectedEvent (an invitation) or everyone PKEndedEvent (a link).
// Nothing to end is no error (both sides may end at once).
func (s *SFU) PKRemoteEnd(local, remote string, reason PKReason) {
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	if l, _, err := s.remoteLink(local, remote); err == nil {
		l.byPeer = true
		s.endLinkLocked(l, reason)
	}
}

// PKLinkFailed: the relay-to-relay link that shows room remote's
// publishers in room local failed (the other relay died, or the link's
// connection): the link ends with reason PKLinkLost, and the other relay
// is told if it can be.
func (s *SFU) PKLinkFailed(local, remote string) {
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	if l, _, err := s.remoteLink(local, remote); err == nil && l.state == pkLinked {
		s.endLinkLocked(l, PKLinkLost)
	}
}
