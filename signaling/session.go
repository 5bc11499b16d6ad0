package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
)

// session is one client's WebSocket. It implements sfu.Sink.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  *slog.Logger
	addr netip.Addr // the client's address, as the limits count it

	out  *sendQueue    // drained by the writer; send adds without blocking
	done chan struct{} // closed by closeWith: the writer sends the close frame and ends

	closeOnce sync.Once
	closeCode int    // set once by closeWith, before done is closed
	closeText string // likewise

	// The writer runs only while it has something to write (writer.go).
	writing     atomic.Bool   // the ownership of the writes; kept for good once the writer ends
	pingPending atomic.Bool   // set by the ping timer, cleared by the writer that sends the ping
	pinger      *time.Timer   // runs pingDue; re-armed by the writer after each ping, stopped when it ends
	writerDone  chan struct{} // closed when the writer has ended for good

	// Owned by the reader goroutine.
	p      *sfu.Participant // nil until joined
	limit  *rateLimit
	joined atomic.Bool // set by the reader on join; read by the join timer
	// member is p and its room for other goroutines (Server.MoveRoom);
	// set once by the reader on join.
	member atomic.Pointer[membership]
}

// membership is a joined session's participant and room.
type membership struct {
	room string
	p    *sfu.Participant
}

func newSession(srv *Server, conn *websocket.Conn, remote string, addr netip.Addr) *session {
	s := &session{
		srv:        srv,
		conn:       conn,
		addr:       addr,
		log:        srv.log.With("remote", remote),
		out:        newSendQueue(srv.cfg.SendQueue),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		limit:      newRateLimit(srv.cfg.MessageRate, srv.cfg.MessageBurst),
	}
	// Armed only once s.pinger is set: a Reset happens before the timer
	// runs pingDue, which reads it; the AfterFunc call does not.
	s.pinger = time.AfterFunc(math.MaxInt64, s.pingDue)
	s.pinger.Reset(srv.cfg.PingInterval)
	return s
}

// run serves the session until the connection ends. A session that has
// not joined by joinBy is closed (JoinTimeout after the connection opened,
// which for a parked connection was before the session started).
func (s *session) run(joinBy time.Time) {
	joinTimer := time.AfterFunc(time.Until(joinBy), func() {
		if !s.joined.Load() {
			s.closeWith(protocol.ClosePolicy, joinTimeoutText(s.srv.cfg.JoinTimeout))
		}
	})
	s.readLoop()
	joinTimer.Stop()
	s.closeWith(protocol.CloseNormal, "")
	<-s.writerDone
	_ = s.conn.Close()
	if s.p != nil {
		// The WebSocket is gone without a leave: keep the participant for
		// the grace period (a no-op if it was already removed or this
		// session was replaced by a resume).
		s.p.Disconnected(s)
	}
}

// joinTimeoutText is the close reason for a connection that did not join
// within timeout.
func joinTimeoutText(timeout time.Duration) string {
	return "no join within " + timeout.String() + " of connecting"
}

func (s *session) readLoop() {
	s.conn.SetReadLimit(protocol.MaxMessageSize)
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.SilenceTimeout))
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.SilenceTimeout))
	})
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.closeWith(protocol.CloseTooBig, "message larger than 64 KiB")
			}
			return
		}
		if s.closing() {
			// Read and drop what the client sends until its close frame
			// (or the writer's deadline): closing the socket with unread
			// data would reset it and lose the error and close frame.
			continue
		}
		now := time.Now()
		_ = s.conn.SetReadDeadline(now.Add(s.srv.cfg.SilenceTimeout))
		if !s.limit.allow(now) {
			s.log.Warn("client exceeds the message rate; closing", "participant", s.participantID(), "rate", s.srv.cfg.MessageRate, "burst", s.srv.cfg.MessageBurst)
			s.sendError("", protocol.CodeRateLimited, fmt.Sprintf("more than %d messages at once or %g per second; the connection is closed", s.srv.cfg.MessageBurst, s.srv.cfg.MessageRate))
			s.closeWith(protocol.ClosePolicy, "rate limited")
			continue
		}
		if typ != websocket.TextMessage {
			s.closeWith(protocol.CloseUnsupported, "binary frames are not part of the protocol; send JSON text frames")
			continue
		}
		s.handleSafely(data)
	}
}

// closing reports whether closeWith was called.
func (s *session) closing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// handleSafely handles one message. A panic in a handler is a bug: it is
// logged with the session and ends this session only.
func (s *session) handleSafely(data []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in session handler; closing the session", "participant", s.participantID(), "panic", r, "stack", string(debug.Stack()))
			s.sendError("", protocol.CodeInternal, "internal error; the session is closed, please rejoin")
			if s.p != nil {
				s.p.Leave()
			}
			s.closeWith(protocol.CloseInternalError, "internal error")
		}
	}()
	s.handle(data)
}

func (s *session) participantID() string {
	if s.p == nil {
		return ""
	}
	return s.p.ID()
}

// closeWith ends the session with a close frame; the first call wins.
func (s *session) closeWith(code int, text string) {
	s.closeOnce.Do(func() {
		s.closeCode, s.closeText = code, text
		close(s.done)
	})
	s.startWriter() // it sends the close frame
}

// send queues a message for the client without blocking. A client too slow
// to take its messages is disconnected.
func (s *session) send(msg any) {
	data, err := json.Marshal(msg)
	if err != nil {
		s.log.Error("encode message", "err", err)
		return
	}
	if !s.out.push(data) {
		s.log.Warn("client does not read its messages; disconnecting", "participant", s.participantID(), "queued", s.out.len())
		s.closeWith(protocol.ClosePolicy, "send queue overflow: the client did not read its messages")
		// The writer is likely blocked on the full socket: cut the
		// connection now rather than after the write timeout.
		_ = s.conn.Close()
		return
	}
	s.startWriter()
}

func (s *session) sendError(id, code, text string) {
	s.srv.m.errors.WithLabelValues(code).Inc()
	s.send(protocol.Error{Header: protocol.Header{Type: protocol.TypeError, ID: id}, Code: code, Message: text})
}

// Send implements sfu.Sink.
func (s *session) Send(ev sfu.Event) {
	msg := s.srv.message(ev)
	if msg == nil {
		// An sfu event without a message is a bug (the vocabulary test
		// checks every event): loud in tests, logged in production.
		if testing.Testing() {
			panic(fmt.Sprintf("signaling: no protocol message for sfu event %T", ev))
		}
		s.log.Error("no protocol message for an sfu event; the client is not told; please report this bug", "event", fmt.Sprintf("%T", ev))
		return
	}
	s.send(msg)
}

// Close implements sfu.Sink: the relay removed the participant.
func (s *session) Close(reason sfu.Reason) {
	switch reason {
	case sfu.ReasonShutdown:
		s.closeWith(protocol.CloseGoingAway, "relay is shutting down")
	case sfu.ReasonKicked:
		s.closeWith(protocol.ClosePolicy, "kicked")
	case sfu.ReasonReplaced:
		s.closeWith(protocol.CloseNormal, protocol.CloseTextReplaced)
	default:
		s.closeWith(protocol.CloseNormal, string(reason))
	}
}
