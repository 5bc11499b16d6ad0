package sfu

import (
	"fmt"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// SubMode says who offers a participant's sub connection. The protocol's
// clients take the relay's offers; clients over HTTP (WHIP and WHEP,
// package whip) send one offer and get one answer, and can never be
// offered anything.
type SubMode string

// Sub modes.
const (
	// SubOffered: the relay offers sub and renegotiates it as tracks
	// come and go (the protocol's sub).
	SubOffered SubMode = ""
	// SubNone: no sub connection (a WHIP publisher receives nothing).
	SubNone SubMode = "none"
	// SubAnswered: the client offers sub once (JoinParams.SubOffer, a
	// WHEP player's offer) and the relay answers it. Each receiving audio
	// m-section of the offer is a slot (slot.go) that carries one of the
	// tracks the participant should receive, in room order; the tracks
	// come and go inside the slots without renegotiation, and tracks
	// beyond the slots are not heard.
	SubAnswered SubMode = "answered"
)

// gatherTimeout bounds how long a full answer waits for the relay's own
// ICE candidates. With the one UDP port they are gathered at once; a
// STUN or TURN server the relay asks may be slow.
const gatherTimeout = 5 * time.Second

// openSub makes p's sub connection as jp.Sub says: nil for SubNone, and
// for SubAnswered also the answer, to send once p has joined
// (sendSubAnswer). On error nothing is left open.
func (p *Participant) openSub(jp JoinParams) (*webrtc.PeerConnection, *webrtc.SessionDescription, error) {
	switch jp.Sub {
	case SubNone:
		return nil, nil, nil
	case SubAnswered:
		return p.answerSub(jp.SubOffer)
	case SubOffered:
		sub, sc, err := p.newOfferedSub(p.subGate)
		if err != nil {
			return nil, nil, err
		}
		p.subConn = sc // p is not shared yet
		if err := addJoinSection(sub); err != nil {
			_ = sub.Close()
			return nil, nil, err
		}
		return sub, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown sub mode %q", ErrBadRequest, jp.Sub)
}

// closeSub closes a sub connection openSub made, if any.
func closeSub(pc *webrtc.PeerConnection) {
	if pc != nil {
		_ = pc.Close()
	}
}

// answerSub answers the client's sub offer: one slot per audio m-section
// the client receives, at most the room's seats times the tracks each
// publisher may have.
func (p *Participant) answerSub(offer string) (*webrtc.PeerConnection, *webrtc.SessionDescription, error) {
	if offer == "" {
		return nil, nil, fmt.Errorf("%w: an offer is required", ErrBadRequest)
	}
	pc, err := p.newPeerConnection(Sub, p.subGate, nil)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*webrtc.PeerConnection, *webrtc.SessionDescription, error) {
		for _, s := range p.slots {
			s.clear()
		}
		p.slots = nil
		_ = pc.Close()
		return nil, nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadDescription, err))
	}
	most := p.sfu.cfg.Seats * p.sfu.cfg.MaxTracks
	receiving := 0
	for _, t := range pc.GetTransceivers() {
		d := t.Direction()
		if t.Kind() == webrtc.RTPCodecTypeAudio && (d == webrtc.RTPTransceiverDirectionSendonly || d == webrtc.RTPTransceiverDirectionSendrecv) {
			receiving++
		}
	}
	switch {
	case receiving == 0:
		return fail(fmt.Errorf("%w: the offer receives no audio; it needs an audio m-section with a=recvonly (or sendrecv) and Opus", ErrBadRequest))
	case receiving > most:
		return fail(fmt.Errorf("%w: the offer receives %d audio tracks; a room has at most %d", ErrBadRequest, receiving, most))
	}
	for i := range receiving {
		s := newSlot(fmt.Sprintf("audio%d", i), p.log)
		// AddTrack takes the first audio transceiver the offer made that
		// has no track yet: the slots fill the m-sections in order.
		sender, err := pc.AddTrack(s)
		if err != nil {
			return fail(fmt.Errorf("add slot %d: %w", i, err))
		}
		s.start(sender)
		p.slots = append(p.slots, s)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: cannot answer: %v", ErrBadDescription, err))
	}
	if answer, err = p.setAnswer(pc, answer); err != nil {
		return fail(fmt.Errorf("set sub answer: %w", err))
	}
	return pc, &answer, nil
}

// sendSubAnswer sends the answer answerSub made (nil: none) and lets the
// candidates through.
func (p *Participant) sendSubAnswer(answer *webrtc.SessionDescription) {
	if answer == nil {
		return
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	p.sink.Send(DescriptionEvent{PC: Sub, Type: webrtc.SDPTypeAnswer, SDP: withPtime(answer.SDP)})
	p.subGate.setLocalReady()
	p.subGate.setRemoteReady(p.subPC)
}

// setAnswer sets answer as pc's local description. With fullAnswers it
// then waits for the relay's ICE candidates (at most gatherTimeout) and
// returns the description that carries them.
func (p *Participant) setAnswer(pc *webrtc.PeerConnection, answer webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	var gathered <-chan struct{}
	if p.fullAnswers {
		gathered = webrtc.GatheringCompletePromise(pc)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return answer, err
	}
	if !p.fullAnswers {
		return answer, nil
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		p.log.Warn("ICE gathering did not complete in time; answering with the candidates gathered so far", "timeout", gatherTimeout)
	}
	return *pc.LocalDescription(), nil
}

// syncSlotsLocked puts the tracks p should receive into its slots: a slot
// whose track p should no longer receive is emptied, and empty slots take
// the tracks no slot carries yet, in room order. negMu must be held.
func (p *Participant) syncSlotsLocked() {
	want, ok := p.room.tracksInOrderFor(p)
	if !ok {
		return
	}
	wanted := make(map[*media.UpTrack]*media.Gate, len(want))
	for _, t := range want {
		wanted[t.up] = t.gate
	}
	carried := make(map[*media.UpTrack]bool, len(p.slots))
	for _, s := range p.slots {
		up, gate := s.track()
		if up == nil {
			continue
		}
		if g, ok := wanted[up]; ok && g == gate {
			carried[up] = true
		} else {
			s.clear()
		}
	}
	next := 0
	for _, s := range p.slots {
		if up, _ := s.track(); up != nil {
			continue
		}
		for next < len(want) && carried[want[next].up] {
			next++
		}
		if next == len(want) {
			return
		}
		s.assign(want[next].up, want[next].gate, p.firstMediaWritten)
		carried[want[next].up] = true
	}
}

// clearSlotsLocked empties every slot (p is leaving). negMu must be held.
func (p *Participant) clearSlotsLocked() {
	for _, s := range p.slots {
		s.clear()
	}
}
