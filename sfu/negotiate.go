package sfu

import (
	"errors"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// subTrack is one track p receives: its down track and the sender that
// carries it on p's sub connection.
type subTrack struct {
	down   *media.DownTrack
	sender *webrtc.RTPSender
	gate   *media.Gate // down's gate: nil for the room's own tracks (remote.go)
}

// requestSync brings p's sub connection in line with the room's tracks
// soon, in a goroutine of its own; requests made while one is queued are
// folded into it. Safe to call with room.mu held.
func (p *Participant) requestSync() {
	if p.via != nil {
		return // a proxy (proxy.go) has no connection: no goroutine per proxy per change
	}
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
	switch {
	case p.subPC == nil && p.taken == nil: // SubNone
		return
	case p.slots != nil: // SubAnswered
		p.syncSlotsLocked()
		return
	}
	want, ok := p.room.tracksFor(p)
	if !ok {
		return
	}
	changed := false
	for up, gate := range want {
		if st, ok := p.down[up]; ok && st.gate == gate {
			continue
		} else if ok {
			// The same track now comes through another gate (a remote
			// publisher removed and added again): a new down track.
			p.removeDownLocked(up, st)
		}
		d := media.NewDownTrack(up, media.DownTrackParams{OnFirstPacket: p.firstPacketHook(up), Gate: gate, Sub: p.subConn})
		var sender *webrtc.RTPSender
		if p.taken != nil {
			p.taken.add(d) // bound when the answer accepts it
		} else {
			var err error
			if sender, err = p.subPC.AddTrack(d); err != nil {
				p.log.Error("add track to sub", "track", up.ID(), "err", err)
				continue
			}
		}
		p.down[up] = subTrack{down: d, sender: sender, gate: gate}
		p.sent.add(d)
		var rtcpFrom media.RTCPReader
		if sender != nil {
			rtcpFrom = sender
		}
		d.Subscribe(rtcpFrom) // false if it just ended: the sync that follows removes it
		changed = true
	}
	for up, st := range p.down {
		if _, keep := want[up]; keep {
			continue
		}
		p.removeDownLocked(up, st)
		changed = true
	}
	if changed {
		p.needOffer = true
	}
	if p.needOffer && !p.offerOutstanding {
		p.offerLocked()
	}
}

// removeDownLocked stops forwarding up to p and takes it off the sub
// connection. negMu must be held.
func (p *Participant) removeDownLocked(up *media.UpTrack, st subTrack) {
	st.down.Unsubscribe()
	p.sent.retire(st.down)
	if p.taken != nil {
		p.taken.remove(st.down)
	} else if err := p.subPC.RemoveTrack(st.sender); err != nil {
		p.log.Debug("remove track from sub", "track", up.ID(), "err", err)
	}
	delete(p.down, up)
}

// offerLocked sends a new sub offer. negMu must be held and no offer be
// outstanding.
func (p *Participant) offerLocked() {
	p.needOffer = false
	if p.taken != nil {
		sdp, err := p.taken.offer(p.restartICE)
		p.restartICE = false
		if err != nil {
			p.log.Error("make the sub offer of a taken-over connection", "err", err)
			return
		}
		p.offerOutstanding = true
		p.sink.Send(DescriptionEvent{PC: Sub, Type: webrtc.SDPTypeOffer, SDP: withPtime(sdp)})
		return
	}
	var opts *webrtc.OfferOptions
	if p.restartICE {
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.restartICE = false
	}
	offer, err := p.subPC.CreateOffer(opts)
	if err != nil {
		p.logOfferError("create sub offer", err)
		return
	}
	if err := p.subPC.SetLocalDescription(offer); err != nil {
		p.logOfferError("set sub offer", err)
		return
	}
	p.offerOutstanding = true
	p.sink.Send(DescriptionEvent{PC: Sub, Type: webrtc.SDPTypeOffer, SDP: withPtime(offer.SDP)})
	p.subGate.setLocalReady()
}

// logOfferError logs a failed sub offer: at debug level when the
// connection has just closed (the participant is leaving: every teardown
// under load has some), as an error otherwise.
func (p *Participant) logOfferError(what string, err error) {
	if errors.Is(err, webrtc.ErrConnectionClosed) || p.subPC == nil || p.subPC.ConnectionState() == webrtc.PeerConnectionStateClosed {
		p.log.Debug(what+" on a closed connection", "err", err)
		return
	}
	p.log.Error(what, "err", err)
}
