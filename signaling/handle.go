package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
)

// handle handles one client message. Whatever ends the session has
// called closeWith: the read loop then ends.
func (s *session) handle(data []byte) {
	received := time.Now()
	msg, err := protocol.Decode(data)
	if err != nil {
		var de *protocol.DecodeError
		errors.As(err, &de)
		s.sendError(de.ID, protocol.CodeBadRequest, de.Reason)
		if s.p == nil {
			s.closeWith(protocol.ClosePolicy, "the first message must be join (or ping)")
		}
		return
	}
	if s.p == nil {
		s.handleBeforeJoin(msg, received)
		return
	}
	if !s.p.Owns(s) { // a resume took the participant over
		s.closeWith(protocol.CloseNormal, protocol.CloseTextReplaced)
		return
	}
	switch m := msg.(type) {
	case *protocol.Ping:
		s.send(protocol.Pong{Header: protocol.Header{Type: protocol.TypePong, ID: m.ID}})
	case *protocol.Join:
		s.sendError(m.ID, protocol.CodeConflict, "already joined; send leave and open a new connection to join another room")
	case *protocol.SessionDescription:
		if len(m.SDP) > s.srv.cfg.MaxSDPSize {
			s.sendError(m.ID, protocol.CodeBadRequest, fmt.Sprintf("the %s is %d bytes of SDP; at most %d are accepted", m.Type, len(m.SDP), s.srv.cfg.MaxSDPSize))
			return
		}
		if m.Type == protocol.TypeOffer {
			s.reply(m.ID, s.p.Offer(s, m.ID, m.SDP))
		} else {
			s.reply(m.ID, s.p.Answer(s, m.SDP))
		}
	case *protocol.Candidate:
		s.reply(m.ID, s.p.AddCandidate(s, sfu.PC(m.PC), fromProtocol(m.Candidate)))
	case *protocol.Leave:
		s.p.Leave()
		s.closeWith(protocol.CloseNormal, "left")
		return
	case *protocol.MicRequest:
		err := s.p.MicRequest()
		var me *sfu.MicElsewhereError
		if errors.As(err, &me) {
			s.moveForMic(me)
			return
		}
		s.reply(m.ID, err)
	case *protocol.Targeted:
		err := s.targeted(m)
		var me *sfu.MicElsewhereError
		if errors.As(err, &me) { // accepting an invitation on an edge
			s.moveForMic(me)
			return
		}
		s.reply(m.ID, err)
	case *protocol.Mute:
		s.reply(m.ID, s.p.Mute(m.Participant, *m.Muted))
	case *protocol.PKRequest:
		s.reply(m.ID, s.pk(m))
	}
}

// targeted handles the messages that name a participant.
func (s *session) targeted(m *protocol.Targeted) error {
	switch m.Type {
	case protocol.TypeMicInvite:
		return s.p.MicInvite(m.Participant)
	case protocol.TypeMicAccept:
		if m.Ticket != "" { // an invitation from another relay of the cluster
			return s.p.AcceptTicket(m.Ticket)
		}
		return s.p.MicAccept(m.Participant)
	case protocol.TypeMicReject:
		return s.p.MicReject(m.Participant)
	case protocol.TypeMicRelease:
		return s.p.MicRelease(m.Participant)
	case protocol.TypeKick:
		return s.p.Kick(m.Participant, m.Reason)
	}
	return fmt.Errorf("unhandled message type %q", m.Type)
}

// pk handles the cross-room link messages.
func (s *session) pk(m *protocol.PKRequest) error {
	switch m.Type {
	case protocol.TypePKInvite:
		return s.p.PKInvite(m.Room)
	case protocol.TypePKAccept:
		return s.p.PKAccept(m.Room)
	case protocol.TypePKReject:
		return s.p.PKReject(m.Room)
	case protocol.TypePKEnd:
		return s.p.PKEnd(m.Room)
	}
	return fmt.Errorf("unhandled message type %q", m.Type)
}

func (s *session) handleBeforeJoin(msg any, received time.Time) {
	switch m := msg.(type) {
	case *protocol.Ping:
		s.send(protocol.Pong{Header: protocol.Header{Type: protocol.TypePong, ID: m.ID}})
		return
	case *protocol.Join:
		if ref := s.srv.limits.join(s.addr, received); ref != nil {
			s.srv.refuse(s.addr, ref)
			code := protocol.CodeRateLimited
			if ref.reason == refusedNearCapacity {
				code = protocol.CodeUnavailable
			}
			s.sendError(m.ID, code, ref.message)
			s.closeWith(protocol.ClosePolicy, ref.reason)
			return
		}
		defer func() {
			if s.p == nil { // the join failed: the connection is pending again
				s.srv.limits.unjoin(s.addr)
			}
		}()
		name, role, err := s.srv.admit(m)
		if errors.Is(err, errUnauthorized) {
			s.sendError(m.ID, protocol.CodeUnauthorized, err.Error())
			s.closeWith(protocol.ClosePolicy, "unauthorized")
			return
		}
		if err != nil {
			s.sendError(m.ID, protocol.CodeForbidden, err.Error())
			return
		}
		p, err := s.join(m, name, role, received)
		var re *sfu.RedirectError
		if errors.As(err, &re) {
			s.redirect(m.ID, re)
			return
		}
		if err != nil {
			s.reply(m.ID, err)
			return // the client may try again, e.g. as audience
		}
		s.p = p
		s.member.Store(&membership{room: m.Room, p: p})
		s.joined.Store(true)
		s.log = s.log.With("room", m.Room, "participant", p.ID())
		return
	}
	s.sendError(idOf(msg), protocol.CodeBadRequest, "the first message must be join (or ping)")
	s.closeWith(protocol.ClosePolicy, "the first message must be join (or ping)")
}

// join resumes the session m.Resume names or, if there is none (any
// more), joins afresh: joined.resumed tells the client which.
func (s *session) join(m *protocol.Join, name string, role sfu.Role, received time.Time) (*sfu.Participant, error) {
	if m.Resume != "" {
		p, err := s.srv.sfu.Resume(sfu.ResumeParams{
			Token:      m.Resume,
			Room:       m.Room,
			Sink:       s,
			RequestID:  m.ID,
			RestartICE: m.ICERestart,
		})
		if !errors.Is(err, sfu.ErrResumeUnknown) {
			s.srv.m.resumes.WithLabelValues(resumeOutcome(err, m.ICERestart)).Inc()
			return p, err
		}
		s.srv.m.resumes.WithLabelValues("unknown").Inc()
	}
	return s.srv.sfu.Join(sfu.JoinParams{
		Room:       m.Room,
		Name:       name,
		Role:       role,
		Sink:       s,
		RequestID:  m.ID,
		ReceivedAt: received,
		Listen:     sfu.Listen(m.Listen),
	})
}

func resumeOutcome(err error, restartICE bool) string {
	switch {
	case err != nil:
		return "failed"
	case restartICE:
		return "ice_restart"
	}
	return "new_connections"
}

// reply sends the error err maps to, if any.
func (s *session) reply(id string, err error) {
	if err == nil {
		return
	}
	code, text := errorCode(err)
	if code == protocol.CodeInternal {
		s.log.Error("request failed", "err", err)
	}
	s.sendError(id, code, text)
}

// errorCode maps an sfu error to its protocol code and the message shown to
// the client.
func errorCode(err error) (code, text string) {
	switch {
	case errors.Is(err, sfu.ErrRoomFull):
		return protocol.CodeRoomFull, err.Error()
	case errors.Is(err, sfu.ErrForbidden):
		return protocol.CodeForbidden, err.Error()
	case errors.Is(err, sfu.ErrNotFound):
		return protocol.CodeNotFound, err.Error()
	case errors.Is(err, sfu.ErrConflict):
		return protocol.CodeConflict, err.Error()
	case errors.Is(err, sfu.ErrBadDescription), errors.Is(err, sfu.ErrBadCandidate), errors.Is(err, sfu.ErrNoOffer),
		errors.Is(err, sfu.ErrBadRequest):
		return protocol.CodeBadRequest, err.Error()
	case errors.Is(err, sfu.ErrShuttingDown):
		return protocol.CodeShuttingDown, "the relay is shutting down; reconnect (to another relay) in a moment"
	case errors.Is(err, sfu.ErrClosed):
		return protocol.CodeInternal, "the participant has already been removed; rejoin"
	case errors.Is(err, sfu.ErrUnavailable):
		return protocol.CodeUnavailable, "the relay cannot reach its cluster directory to find who serves this room; retry in a few seconds (or on another relay)"
	}
	return protocol.CodeInternal, "internal error; the relay keeps running, try again"
}

// idOf is a decoded message's id.
func idOf(msg any) string {
	if h, ok := msg.(interface{ MessageHeader() protocol.Header }); ok {
		return h.MessageHeader().ID
	}
	return ""
}
