package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/lianmai/relay/sfu"
)

// Proxy participants on the owner (sfu/proxy.go): each listener an edge
// serves is reported on the edge's link (listener_list when the link
// opens or NATS comes back, then listener_joined and listener_left) and
// shown in the room as an audience member of the link, so the room's
// hosts see it, and kick or invite it, as if it were here. What a host
// does to one goes back to the edge on the link's inbox (kick,
// mic_invited, mic_ended), and the edge acts on its listener
// (proxyedge.go).

// ownerProxies is one link's proxies, by the listener's id on the edge.
type ownerProxies struct {
	mu    sync.Mutex
	lists bool                        // the edge reports its listeners one by one: its count (listeners) is ignored
	kept  map[string]bool             // a list in several messages (more): the listeners of its parts so far
	byID  map[string]*sfu.Participant // may hold a proxy a host kicked until the edge says it left
}

// onListeners applies one of the edge's listener reports to link l.
func (n *Node) onListeners(l *ownerLink, req linkRequest) error {
	if req.Op != opListenerList && req.Listener == nil {
		return errors.New(req.Op + ": the listener is missing")
	}
	ps := &l.proxies
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.lists {
		ps.lists = true
		l.p.SetListeners(0) // its proxies count from now on
	}
	switch req.Op {
	case opListenerList:
		if ps.kept == nil {
			ps.kept = make(map[string]bool, len(req.List))
		}
		for _, li := range req.List {
			ps.kept[li.ID] = true
			n.addProxyLocked(l, li)
		}
		if req.More {
			return nil
		}
		for id, q := range ps.byID {
			if !ps.kept[id] {
				delete(ps.byID, id)
				q.Leave()
			}
		}
		ps.kept = nil
	case opListenerJoined:
		n.addProxyLocked(l, *req.Listener)
	case opListenerLeft:
		if q := ps.byID[req.Listener.ID]; q != nil {
			delete(ps.byID, req.Listener.ID)
			q.Leave()
		}
	case opListenerDeclined:
		if q := ps.byID[req.Listener.ID]; q != nil {
			return q.MicReject("")
		}
	}
	return nil
}

// addProxyLocked shows listener li of l's edge in the room, unless it is
// already. l.proxies.mu is held.
func (n *Node) addProxyLocked(l *ownerLink, li listenerInfo) {
	ps := &l.proxies
	if ps.byID[li.ID] != nil || li.ID == "" {
		return
	}
	q, err := l.p.AddProxy(sfu.ProxyParams{ID: li.ID, Name: li.Name, Sink: &proxySink{n: n, inbox: l.sink.inbox, id: li.ID}})
	if err != nil {
		n.log.Debug("cannot show an edge's listener to the room's hosts", "link", l.id, "listener", li.ID, "err", err)
		return
	}
	if q.ID() != li.ID {
		n.log.Info("an edge's listener has the id of a participant here: hosts know it by another", "link", l.id, "listener", li.ID, "as", q.ID())
	}
	if ps.byID == nil {
		ps.byID = make(map[string]*sfu.Participant)
	}
	ps.byID[li.ID] = q
}

// loseProxies removes l's proxies (reason timeout): its edge no longer
// answers its ping. The link itself is left to its transport (its media
// may still flow while the edge is cut from NATS only); an edge that
// comes back sends its list again.
func (l *ownerLink) loseProxies() int {
	ps := &l.proxies
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k := len(ps.byID)
	for id, q := range ps.byID {
		delete(ps.byID, id)
		q.Lost()
	}
	return k
}

// checkEdges pings each edge with a link to a room here that shows
// proxies, and takes the proxies of an edge that is gone out of the room
// at once, rather than when the link's ICE fails (10 + 10 s). Called by
// the keeper at each heartbeat.
func (n *Node) checkEdges(ctx context.Context) {
	n.mu.Lock()
	links := make([]*ownerLink, 0, len(n.ownerLinks))
	for _, l := range n.ownerLinks {
		links = append(links, l)
	}
	n.mu.Unlock()
	// Not under n.mu: proxies.mu comes before the room's lock, which a
	// link's end holds while it takes n.mu.
	byEdge := make(map[string][]*ownerLink)
	for _, l := range links {
		l.proxies.mu.Lock()
		shown := len(l.proxies.byID) > 0
		l.proxies.mu.Unlock()
		if shown {
			byEdge[l.edge] = append(byEdge[l.edge], l)
		}
	}
	for edge, links := range byEdge {
		if edge == "" || n.ownerAlive(ctx, edge) {
			continue
		}
		for _, l := range links {
			if k := l.loseProxies(); k > 0 {
				n.log.Warn("an edge does not answer: its listeners leave the room's presence", "edge", edge, "link", l.id, "listeners", k)
			}
		}
	}
}

// askEdgeLists asks every edge with a link to a room here for its whole
// list of listeners: this relay has just reconnected to NATS, and what
// the edges reported while it was away went nowhere.
func (n *Node) askEdgeLists() {
	n.mu.Lock()
	inboxes := make([]string, 0, len(n.ownerLinks))
	for _, l := range n.ownerLinks {
		inboxes = append(inboxes, l.sink.inbox)
	}
	n.mu.Unlock()
	for _, inbox := range inboxes {
		n.publishEvent(inbox, linkEvent{Type: evListAgain})
	}
}

// proxySink is a proxy participant's sfu.Sink: what a host did to the
// listener goes to its edge on the link's inbox; everything else (the
// room's events) the edge room already tells its listener.
type proxySink struct {
	n     *Node
	inbox string
	id    string // the listener's id on the edge
}

func (s *proxySink) Send(ev sfu.Event) {
	pe := &proxyEvent{Participant: s.id}
	var typ string
	switch e := ev.(type) {
	case sfu.KickedEvent:
		typ, pe.Text = evKick, e.Reason
	case sfu.MicInvitedEvent:
		typ, pe.By, pe.Ticket = evMicInvited, e.By, e.Ticket
	case sfu.MicRejectedEvent:
		typ, pe.MicReason = evMicEnded, e.Reason
	default:
		return
	}
	s.n.publishEvent(s.inbox, linkEvent{Type: typ, Proxy: pe})
}

// Close: nothing to do; a kick has been sent as its event, and the edge
// decides its listener's connection otherwise.
func (s *proxySink) Close(sfu.Reason) {}

// publishEvent sends le to a link's inbox (queued in the NATS
// connection's buffer: it does not block the room).
func (n *Node) publishEvent(inbox string, le linkEvent) {
	b, err := json.Marshal(le)
	if err == nil {
		err = n.nc.Publish(inbox, b)
	}
	if err != nil {
		n.log.Debug("cannot send a link event; the edge notices the link's end", "inbox", inbox, "err", err)
	}
}
