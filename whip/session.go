package whip

import (
	"net/netip"
	"sync"

	"github.com/lianmai/relay/sfu"
)

// session is one WHIP or WHEP session: a participant driven over HTTP.
// It implements sfu.Sink. Of the room's events it needs only the relay's
// answer (which carries every candidate: sfu.JoinParams.FullAnswers);
// the rest has no way to an HTTP client and is dropped (but for a WHIP
// guest taken off the mic, who then leaves). When the relay
// removes the participant (kicked, timeout, shutdown) the session ends:
// the client sees its peer connection close, and the session URL then
// answers 404.
type session struct {
	srv   *Server
	id    string // set once by Server.add
	kind  string // KindWHIP or KindWHEP
	room  string
	addr  netip.Addr // the client's, as the limits count it
	pc    sfu.PC     // the connection the client's candidates are for
	ufrag string     // the ICE username fragment of the client's offer

	mu     sync.Mutex
	p      *sfu.Participant // guarded by mu; nil until joined
	answer string           // guarded by mu; the relay's answer, taken once
}

// Send implements sfu.Sink; it never blocks.
func (ss *session) Send(ev sfu.Event) {
	switch ev := ev.(type) {
	case sfu.DescriptionEvent:
		if ev.PC == ss.pc {
			ss.mu.Lock()
			ss.answer = ev.SDP
			ss.mu.Unlock()
		}
	case sfu.RoleChangedEvent:
		// A WHIP guest a host takes off the mic is an audience member
		// with nothing to hear (it has no sub connection) and no way to
		// ask for the mic again: it leaves. Not from here: the room's
		// lock is held.
		p := ss.participant()
		if ss.kind == KindWHIP && p != nil && ev.Participant == p.ID() && ev.Role == sfu.RoleAudience {
			go func() {
				p.Leave()
				ss.srv.forget(ss)
			}()
		}
	}
}

// Close implements sfu.Sink: the relay removed the participant.
func (ss *session) Close(reason sfu.Reason) {
	ss.srv.log.Info("session ended by the relay", "kind", ss.kind, "room", ss.room, "reason", reason)
	ss.srv.forget(ss)
}

func (ss *session) participant() *sfu.Participant {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.p
}

// join adds the session's participant to its room and returns the
// relay's answer to offer. On error nothing of it is left in the room.
func (ss *session) join(name string, role sfu.Role, listen sfu.Listen, offer string) (string, error) {
	jp := sfu.JoinParams{Room: ss.room, Name: name, Role: role, Sink: ss, Listen: listen, FullAnswers: true}
	if ss.kind == KindWHIP {
		jp.Sub = sfu.SubNone
	} else {
		jp.Sub, jp.SubOffer = sfu.SubAnswered, offer
	}
	p, err := ss.srv.sfu.Join(jp)
	if err != nil {
		return "", err
	}
	ss.mu.Lock()
	ss.p = p
	ss.mu.Unlock()
	if ss.kind == KindWHIP {
		if err := p.Offer(ss, "", offer); err != nil {
			p.Leave()
			return "", err
		}
	}
	ss.mu.Lock()
	answer := ss.answer
	ss.answer = ""
	ss.mu.Unlock()
	if answer == "" { // removed while joining (kicked at once, or a shutdown)
		p.Leave()
		return "", sfu.ErrClosed
	}
	return answer, nil
}
