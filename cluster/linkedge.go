package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/media"
	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// The edge's end of a link: one per room this node serves as an edge,
// opened by the room's first listener here and closed when its last one
// leaves. It receives every track of the room once, over one peer
// connection, and shows each of the owner's publishers in the local edge
// room as a remote publisher (sfu.Room.AddRemote) with its real id, name
// and role, whose tracks are fed by the link's tracks; the edge room's
// listeners subscribe to them through the usual forwarding path.

// JoinEdge implements sfu.EdgeJoiner: jp, a listener of a room route.Owner
// owns, joins the room's edge room here; the room's first listener opens
// its link.
func (n *Node) JoinEdge(jp sfu.JoinParams, route sfu.Route) (*sfu.Participant, error) {
	n.mu.Lock()
	s := n.sfu
	n.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: this relay is starting", sfu.ErrUnavailable)
	}
	l := &edgeLink{n: n, id: newLinkID(), room: jp.Room, owner: route.Owner, ownerURL: route.URL,
		remotes: make(map[string]*sfu.Remote), tracks: make(map[string]*media.UpTrack), report: make(chan struct{}, 1),
		pres: edgePresence{needList: true, listeners: make(map[string]string)}}
	l.log = n.log.With("room", jp.Room, "owner", route.Owner, "link", l.id)
	p, created, err := s.JoinEdgeRoom(jp, sfu.EdgeHooks{OwnerURL: route.URL, OnAudience: l.onAudience, OnListener: l.onListener, OnEnd: func(*sfu.Room) { l.end() }})
	if err != nil {
		return nil, err
	}
	if created {
		l.r = p.Room()
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			p.Leave()
			return nil, sfu.ErrShuttingDown
		}
		n.edgeLinks[l] = struct{}{}
		n.m.links.WithLabelValues("edge").Set(float64(len(n.edgeLinks)))
		n.wg.Add(1)
		n.mu.Unlock()
		go l.run()
	}
	return p, nil
}

// edgeRoute routes a listener of a room this node already serves as an
// edge to its edge room, without the directory: one lookup less per
// listener, and listeners still join while NATS is away.
func (n *Node) edgeRoute(room string, role sfu.Role) (sfu.Route, bool) {
	if role != sfu.RoleAudience {
		return sfu.Route{}, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for l := range n.edgeLinks {
		if l.room == room && !l.ended.Load() {
			return sfu.Route{Kind: sfu.RouteEdge, Owner: l.owner, URL: l.ownerURL}, true
		}
	}
	return sfu.Route{}, false
}

// edgeLink is this node's link to the owner of one room it serves as an
// edge.
type edgeLink struct {
	n        *Node
	id       string
	room     string
	owner    string
	ownerURL string
	r        *sfu.Room // the edge room; set before run
	pk       bool      // a PK link (pk.go): r is this relay's room linked with room, owner's
	log      interface {
		Info(string, ...any)
		Warn(string, ...any)
		Debug(string, ...any)
	}

	report  chan struct{} // wakes run to report the listener count; buffered 1
	ended   atomic.Bool   // the edge room is gone (its last listener left)
	endOnce sync.Once
	stop    chan struct{} // closed once when the link fails (fail); guarded by mu, made on first use
	local   atomic.Int64  // this edge's listeners, as the room last said

	presMu sync.Mutex   // guards pres; taken under the edge room's lock (proxyedge.go)
	pres   edgePresence // the listeners, for the owner's proxies

	mu       sync.Mutex
	pc       *webrtc.PeerConnection
	sub      *nats.Subscription
	reported int                       // the listener count the owner has last been sent
	remotes  map[string]*sfu.Remote    // the owner's publishers, by participant id
	tracks   map[string]*media.UpTrack // the link's tracks, by track id
	closed   bool
}

// onAudience: the edge room's own audience count changed (under its lock).
func (l *edgeLink) onAudience(local int) {
	l.local.Store(int64(local))
	select {
	case l.report <- struct{}{}:
	default:
	}
}

// end: the edge room's last listener left: the link closes.
func (l *edgeLink) end() {
	l.ended.Store(true)
	select {
	case l.report <- struct{}{}:
	default:
	}
}

// run opens the link, then reports the listeners to the owner as they
// change (one by one, proxyedge.go, and their count for owners that
// predate that), until the edge room ends or the link fails; then it closes the
// link.
func (l *edgeLink) run() {
	n := l.n
	defer n.wg.Done()
	err := l.open()
	closing := false // this relay closes: its sessions end anyway, nobody is moved
	for err == nil && !closing && !l.ended.Load() {
		if !l.pk {
			l.sendPresence()
		}
		l.sendListeners()
		select {
		case <-l.report:
		case <-n.stop:
			closing = true
		case <-l.failed():
			err = errors.New("the link failed")
		}
	}
	move := err != nil && !l.ended.Load()
	if l.pk && move {
		move = false // the linked room stays; its link ends (pk_ended link_lost)
		n.sfu.PKLinkFailed(l.r.Name(), l.room)
	}
	l.close(move)
	if move {
		l.log.Warn("edge link lost: its listeners here join again (routed afresh)", "err", err)
	}
}

// failed is closed when the link fails (the owner closed it, ICE failed,
// or an event could not be applied).
func (l *edgeLink) failed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	return l.stop
}

func (l *edgeLink) fail() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	l.endOnce.Do(func() { close(l.stop) })
}

// open subscribes the link's inbox, makes its peer connection and asks the
// owner to open the link.
func (l *edgeLink) open() error {
	n := l.n
	pc, err := n.sfu.NewLinkConnection()
	if err != nil {
		return err
	}
	pc.OnTrack(l.onTrack)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		ci := c.ToJSON()
		l.publish(linkRequest{Op: opCandidate, Link: l.id, Candidate: &ci})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		// Failed: the owner went silent (ICE timeouts); closed: it closed
		// its end (DTLS close), or we did (fail is then a no-op).
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			l.fail()
		}
	})
	l.mu.Lock()
	l.pc = pc
	l.mu.Unlock()
	sub, err := n.nc.Subscribe(edgeSubject(n.cfg.NodeID, l.id), l.onEvent)
	if err != nil {
		return fmt.Errorf("subscribe the link's inbox: %w", err)
	}
	l.mu.Lock()
	l.sub = sub
	l.mu.Unlock()
	rep, err := l.request(linkRequest{Op: opOpen, Link: l.id, Room: l.room, Edge: n.cfg.NodeID, Inbox: edgeSubject(n.cfg.NodeID, l.id), PK: l.pk})
	if err != nil {
		return fmt.Errorf("open a link to %s: %w", l.owner, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("relay %s refused the link: %s", l.owner, rep.Error)
	}
	l.log.Info("edge link opened")
	return nil
}

// request sends req to the owner and waits for its reply (OpTimeout).
func (l *edgeLink) request(req linkRequest) (linkReply, error) {
	b, _ := json.Marshal(req)
	msg, err := l.n.nc.Request(linkSubject(l.owner), b, l.n.cfg.OpTimeout)
	if err != nil {
		return linkReply{}, err
	}
	var rep linkReply
	err = decode("link reply", msg.Data, &rep)
	return rep, err
}

// publish sends req to the owner without waiting.
func (l *edgeLink) publish(req linkRequest) {
	b, _ := json.Marshal(req)
	if err := l.n.nc.Publish(linkSubject(l.owner), b); err != nil {
		l.log.Debug("cannot send a link message", "op", req.Op, "err", err)
	}
}

// sendListeners tells the owner how many listeners this edge has, if that
// changed.
func (l *edgeLink) sendListeners() {
	k := int(l.local.Load())
	l.mu.Lock()
	same := k == l.reported
	l.reported = k
	l.mu.Unlock()
	if !same {
		l.publish(linkRequest{Op: opListeners, Link: l.id, Listeners: k})
	}
}

// close ends the link: the owner is told (best effort), the peer
// connection closed, the remote publishers removed. moveListeners: the
// link failed while the room has listeners here; they are sent to join
// again on this node, which routes them afresh (a new link, or this node
// takes the room over if its owner is gone).
func (l *edgeLink) close(moveListeners bool) {
	n := l.n
	l.mu.Lock()
	l.closed = true
	pc, sub := l.pc, l.sub
	remotes := l.remotes
	l.remotes = map[string]*sfu.Remote{}
	l.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	if n.nc.IsConnected() {
		_, _ = l.request(linkRequest{Op: opClose, Link: l.id})
	}
	reason := sfu.ReasonLeft
	if l.pk {
		reason = sfu.ReasonPKEnded
	}
	for _, x := range remotes {
		x.Remove(reason)
	}
	if pc != nil {
		if err := pc.Close(); err != nil {
			l.log.Debug("close the link's peer connection", "err", err)
		}
	}
	n.mu.Lock()
	if l.pk {
		delete(n.pkLinks, l)
		n.m.links.WithLabelValues("pk").Set(float64(len(n.pkLinks)))
	} else {
		delete(n.edgeLinks, l)
		n.m.links.WithLabelValues("edge").Set(float64(len(n.edgeLinks)))
	}
	onLost := n.onLost
	n.mu.Unlock()
	if moveListeners {
		l.r.Detach()
		if onLost != nil {
			onLost(l.room, n.cfg.NodeURL)
		}
	}
	l.log.Info("edge link closed")
}

// onEvent handles one event from the owner, in order (NATS delivers a
// subscription's messages on one goroutine).
func (l *edgeLink) onEvent(msg *nats.Msg) {
	var le linkEvent
	if err := decode("link event", msg.Data, &le); err != nil {
		l.log.Warn("ignoring a link event", "err", err)
		return
	}
	if err := l.handle(le); err != nil {
		l.log.Warn("link event failed: closing the link", "type", le.Type, "err", err)
		l.fail()
	}
}

func (l *edgeLink) handle(le linkEvent) error {
	switch le.Type {
	case evJoined:
		var ev sfu.JoinedEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		for _, st := range ev.Others {
			l.addRemote(st.Info, st.Muted)
		}
		if !l.pk {
			l.setAudience(ev.Audience)
		}
	case evParticipantJoin:
		var ev sfu.ParticipantJoinedEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		l.addRemote(ev.Participant, false)
	case evParticipantLeft:
		var ev sfu.ParticipantLeftEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		l.removeRemote(ev.ID, ev.Reason)
	case evRoleChanged:
		var ev sfu.RoleChangedEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		if ev.Role == sfu.RoleAudience { // off the mic: no longer a publisher here
			l.removeRemote(ev.Participant, sfu.ReasonLeft)
		}
	case evMuted:
		var ev sfu.MutedEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		l.mu.Lock()
		x := l.remotes[ev.Participant]
		l.mu.Unlock()
		if x != nil {
			x.SetMuted(ev.Muted)
		}
	case evTrackUnpublished:
		var ev sfu.TrackUnpublishedEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		l.mu.Lock()
		x, t := l.remotes[ev.Participant], l.tracks[ev.Track]
		l.mu.Unlock()
		if x != nil && t != nil {
			x.Unpublish(t)
		}
	case evAudience:
		var ev sfu.AudienceEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		if !l.pk { // a linked room keeps its own audience count
			l.setAudience(ev.Count)
		}
	case evSpeakers:
		var ev sfu.SpeakersEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		if !l.pk { // a linked room finds its speakers itself, the remote ones too
			l.r.SetSpeakers(ev.Speakers)
		}
	case evDescription:
		var ev sfu.DescriptionEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		return l.answer(ev)
	case evCandidate:
		var ev sfu.CandidateEvent
		if err := json.Unmarshal(le.Event, &ev); err != nil {
			return err
		}
		if ev.Candidate != nil {
			return l.pc.AddICECandidate(*ev.Candidate)
		}
	case evKick, evMicInvited, evMicEnded:
		l.handleProxy(le)
	case evListAgain:
		if !l.pk {
			l.resync()
		}
	case evClosed:
		return fmt.Errorf("relay %s closed the link (%s)", l.owner, le.Reason)
	}
	return nil
}

// answer answers the owner's offer on the link.
func (l *edgeLink) answer(ev sfu.DescriptionEvent) error {
	if ev.Type != webrtc.SDPTypeOffer {
		return fmt.Errorf("the owner sent a %s; a link takes offers", ev.Type)
	}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ev.SDP}); err != nil {
		return err
	}
	ans, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := l.pc.SetLocalDescription(ans); err != nil {
		return err
	}
	rep, err := l.request(linkRequest{Op: opAnswer, Link: l.id, SDP: ans.SDP})
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	return err
}

// setAudience makes the edge room's count the owner's total: the total
// less this edge's listeners as last reported (which it counts itself).
func (l *edgeLink) setAudience(total int) {
	l.mu.Lock()
	mine := l.reported
	l.mu.Unlock()
	l.r.SetAudienceElsewhere(total - mine)
}

// addRemote shows one of the owner's publishers in the edge room.
func (l *edgeLink) addRemote(info sfu.Info, muted bool) {
	if info.Role == sfu.RoleAudience {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.remotes[info.ID] != nil {
		return
	}
	role, room := info.Role, info.Room
	if l.pk {
		if role == sfu.RoleRemote {
			return // this room's own publishers, shown there: they stay here
		}
		role, room = sfu.RoleRemote, l.room
	}
	x, err := l.r.AddRemote(sfu.RemoteParams{ID: info.ID, Name: info.Name, Role: role, Room: room, Muted: muted})
	if err != nil {
		l.log.Debug("cannot show a publisher in the edge room", "participant", info.ID, "err", err)
		return
	}
	l.remotes[info.ID] = x
}

func (l *edgeLink) removeRemote(id string, reason sfu.Reason) {
	l.mu.Lock()
	x := l.remotes[id]
	delete(l.remotes, id)
	l.mu.Unlock()
	if x != nil {
		x.Remove(reason)
	}
}

// onTrack feeds one of the link's tracks to its publisher in the edge
// room until the track ends.
func (l *edgeLink) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	n := l.n
	id, pid := remote.ID(), remote.StreamID()
	l.mu.Lock()
	x := l.remotes[pid]
	var t *media.UpTrack
	if x != nil && !l.closed {
		t = n.sfu.NewLinkTrack(id, pid, receiver)
		l.tracks[id] = t
	}
	l.mu.Unlock()
	if t == nil {
		l.log.Debug("a link track of no known publisher", "participant", pid, "track", id)
		_ = receiver.Stop()
		return
	}
	if err := x.Publish(t); err != nil {
		_ = receiver.Stop()
		t.Close()
		return
	}
	go sfu.DrainRTCP(receiver)
	t.ReadLoop(countingReader{remote, n.m.linkPackets})
	x.Unpublish(t)
	t.Close()
	l.mu.Lock()
	if l.tracks[id] == t {
		delete(l.tracks, id)
	}
	l.mu.Unlock()
}

// countingReader counts the packets a link delivers (a counter: no
// allocation per packet).
type countingReader struct {
	r media.RTPReader
	c prometheus.Counter
}

func (c countingReader) Read(b []byte) (int, interceptor.Attributes, error) {
	n, a, err := c.r.Read(b)
	if err == nil {
		c.c.Inc()
	}
	return n, a, err
}
