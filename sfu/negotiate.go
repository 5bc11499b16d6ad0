package sfu

import (
	"github.com/pion/webrtc/v4"
)

// requestSync brings p's sub connection in line with the room's tracks
// soon, in a goroutine of its own; requests made while one is queued are
// folded into it. Safe to call with room.mu held.
func (p *Participant) requestSync() {
	if p.syncQueued.CompareAndSwap(false, true) {
		go p.runSync()
	}
}

// runSync adds a down track for every track p should receive and removes
// those it should no longer, then offers if anything changed.
func (p *Participant) runSync() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	p.syncQueued.Store(false) // changes from here on queue another run
	want, ok := p.room.tracksFor(p)
	if !ok {
		return
	}
	changed := false
	for up := range want {
		if p.down[up] != nil {
			continue
		}
		d := newDownTrack(up, p)
		sender, err := p.subPC.AddTrack(d)
		if err != nil {
			p.log.Error("add track to sub", "track", up.id, "err", err)
			continue
		}
		d.sender = sender
		go d.rtcpLoop()
		p.down[up] = d
		up.addSubscriber(d) // false if it just ended: the sync that follows removes it
		changed = true
	}
	for up, d := range p.down {
		if _, keep := want[up]; keep {
			continue
		}
		up.removeSubscriber(d)
		if err := p.subPC.RemoveTrack(d.sender); err != nil {
			p.log.Debug("remove track from sub", "track", up.id, "err", err)
		}
		delete(p.down, up)
		changed = true
	}
	if changed {
		p.needOffer = true
	}
	if p.needOffer && !p.offerOutstanding {
		p.offerLocked()
	}
}

// offerLocked sends a new sub offer. negMu must be held and no offer be
// outstanding.
func (p *Participant) offerLocked() {
	p.needOffer = false
	var opts *webrtc.OfferOptions
	if p.restartICE {
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.restartICE = false
	}
	offer, err := p.subPC.CreateOffer(opts)
	if err != nil {
		p.log.Error("create sub offer", "err", err)
		return
	}
	if err := p.subPC.SetLocalDescription(offer); err != nil {
		p.log.Error("set sub offer", "err", err)
		return
	}
	p.offerOutstanding = true
	p.sink.Send(DescriptionEvent{PC: Sub, Type: webrtc.SDPTypeOffer, SDP: withPtime(offer.SDP)})
	p.subGate.setLocalReady()
}
