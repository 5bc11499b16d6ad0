package signaling

import (
	"fmt"

	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
)

// redirect refuses a join that another relay of the cluster serves: error
// code redirect with the URL to send the same join to, then close 1000. An
// error (rather than a message of a new type) because a version 1 client
// takes the message carrying its join's id as the join's reply: this way
// one that does not know redirects fails the join with a readable message
// instead of mistaking the redirect for joined.
func (s *session) redirect(id string, re *sfu.RedirectError) {
	s.srv.m.errors.WithLabelValues(protocol.CodeRedirect).Inc()
	s.send(protocol.Error{
		Header:  protocol.Header{Type: protocol.TypeError, ID: id},
		Code:    protocol.CodeRedirect,
		Message: re.Error(),
		URL:     re.URL,
		Room:    re.Room,
	})
	s.closeWith(protocol.CloseNormal, protocol.CloseTextRedirect)
}

// MoveRoom tells every participant of room on this relay that the room now
// lives at url (message redirect), takes it out of the room (its peers
// hear participant_left, reason left) and closes its connection (1000,
// "redirect"). The cluster calls it when this relay hands a room over on
// drain, or lost it to another relay while the directory was unreachable.
// It returns how many sessions it moved.
func (s *Server) MoveRoom(room, url string) int {
	s.mu.Lock()
	var moving []*session
	for ss := range s.sessions {
		if ss.room() == room {
			moving = append(moving, ss)
		}
	}
	s.mu.Unlock()
	msg := protocol.Redirect{
		Header:  protocol.Header{Type: protocol.TypeRedirect},
		URL:     url,
		Room:    room,
		Message: fmt.Sprintf("room %s moved to another relay: join again at %s", room, url),
	}
	for _, ss := range moving {
		ss.moveTo(msg)
	}
	return len(moving)
}

// moveForMic answers a mic request on an edge, or the acceptance of an
// invitation from one of the owner's hosts: the listener is moved to the
// room's owner, where its hosts are (message redirect with then
// "mic_request", or "mic_accept" and the invitation's ticket; close 1000,
// "redirect"); a client that follows it joins there as audience and sends
// then's message again (mic_accept with the ticket).
func (s *session) moveForMic(me *sfu.MicElsewhereError) {
	s.srv.m.errors.WithLabelValues(protocol.CodeRedirect).Inc()
	then := protocol.TypeMicRequest
	if me.Ticket != "" {
		then = protocol.TypeMicAccept
	}
	s.moveTo(protocol.Redirect{
		Header:  protocol.Header{Type: protocol.TypeRedirect},
		URL:     me.URL,
		Room:    me.Room,
		Message: me.Error(),
		Then:    then,
		Ticket:  me.Ticket,
	})
}

// room is the room the session joined, "" before.
func (s *session) room() string {
	if m := s.member.Load(); m != nil {
		return m.room
	}
	return ""
}

// moveTo sends msg (a redirect), closes the connection after it and takes
// the participant out of its room, unless a resume took it over.
func (s *session) moveTo(msg protocol.Redirect) {
	m := s.member.Load()
	if m == nil || !m.p.Owns(s) {
		return
	}
	s.send(msg)
	s.closeWith(protocol.CloseNormal, protocol.CloseTextRedirect)
	m.p.Leave()
}
