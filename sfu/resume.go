package sfu

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// sinkSwitch is a participant's Sink: the client's current session. A
// resume points it at the new session; events sent meanwhile go to one or
// the other, and the resume sends a fresh offer so nothing needed is lost.
type sinkSwitch struct {
	cur atomic.Pointer[sinkRef]
}

type sinkRef struct{ Sink }

func newSinkSwitch(s Sink) *sinkSwitch {
	sw := &sinkSwitch{}
	sw.cur.Store(&sinkRef{s})
	return sw
}

func (sw *sinkSwitch) Send(ev Event)       { sw.cur.Load().Send(ev) }
func (sw *sinkSwitch) Close(reason Reason) { sw.cur.Load().Close(reason) }

// swap makes s the current sink and returns the one it replaces.
func (sw *sinkSwitch) swap(s Sink) Sink { return sw.cur.Swap(&sinkRef{s}).Sink }

// is reports whether s is the current sink.
func (sw *sinkSwitch) is(s Sink) bool { return sw.cur.Load().Sink == s }

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
	old, ok := p.room.resume(p, rp)
	if !ok {
		return nil, ErrResumeUnknown
	}
	old.Send(ParticipantLeftEvent{ID: p.id, Reason: ReasonReplaced})
	old.Close(ReasonReplaced)
	p.log.Info("session resumed", "ice_restart", rp.RestartICE)
	if rp.RestartICE {
		p.restartSub()
	} else {
		p.closePub()
		if err := p.replaceSub(); err != nil {
			p.remove(ReasonTimeout)
			return nil, err
		}
	}
	return p, nil
}

// resume swaps p's sink under the room lock, so that JoinedEvent comes
// before any later room event on the new session. false if p is gone.
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
	old = p.sink.swap(rp.Sink)
	ev := r.joinedEventLocked(p, rp.RequestID)
	ev.Resumed = true
	p.sink.Send(ev)
	return old, true
}

// restartSub offers sub again with new ICE credentials; an offer the old
// session never answered is replaced.
func (p *Participant) restartSub() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.offerOutstanding {
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

// replaceSub closes the sub connection and offers a new one carrying the
// same tracks: the client has new peer connections.
func (p *Participant) replaceSub() error {
	p.negMu.Lock()
	if p.isGone() { // removed meanwhile: close has taken or will take the old one
		p.negMu.Unlock()
		return ErrClosed
	}
	old := p.subPC
	for _, st := range p.down {
		st.down.Unsubscribe()
	}
	clear(p.down)
	gate := p.subGate.fresh()
	pc, err := p.newPeerConnection(Sub, gate)
	if err == nil {
		_, err = pc.CreateDataChannel("relay", nil)
		if err != nil {
			_ = pc.Close()
			err = fmt.Errorf("create data channel: %w", err)
		}
	}
	if err == nil {
		p.subPC, p.subGate = pc, gate
		p.offerOutstanding, p.needOffer = false, true
	}
	p.negMu.Unlock()
	if cerr := old.Close(); cerr != nil {
		p.log.Debug("close replaced sub", "err", cerr)
	}
	if err != nil {
		return err
	}
	p.runSync()
	return nil
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
