package cluster

import (
	"github.com/lianmai/relay/sfu"
)

// Proxy participants, the edge's side (proxyowner.go has the owner's):
// the edge reports its listeners in a room to the room's owner on the
// room's link, and acts on what the owner's hosts do to them.

// listChunk is how many listeners one listener_list message carries at
// most: a big edge's list goes in several (more set on all but the last),
// each well under NATS's default 1 MB payload limit.
const listChunk = 2000

// edgePresence is what the edge has to tell the owner about its
// listeners. Its lock is taken under the edge room's lock (OnListener),
// never the other way round; edgeLink.mu is a different lock (it is held
// while adding remote publishers, which takes the room's lock).
type edgePresence struct {
	needList  bool              // send the whole list next (the link opened, or NATS came back)
	listeners map[string]string // the edge room's listeners: id → name
	pending   []linkRequest     // changes not yet sent, in order
}

// onListener records a change of the edge room's listeners (its
// EdgeHooks.OnListener: called under the room's lock) for run to send.
func (l *edgeLink) onListener(c sfu.ListenerChange) {
	l.presMu.Lock()
	li := listenerInfo{ID: c.Info.ID, Name: c.Info.Name}
	op := opListenerDeclined
	switch c.Kind {
	case sfu.ListenerJoined:
		op = opListenerJoined
		l.pres.listeners[li.ID] = li.Name
	case sfu.ListenerLeft:
		op = opListenerLeft
		delete(l.pres.listeners, li.ID)
	}
	if !l.pres.needList { // a list still to send has them all
		l.pres.pending = append(l.pres.pending, linkRequest{Op: op, Link: l.id, Listener: &li})
	}
	l.presMu.Unlock()
	l.poke()
}

// resync makes run send the whole list of listeners again.
func (l *edgeLink) resync() {
	l.presMu.Lock()
	l.pres.needList = true
	l.pres.pending = nil
	l.presMu.Unlock()
	l.poke()
}

// poke wakes run.
func (l *edgeLink) poke() {
	select {
	case l.report <- struct{}{}:
	default:
	}
}

// sendPresence sends the owner what changed in the edge room's listeners
// since the last call (or all of them, when needed).
func (l *edgeLink) sendPresence() {
	l.presMu.Lock()
	var reqs []linkRequest
	if l.pres.needList {
		l.pres.needList = false
		list := make([]listenerInfo, 0, len(l.pres.listeners))
		for id, name := range l.pres.listeners {
			list = append(list, listenerInfo{ID: id, Name: name})
		}
		for len(list) > listChunk {
			reqs = append(reqs, linkRequest{Op: opListenerList, Link: l.id, List: list[:listChunk], More: true})
			list = list[listChunk:]
		}
		reqs = append(reqs, linkRequest{Op: opListenerList, Link: l.id, List: list})
	} else {
		reqs, l.pres.pending = l.pres.pending, nil
	}
	l.presMu.Unlock()
	for _, req := range reqs {
		l.publish(req)
	}
}

// resyncEdges: NATS is back; what this edge published meanwhile may be
// lost (sent while the owner was not yet subscribed again, or pruned by
// an owner whose ping it did not answer), so each link sends its whole
// list again. An owner that reconnects after its edges asks them for it
// (askEdgeLists): whichever reconnects last, the list reaches the owner.
func (n *Node) resyncEdges() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for l := range n.edgeLinks {
		l.resync()
	}
}

// handleProxy acts on what a host of the owner did to one of this edge's
// listeners: as the owner would have done it to a listener of its own.
func (l *edgeLink) handleProxy(le linkEvent) {
	pe := le.Proxy
	if pe == nil || l.pk {
		return
	}
	switch le.Type {
	case evKick:
		if !l.r.LocalKick(pe.Participant, pe.Text) {
			l.log.Debug("a kicked listener had left", "participant", pe.Participant)
		}
	case evMicInvited:
		if err := l.r.LocalInvited(pe.Participant, pe.By, pe.Ticket); err != nil {
			l.log.Debug("cannot deliver an invitation", "participant", pe.Participant, "err", err)
		}
	case evMicEnded:
		l.r.LocalInvitationEnded(pe.Participant, pe.MicReason)
	}
}
