package sfu

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Participant is one client in a room. Signaling calls its exported methods
// from the client's session; they are safe for concurrent use. Offer,
// Answer and AddCandidate take that session (from): one that a resume has
// replaced is ignored, as it has been told (participant_left) and is being
// closed, and its connections are not the current ones.
type Participant struct {
	id, name string
	room     *Room
	sfu      *SFU
	sink     *sinkSwitch // the client's current session
	log      *slog.Logger

	resumeToken string // names p in SFU.resumable; set once

	joinedAt   time.Time // when the join arrived, for the join latency
	joinReqID  string    // the join message's id
	firstMedia atomic.Bool

	listen    Listen       // what p receives while in the audience; set once
	offersSub bool         // set once: the relay offers p's sub connection (SubOffered)
	hidden    bool         // set once: a cluster edge's link (JoinParams.Hidden)
	ownOnly   bool         // set once: hears no remote publishers (JoinParams.OwnOnly)
	via       *Participant // set once: a proxy's link (proxy.go); nil for others
	proxyID   string       // set once: a proxy's id on the relay serving it

	// Guarded by room.mu.
	role   Role
	tracks []*media.UpTrack // published, live
	gone   bool             // removed from the room; never set back
	grace  *time.Timer

	// Guarded by room.mu: the mic workflow (mic.go) and mutes.
	mic                  micState
	micGen               uint64 // bumped on every change, so a stale expiry does nothing
	micTimer             *time.Timer
	hostMuted, selfMuted bool
	// ticket names an invitation that crosses relays (proxy.go): on the
	// owner, a proxy's (a key of Room.tickets); on an edge, the one the
	// owner gave its listener's invitation.
	ticket string

	// The sub connection. Lock order: negMu, then pubMu, then room.mu.
	negMu            sync.Mutex
	subPC            *webrtc.PeerConnection
	down             map[*media.UpTrack]subTrack // guarded by negMu
	offerOutstanding bool                        // guarded by negMu
	needOffer        bool                        // guarded by negMu: changes wait for the next offer
	restartICE       bool                        // guarded by negMu: the next offer restarts ICE (resume)
	subGate          *candidateGate              // guarded by negMu; replaced with the sub connection
	subConn          *media.SubConn              // guarded by negMu; replaced with the sub connection (nil: pion's path only)
	taken            *takenSub                   // guarded by negMu: the sub connection taken over from pion (takeover.go), or nil; subPC is then nil
	syncQueued       atomic.Bool
	sent             sentCount // packets written on the sub connection's down tracks (sent.go)
	slots            []*slot   // guarded by negMu; set once at join when the client offered sub (httpsub.go)
	fullAnswers      bool      // set once: answers carry every candidate (FullAnswers)

	pubMu  sync.Mutex
	pubPC  *webrtc.PeerConnection // guarded by pubMu; nil until the client's first offer
	pubNum uint64                 // guarded by pubMu: numbers the pub connections; pubPC's
	early  earlyPub               // guarded by room.mu: the early pub (earlypub.go)

	pubGate   *candidateGate // guarded by pubMu; replaced with each new pub connection
	closeOnce sync.Once
}

// ID is the participant's id.
func (p *Participant) ID() string { return p.id }

// Role is the participant's current role.
func (p *Participant) Role() Role {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.role
}

func (p *Participant) info() Info { return Info{ID: p.id, Name: p.name, Role: p.role} }

func (p *Participant) isGone() bool {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.gone
}

// newPeerConnection creates one of p's connections with the handlers both
// share, with api, or if nil the relay's for pc.
func (p *Participant) newPeerConnection(pc PC, gate *candidateGate, api *webrtc.API) (*webrtc.PeerConnection, error) {
	if api == nil {
		api = p.sfu.api.sub
		if pc == Pub {
			api = p.sfu.api.pub
		}
	}
	conn, err := p.newPeerConnectionWith(api, pc, gate, nil)
	if err == nil && pc == Sub {
		p.sfu.watchSelected(conn)
	}
	return conn, err
}

// newPeerConnectionWith creates one of p's connections from api; onClosed,
// if not nil, is called when it has closed.
func (p *Participant) newPeerConnectionWith(api *webrtc.API, pc PC, gate *candidateGate, onClosed func()) (*webrtc.PeerConnection, error) {
	cfg, err := p.sfu.connConfig()
	if err != nil {
		return nil, fmt.Errorf("create %s peer connection: %w", pc, err)
	}
	conn, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("create %s peer connection: %w", pc, err)
	}
	conn.OnICECandidate(gate.onLocal)
	conn.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			p.log.Info("ICE transport failed", "pc", pc)
			p.startGrace()
		case webrtc.PeerConnectionStateClosed:
			if onClosed != nil {
				onClosed()
			}
		}
	})
	return conn, nil
}

// Offer handles the client's offer on pub: the answer goes to the sink as
// a DescriptionEvent carrying reqID, then the relay's pub candidates.
func (p *Participant) Offer(from Sink, reqID, sdp string) error {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if !p.sink.is(from) {
		return nil
	}
	// Hosts and guests, and audience members with a request or
	// invitation pending (an early pub, earlypub.go).
	reuse, early, err := p.admitPubOffer()
	if err != nil {
		return err
	}
	if n := sendingSections(sdp); n > p.sfu.cfg.MaxTracks {
		return fmt.Errorf("%w: the offer sends %d tracks; a participant may publish at most %d", ErrBadRequest, n, p.sfu.cfg.MaxTracks)
	}
	if !reuse {
		if old := p.detachPubLocked(); old != nil { // an early pub whose request ended
			go p.closePubConn(old)
		}
		if err := p.newPubConnLocked(); err != nil {
			return err
		}
		if early && !p.room.markEarly(p, p.pubNum) {
			go p.closePubConn(p.detachPubLocked())
			return fmt.Errorf("%w: your mic request or invitation has ended; audience members may not publish", ErrForbidden)
		}
	}
	err = p.pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadDescription, err)
	}
	answer, err := p.pubPC.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: cannot answer: %v", ErrBadDescription, err)
	}
	if answer, err = p.setAnswer(p.pubPC, answer); err != nil {
		return fmt.Errorf("set pub answer: %w", err)
	}
	p.sink.Send(DescriptionEvent{RequestID: reqID, PC: Pub, Type: webrtc.SDPTypeAnswer, SDP: withPtime(answer.SDP)})
	p.pubGate.setLocalReady()
	p.pubGate.setRemoteReady(p.pubPC)
	return nil
}

// Answer completes the relay's outstanding offer on sub.
func (p *Participant) Answer(from Sink, sdp string) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isGone() {
		return ErrClosed
	}
	if !p.sink.is(from) { // an answer to an offer of the replaced connection
		return nil
	}
	if !p.offerOutstanding {
		return ErrNoOffer
	}
	if p.taken != nil {
		if err := p.taken.answer(sdp); err != nil {
			return fmt.Errorf("%w: %v", ErrBadDescription, err)
		}
	} else if err := p.subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadDescription, err)
	}
	p.offerOutstanding = false
	if p.taken == nil {
		p.subGate.setRemoteReady(p.subPC)
	}
	if p.needOffer {
		p.offerLocked()
	}
	return nil
}

// AddCandidate adds one of the client's ICE candidates; nil (the end of
// candidates) is accepted and needs nothing.
func (p *Participant) AddCandidate(from Sink, pc PC, c *webrtc.ICECandidateInit) error {
	if c == nil {
		return nil
	}
	if pc == Pub {
		p.pubMu.Lock()
		defer p.pubMu.Unlock()
		if !p.sink.is(from) {
			return nil
		}
		return p.pubGate.addRemote(p.pubPC, *c)
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if !p.sink.is(from) {
		return nil
	}
	if p.taken != nil {
		// The relay is ICE lite: the client's checks reveal its address,
		// and it nominates; its candidates are not needed.
		return nil
	}
	return p.subGate.addRemote(p.subPC, *c)
}

// Leave removes the participant at its own request.
func (p *Participant) Leave() { p.remove(ReasonLeft) }

// Disconnected starts the grace period after the WebSocket of session
// sink failed: unless the participant is resumed or removed otherwise
// first, it is removed with reason timeout when the period ends. Its
// tracks stay published meanwhile (silent while no media arrives). A
// session that a resume replaced changes nothing.
func (p *Participant) Disconnected(sink Sink) { p.disconnectedFor(sink) }

// Owns reports whether sink is the participant's current session: false
// for a session a resume has replaced, which must not act for it any more.
func (p *Participant) Owns(sink Sink) bool { return p.sink.is(sink) }

// ResumeToken is the secret a later join sends to resume this participant.
func (p *Participant) ResumeToken() string { return p.resumeToken }

// closePub closes the pub connection (the participant left the mic); a
// later offer opens a new one.
func (p *Participant) closePub() {
	p.pubMu.Lock()
	pc := p.detachPubLocked()
	p.pubMu.Unlock()
	p.closePubConn(pc)
}

// detachPubLocked takes the pub connection out of use and returns it (nil
// if none); its late candidates go nowhere. pubMu must be held.
func (p *Participant) detachPubLocked() *webrtc.PeerConnection {
	pc := p.pubPC
	p.pubPC = nil
	p.pubGate.retire()
	p.pubGate = p.pubGate.fresh()
	return pc
}

// closePubConn closes a pub connection detachPubLocked returned.
func (p *Participant) closePubConn(pc *webrtc.PeerConnection) {
	if pc == nil {
		return
	}
	if err := pc.Close(); err != nil {
		p.log.Debug("close pub", "err", err)
	}
}

// remove takes p out of its room, tells the others, and closes its
// connections. Only the first call does anything.
func (p *Participant) remove(reason Reason) {
	if !p.room.remove(p, reason) {
		return
	}
	p.sfu.forgetResumable(p)
	if reason != ReasonLeft && reason != ReasonShutdown {
		p.log.Info("participant removed", "reason", reason)
	}
	p.close()
	if reason != ReasonLeft {
		p.sink.Close(reason)
	}
}

// close stops forwarding to p and closes its peer connections.
func (p *Participant) close() {
	p.closeOnce.Do(func() {
		p.negMu.Lock()
		for _, st := range p.down {
			st.down.Unsubscribe()
		}
		clear(p.down)
		p.clearSlotsLocked()
		p.dropTakenLocked()
		sub := p.subPC
		p.negMu.Unlock()

		p.pubMu.Lock()
		pub := p.pubPC
		p.pubMu.Unlock()
		if pub != nil {
			if err := pub.Close(); err != nil {
				p.log.Debug("close pub", "err", err)
			}
		}
		if sub == nil { // SubNone
			return
		}
		if err := sub.Close(); err != nil {
			p.log.Debug("close sub", "err", err)
		}
	})
}

// firstMediaWritten records the join latency at the first media packet
// written to p: each of p's down tracks calls it at its first packet.
func (p *Participant) firstMediaWritten() {
	if !p.firstMedia.Load() && p.firstMedia.CompareAndSwap(false, true) {
		p.sfu.cfg.Metrics.JoinLatency.Observe(time.Since(p.joinedAt).Seconds())
	}
}

// onTrack is the OnTrack handler of p's pub connection number conn: it
// publishes the track (or holds it, on an early pub: earlypub.go) and
// forwards it until it ends. pion runs it in a goroutine of its own.
func (p *Participant) onTrack(conn uint64, pc *webrtc.PeerConnection, pd *pubDirect, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	if remote.Kind() != webrtc.RTPCodecTypeAudio {
		p.log.Info("ignoring a non-audio track", "kind", remote.Kind())
		_ = receiver.Stop()
		return
	}
	t := p.sfu.newUpTrack(newID("t_"), p.id, receiver, pc)
	fate, held := p.room.publishOrHold(p, t, conn, remote)
	if fate == trackRefused {
		_ = receiver.Stop()
		return
	}
	go drainRTCP(receiver, t)
	if fate == trackHeld {
		p.readHeld(held)
		return
	}
	// Published: from here the relay's socket readers may take over the
	// track's packets (directingest.go); pion's reader ends with the
	// track either way.
	undo := pd.add(uint32(remote.SSRC()), t)
	t.ReadLoop(remote)
	undo()
	p.room.unpublish(p, t)
}

// newUpTrack is a published audio track with id and streamID, received
// by receiver. With pc (a publisher's pub connection) the relay sends
// the publisher its own NACKs and receiver reports through pc while the
// track is read; nil for a cluster link, whose pion interceptors do.
func (s *SFU) newUpTrack(id, streamID string, receiver *webrtc.RTPReceiver, pc *webrtc.PeerConnection) *media.UpTrack {
	codec := receiver.Track().Codec()
	var fb *media.Feedback
	var rtcpOut media.RTCPWriter
	if pc != nil {
		fb, rtcpOut = s.feedback, pc
	}
	var levelExt uint8
	for _, ext := range receiver.GetParameters().HeaderExtensions {
		if ext.URI == sdp.AudioLevelURI {
			levelExt = uint8(ext.ID)
		}
	}
	return media.NewUpTrack(media.UpTrackParams{
		ID:        id,
		Kind:      "audio",
		StreamID:  streamID,
		Batch:     media.BatchOf(s.cfg.ICE.UDPMux),
		LevelExt:  levelExt,
		Metrics:   s.cfg.Metrics.Media,
		Feedback:  fb,
		RTCP:      rtcpOut,
		ClockRate: codec.ClockRate,
		NACK:      slices.ContainsFunc(codec.RTCPFeedback, func(fb webrtc.RTCPFeedback) bool { return fb.Type == "nack" && fb.Parameter == "" }),
	})
}

// drainRTCP reads the publisher's RTCP so that its buffer never fills,
// and gives t its sender reports (for the LSR and DLSR of the relay's
// receiver reports); t may be nil (a cluster link: pion's interceptors
// see the reports). It ends with the receiver.
func drainRTCP(r *webrtc.RTPReceiver, t *media.UpTrack) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		if t == nil {
			continue
		}
		for _, pkt := range pkts {
			if sr, ok := pkt.(*rtcp.SenderReport); ok {
				t.SenderReport(sr.SSRC, sr.NTPTime)
			}
		}
	}
}
