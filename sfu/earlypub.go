package sfu

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/lianmai/relay/media"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// The early pub (docs/protocol.md, "Early pub"): an audience member with a
// pending mic request or invitation may negotiate its pub connection
// before a host (or it) accepts, so that ICE and DTLS are done when it
// goes on the mic. Until then nothing it sends is forwarded or announced:
// a track that sends packets is held, its reader dropping every packet,
// and is published the moment the participant is accepted. If the request
// or invitation ends without a seat, the relay closes the connection and
// says so in mic_rejected (pub_closed).

// earlyPub is what the room knows of a participant's early pub. Guarded
// by room.mu.
type earlyPub struct {
	conn uint64       // the pub connection (Participant.pubNum) negotiated while pending; 0 if none
	dead uint64       // the last early pub closed because its request ended without a seat
	held []*heldTrack // tracks of conn that sent packets before acceptance
}

// heldTrack is a track of an early pub: published at acceptance.
type heldTrack struct {
	t    *media.UpTrack
	gate *earlyGate
}

// earlyGate is a held track's packet source: it drops every packet read
// before the participant was accepted, so that nothing a participant sent
// before it was on the mic reaches anyone.
type earlyGate struct {
	r       media.RTPReader
	openAt  atomic.Int64 // media.Now() when accepted; 0 while pending
	dropped prometheus.Counter
}

// Read implements media.RTPReader. A packet counts as read before the
// acceptance when Read returned before open was called: its clock reading
// is taken after the read and compared with the acceptance's.
func (g *earlyGate) Read(b []byte) (int, interceptor.Attributes, error) {
	for {
		n, a, err := g.r.Read(b)
		if err != nil {
			return n, a, err
		}
		now := media.Now()
		if at := g.openAt.Load(); at != 0 && now >= at {
			return n, a, nil
		}
		g.dropped.Inc()
	}
}

// open lets every packet read from now on through.
func (g *earlyGate) open() { g.openAt.Store(max(media.Now(), 1)) }

// Outcomes of an early pub, for relay_early_pubs_total.
const (
	earlyAccepted = "accepted" // the participant went on the mic: it is its pub connection now
	earlyClosed   = "closed"   // the request or invitation ended without a seat: the relay closed it
)

// admitPubOffer decides, with pubMu held, whether p may offer on pub now
// (a host or guest; or an audience member with a pending request or
// invitation: an early pub), and whether the offer renegotiates the
// current pub connection (reuse) or needs a new one. early: a new one
// would be an early pub (Offer records it with markEarly).
func (p *Participant) admitPubOffer() (reuse, early bool, err error) {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return false, false, ErrClosed
	}
	cur := p.pubNum
	if p.pubPC == nil {
		cur = 0
	}
	if p.role.publishes() {
		return cur != 0 && cur != p.early.dead, false, nil
	}
	if p.mic == micNone {
		return false, false, fmt.Errorf("%w: audience members may not publish; send mic_request (or accept an invitation) first", ErrForbidden)
	}
	if p.ticket != "" && r.edge.Load() != nil {
		return false, false, fmt.Errorf("%w: this relay only relays the room; accept the invitation (mic_accept) to move to its hosts' relay, and publish there", ErrForbidden)
	}
	if cur != 0 && cur == p.early.conn {
		return true, false, nil
	}
	return false, true, nil
}

// markEarly records p's new pub connection conn as its early pub, if its
// request or invitation is still pending (false: it ended meanwhile, and
// the connection must go).
func (r *Room) markEarly(p *Participant, conn uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone || p.role.publishes() {
		return !p.gone // accepted meanwhile: an ordinary pub connection
	}
	if p.mic == micNone {
		return false
	}
	p.early.conn = conn
	return true
}

// pubTrackFate is what becomes of a track that arrived on pub.
type pubTrackFate int

const (
	trackRefused   pubTrackFate = iota // p may not publish it: stop it
	trackPublished                     // announced and forwarded
	trackHeld                          // an early pub's: dropped until p is accepted
)

// publishOrHold publishes t, which arrived on p's pub connection number
// conn, or holds it if that is p's early pub and p is still pending.
func (r *Room) publishOrHold(p *Participant, t *media.UpTrack, conn uint64, remote media.RTPReader) (pubTrackFate, *heldTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case p.gone || conn == p.early.dead:
		return trackRefused, nil
	case p.role.publishes():
		if !r.publishLocked(p, t) {
			return trackRefused, nil
		}
		return trackPublished, nil
	case p.mic != micNone && conn == p.early.conn:
		h := &heldTrack{t: t, gate: &earlyGate{r: remote, dropped: r.sfu.cfg.Metrics.EarlyPubDropped}}
		p.early.held = append(p.early.held, h)
		return trackHeld, h
	}
	return trackRefused, nil
}

// readHeld forwards a held track's packets from p's acceptance on, until
// the track ends (its connection closed or renegotiated away).
func (p *Participant) readHeld(h *heldTrack) {
	h.t.ReadLoop(h.gate)
	r := p.room
	r.mu.Lock()
	p.early.held = slices.DeleteFunc(p.early.held, func(x *heldTrack) bool { return x == h })
	r.mu.Unlock()
	r.unpublish(p, h.t) // if it was published
}

// acceptEarlyLocked makes q's early pub, now that q is a guest, its pub
// connection: held tracks are published and forwarded from the next
// packet read. room.mu must be held, after q's role changed.
func (r *Room) acceptEarlyLocked(q *Participant) {
	if q.early.conn == 0 {
		return
	}
	r.sfu.cfg.Metrics.EarlyPubs.WithLabelValues(earlyAccepted).Inc()
	held := q.early.held
	q.early.conn, q.early.held = 0, nil
	for _, h := range held {
		if r.publishLocked(q, h.t) {
			h.gate.open()
		}
	}
}

// endEarlyLocked closes q's early pub, if it has one, because its request
// or invitation ended without a seat; true if it had one (mic_rejected
// then says pub_closed). room.mu must be held.
func (r *Room) endEarlyLocked(q *Participant) bool {
	conn := q.early.conn
	if conn == 0 {
		return false
	}
	r.sfu.cfg.Metrics.EarlyPubs.WithLabelValues(earlyClosed).Inc()
	q.early.conn, q.early.held, q.early.dead = 0, nil, conn
	go q.closePubNumbered(conn) // pubMu comes before room.mu
	return true
}

// closePubNumbered closes p's pub connection if it is still number conn
// (a new one the client made meanwhile stays).
func (p *Participant) closePubNumbered(conn uint64) {
	p.pubMu.Lock()
	var pc *webrtc.PeerConnection
	if p.pubNum == conn {
		pc = p.detachPubLocked()
	}
	p.pubMu.Unlock()
	p.closePubConn(pc)
}

// newPubConnLocked makes p's next pub connection and numbers it. pubMu
// must be held.
func (p *Participant) newPubConnLocked() error {
	var api *webrtc.API
	var pd *pubDirect
	if d := media.DirectOf(p.sfu.cfg.ICE.UDPMux); d != nil {
		a, keys, err := p.sfu.api.newPubAPI()
		if err != nil {
			return err
		}
		api, pd = a, &pubDirect{d: d, keys: keys, log: p.log}
	}
	conn, err := p.newPeerConnection(Pub, p.pubGate, api)
	if err != nil {
		return err
	}
	if pd != nil {
		pd.pc = conn
	}
	p.pubNum++
	num := p.pubNum
	conn.OnTrack(func(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
		p.onTrack(num, conn, pd, remote, receiver)
	})
	p.pubPC = conn
	return nil
}
