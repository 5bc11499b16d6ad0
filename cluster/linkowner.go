package cluster

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go"
)

// The owner's end of links: each link is a hidden participant of the room
// (sfu.JoinParams.Hidden) whose sink forwards its events to the edge over
// NATS, and whose sub connection carries every track of the room to the
// edge once.

// ownerLink is one edge's link to a room this node owns.
type ownerLink struct {
	id      string
	edge    string // the edge's node id
	p       *sfu.Participant
	sink    *linkSink
	proxies ownerProxies // the edge's listeners shown in the room (proxyowner.go)
}

// linkSink is a link participant's sfu.Sink: it publishes each event the
// edge needs to the link's inbox. Publishing only queues in the NATS
// connection's buffer, so it does not block the room.
type linkSink struct {
	n     *Node
	link  string
	inbox string
}

func (s *linkSink) Send(ev sfu.Event) {
	le, ok := encodeEvent(ev)
	if !ok {
		return
	}
	s.publish(le)
}

// Close: the relay removed the link's participant (ICE failed past its
// grace period, or shutdown): the edge is told, and the link forgotten.
func (s *linkSink) Close(reason sfu.Reason) {
	s.publish(linkEvent{Type: evClosed, Reason: reason})
	s.n.dropOwnerLink(s.link)
}

func (s *linkSink) publish(le linkEvent) { s.n.publishEvent(s.inbox, le) }

// serveLinks subscribes this node's link subject.
func (n *Node) serveLinks() error {
	_, err := n.nc.Subscribe(linkSubject(n.cfg.NodeID), n.onLinkRequest)
	return err
}

// onLinkRequest handles one edge request (NATS runs the subscription's
// handler on one goroutine, so a link's requests are handled in order).
func (n *Node) onLinkRequest(msg *nats.Msg) {
	var req linkRequest
	if err := decode("link request", msg.Data, &req); err != nil {
		n.replyLink(msg, linkReply{Error: err.Error()})
		return
	}
	if req.Op == opOpen {
		n.replyLink(msg, n.openOwnerLink(req))
		return
	}
	n.mu.Lock()
	l := n.ownerLinks[req.Link]
	n.mu.Unlock()
	if l == nil {
		n.replyLink(msg, linkReply{Error: fmt.Sprintf("no link %s here (closed, or this relay restarted): open a new one", req.Link)})
		return
	}
	var err error
	switch req.Op {
	case opAnswer:
		err = l.p.Answer(l.sink, req.SDP)
	case opCandidate:
		err = l.p.AddCandidate(l.sink, sfu.Sub, req.Candidate)
	case opListeners:
		l.proxies.mu.Lock()
		if !l.proxies.lists { // an edge that predates listener_list
			l.p.SetListeners(req.Listeners)
		}
		l.proxies.mu.Unlock()
	case opListenerList, opListenerJoined, opListenerLeft, opListenerDeclined:
		err = n.onListeners(l, req)
	case opClose:
		n.dropOwnerLink(l.id)
		l.p.Leave()
	default:
		err = fmt.Errorf("unknown link op %q", req.Op)
	}
	rep := linkReply{}
	if err != nil {
		rep.Error = err.Error()
	}
	n.replyLink(msg, rep)
}

// openOwnerLink joins a hidden participant for req's edge.
func (n *Node) openOwnerLink(req linkRequest) linkReply {
	n.mu.Lock()
	s := n.sfu
	n.mu.Unlock()
	if s == nil {
		return linkReply{Error: "this relay is starting"}
	}
	if req.Link == "" || req.Inbox == "" || req.Room == "" {
		return linkReply{Error: "open: link, room and inbox are required"}
	}
	if !n.holds(req.Room) {
		return linkReply{NotOwner: true, Error: fmt.Sprintf("relay %s does not hold room %s", n.cfg.NodeID, req.Room)}
	}
	sink := &linkSink{n: n, link: req.Link, inbox: req.Inbox}
	p, err := s.Join(sfu.JoinParams{
		Room: req.Room, Name: "edge " + req.Edge, Role: sfu.RoleAudience,
		Sink: sink, Listen: sfu.ListenTracks, Hidden: true, OwnOnly: req.PK,
	})
	if err != nil {
		var re *sfu.RedirectError
		return linkReply{NotOwner: errors.As(err, &re), Error: err.Error()}
	}
	l := &ownerLink{id: req.Link, edge: req.Edge, p: p, sink: sink}
	n.mu.Lock()
	n.ownerLinks[l.id] = l
	n.m.links.WithLabelValues("owner").Set(float64(len(n.ownerLinks)))
	n.mu.Unlock()
	n.log.Info("edge link opened", "room", req.Room, "edge", req.Edge, "link", l.id)
	return linkReply{}
}

// dropOwnerLink forgets link id. Called under the room's lock from
// linkSink.Close: it takes only n.mu.
func (n *Node) dropOwnerLink(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.ownerLinks[id]; l != nil {
		n.linkOutRetired += l.p.PacketsSent()
		delete(n.ownerLinks, id)
		n.m.links.WithLabelValues("owner").Set(float64(len(n.ownerLinks)))
	}
}

// linkPacketsOut is the packets written to the hidden participants of
// the links to rooms this node owns, closed links included: the series
// relay_cluster_link_packets_out_total.
func (n *Node) linkPacketsOut() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := n.linkOutRetired
	for _, l := range n.ownerLinks {
		total += l.p.PacketsSent()
	}
	return float64(total)
}

func (n *Node) replyLink(msg *nats.Msg, rep linkReply) {
	if msg.Reply == "" {
		if rep.Error != "" {
			n.log.Debug("link message refused", "err", rep.Error)
		}
		return
	}
	b, _ := json.Marshal(rep)
	if err := msg.Respond(b); err != nil {
		n.log.Debug("cannot answer a link request", "err", err)
	}
}
