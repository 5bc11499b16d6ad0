package sfu

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// sinkSwitch is a participant's Sink: the client's current session. A
// resume points it at the new session (replace); events sent meanwhile go
// to one or the other, and the resume sends a fresh offer so nothing
// needed is lost.
type sinkSwitch struct {
	mu  sync.RWMutex // held for reading by Send, for writing by replace
	cur Sink
}

func newSinkSwitch(s Sink) *sinkSwitch { return &sinkSwitch{cur: s} }

func (sw *sinkSwitch) Send(ev Event) {
	sw.mu.RLock()
	defer sw.mu.RUnlock()
	sw.cur.Send(ev)
}

func (sw *sinkSwitch) Close(reason Reason) { sw.current().Close(reason) }

func (sw *sinkSwitch) current() Sink {
	sw.mu.RLock()
	defer sw.mu.RUnlock()
	return sw.cur
}

// replace makes s the current sink and returns the one it replaces. In
// the same step the old sink gets last and s gets first: no event sent
// through the switch comes after last on the old sink or before first on
// s, and last is queued before is(old) turns false (the old session closes
// itself once it sees that, and must have last to send before its close).
func (sw *sinkSwitch) replace(s Sink, last, first Event) Sink {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	old := sw.cur
	old.Send(last)
	s.Send(first)
	sw.cur = s
	return old
}

// is reports whether s is the current sink.
func (sw *sinkSwitch) is(s Sink) bool { return sw.current() == s }

// newResumeToken is 128 random bits: whoever holds it may take the
// participant over, so it is a secret like a session cookie.
func newResumeToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ResumeParams describes a join that resumes an earlier session.
type ResumeParams struct {
	Token      string // joined.resume of the earlier session
	Room       string // must be the earlier session's room
	Sink       Sink   // the new session
	RequestID  string // the join message's id
	RestartICE bool   // the client kept its peer connections: restart ICE on them
}

// Resume gives the participant that token names to a new session: the old
// session (if still open) is told it was replaced and closed, the new one
// gets JoinedEvent with Resumed set, and the sub connection is offered
// again: with an ICE restart if the client kept its peer connections, or
// afresh (and the pub connection closed, so its tracks end) if not.
// ErrResumeUnknown means the token names no participant in that room (it
// was removed, or never existed): join afresh.
func (s *SFU) Resume(rp ResumeParams) (*Participant, error) {
	s.mu.Lock()
	closing := s.closing
	p := s.resumable[rp.Token]
	s.mu.Unlock()
	if closing {
		return nil, ErrShuttingDown
	}
	if p == nil || p.room.name != rp.Room {
		return nil, ErrResumeUnknown
	}
	old, replaced, err := p.takeOver(rp)
	if old == nil {
		return nil, ErrResumeUnknown
	}
	old.Close(ReasonReplaced)
	p.log.Info("session resumed", "ice_restart", rp.RestartICE)
	for _, pc := range replaced {
		if cerr := pc.Close(); cerr != nil {
			p.log.Debug("close replaced connection", "err", cerr)
		}
	}
	if err != nil {
		p.remove(ReasonTimeout)
		return nil, err
	}
	if !rp.RestartICE {
		p.runSync() // the new sub connection: its tracks and its offer
	}
	return p, nil
}

// takeOver gives p to the session rp.Sink; old is nil if p is gone. The
// switch happens with negMu and pubMu held, which the offers and answers
// the relay sends and the client's messages (Offer, Answer, AddCandidate)
// hold too: each belongs wholly to the old session or wholly to the new
// one. So the old connections' offer, answer or candidates never reach the
// new session, nor the old client's reach the new connections. With
// RestartICE the restart offer is sent; otherwise the old connections are
// taken out of use and returned in replaced, for the caller to close, and
// a new sub connection is made (which runSync then offers).
func (p *Participant) takeOver(rp ResumeParams) (old Sink, replaced []*webrtc.PeerConnection, err error) {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if !rp.RestartICE {
		// The client has new connections: what the old ones still gather
		// is for no session (the new one would take it for its own).
		p.subGate.retire()
		p.pubGate.retire()
	}
	old, ok := p.room.resume(p, rp)
	if !ok {
		return nil, nil, nil
	}
	if rp.RestartICE {
		p.restartSubLocked()
		return old, nil, nil
	}
	if p.pubPC != nil {
		replaced = append(replaced, p.pubPC)
		p.pubPC = nil
	}
	p.pubGate = p.pubGate.fresh()
	sub, err := p.replaceSubLocked()
	if sub != nil {
		replaced = append(replaced, sub)
	}
	return old, replaced, err
}

// resume makes rp.Sink p's session under the room lock, so that JoinedEvent
// comes before any later room event on the new session; the old session's
// last event is participant_left (reason replaced) with its own id. false
// if p is gone.
func (r *Room) resume(p *Participant, rp ResumeParams) (old Sink, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return nil, false
	}
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
	ev := r.joinedEventLocked(p, rp.RequestID)
	ev.Resumed = true
	old = p.sink.replace(rp.Sink, ParticipantLeftEvent{ID: p.id, Reason: ReasonReplaced}, ev)
	if p.listening() == ListenMix && r.mix != nil {
		p.sink.Send(r.mixPublishedLocked()) // joined lists participants' tracks, not the mix's
	}
	return old, true
}

// restartSubLocked offers sub again with new ICE credentials; an offer
// the old session never answered is replaced. negMu must be held.
func (p *Participant) restartSubLocked() {
	if p.offerOutstanding && p.taken != nil {
		p.offerOutstanding = false // the relay's own offer: the next one replaces it
	} else if p.offerOutstanding {
		// The old session's offer will never be answered: roll it back so
		// that the restart is a new offer from a stable state.
		if err := p.subPC.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			p.log.Debug("roll back unanswered sub offer", "err", err)
		}
		p.offerOutstanding = false
	}
	p.restartICE = true
	p.offerLocked()
}

// replaceSubLocked puts a new sub connection in place of the old one,
// which it returns for the caller to close (nil if p was removed
// meanwhile: close has taken or will take it); runSync then offers the
// new one with the same tracks. negMu must be held.
func (p *Participant) replaceSubLocked() (old *webrtc.PeerConnection, err error) {
	if p.isGone() {
		return nil, ErrClosed
	}
	old = p.subPC
	for _, st := range p.down {
		st.down.Unsubscribe()
	}
	clear(p.down)
	p.dropTakenLocked()
	gate := p.subGate.fresh()
	pc, sc, err := p.newOfferedSub(gate)
	if err == nil {
		if err = addJoinSection(pc); err != nil {
			_ = pc.Close()
		}
	}
	if err != nil {
		return old, err
	}
	p.subPC, p.subGate, p.subConn = pc, gate, sc
	p.offerOutstanding, p.needOffer = false, true
	return old, nil
}

// keepResumable registers p's resume token; forgetResumable drops it when
// p is removed.
func (s *SFU) keepResumable(p *Participant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumable[p.resumeToken] = p
}

func (s *SFU) forgetResumable(p *Participant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resumable[p.resumeToken] == p {
		delete(s.resumable, p.resumeToken)
	}
}

// disconnectedFor starts the grace period if sink is still p's session: a
// session replaced by a resume ending later changes nothing.
func (p *Participant) disconnectedFor(sink Sink) {
	if !p.sink.is(sink) {
		return
	}
	p.startGrace()
}

// startGrace starts the grace period: unless p is resumed or removed
// otherwise first, it is removed with reason timeout when it ends.
func (p *Participant) startGrace() {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	if p.gone || p.grace != nil {
		return
	}
	grace := p.sfu.cfg.GracePeriod
	p.log.Info("connection lost; keeping the participant for the grace period", "grace", grace)
	var t *time.Timer
	t = time.AfterFunc(grace, func() {
		p.room.mu.Lock()
		current := p.grace == t
		p.room.mu.Unlock()
		if current { // not stopped by a resume that raced with the timer
			p.remove(ReasonTimeout)
		}
	})
	p.grace = t
}
