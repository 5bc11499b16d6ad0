package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lianmai/relay/media"
	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cross-room links (PK) between rooms on two relays: a Node is the room
// layer's sfu.PKPeer. The control (invite, accept, end) goes to the other
// room's owner, found in the directory, on its PK subject
// (relay.pk.<node>, docs/cluster.md); the media go over one PK link per
// room and direction: the edge link machinery (linkedge.go) with the
// linked room in place of an edge room, opened to the other room's owner
// whose hidden participant hears that room's own publishers only (each
// track crosses the nodes once per link).

// pkSubject is where node receives PK requests.
func pkSubject(node string) string { return "relay.pk." + node }

// PK ops.
const (
	pkOpInvite = "invite" // request: room From (on the sender) invites room To (here)
	pkOpAccept = "accept" // request: room To (on the sender) accepted room From's (here) invitation
	pkOpEnd    = "end"    // publish: the link or invitation of room From (on the sender) with room To (here) ended
)

type pkRequest struct {
	Op     string       `json:"op"`
	From   string       `json:"from"`
	To     string       `json:"to"`
	By     sfu.Info     `json:"by,omitzero"`
	Reason sfu.PKReason `json:"reason,omitempty"`
}

// pkReply answers an invite or accept: Error "" is success; Kind names the
// sfu error it was (pkErrKinds), so the host on the other relay gets the
// same error code as on one node.
type pkReply struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

var pkErrKinds = map[string]error{
	"not_found": sfu.ErrNotFound, "conflict": sfu.ErrConflict,
	"forbidden": sfu.ErrForbidden, "bad_request": sfu.ErrBadRequest,
}

func (n *Node) servePK() error {
	_, err := n.nc.Subscribe(pkSubject(n.cfg.NodeID), n.onPK)
	return err
}

// onPK handles one PK message from another relay.
func (n *Node) onPK(msg *nats.Msg) {
	var req pkRequest
	var err error
	n.mu.Lock()
	s := n.sfu
	n.mu.Unlock()
	switch {
	case s == nil:
		err = fmt.Errorf("%w: relay %s is starting", sfu.ErrNotFound, n.cfg.NodeID)
	default:
		err = decode("PK request", msg.Data, &req)
	}
	if err == nil {
		switch req.Op {
		case pkOpInvite:
			err = s.PKRemoteInvite(req.To, req.From, req.By)
		case pkOpAccept:
			err = s.PKRemoteAccept(req.To, req.From)
		case pkOpEnd:
			s.PKRemoteEnd(req.To, req.From, req.Reason)
		default:
			err = fmt.Errorf("%w: unknown PK op %q", sfu.ErrBadRequest, req.Op)
		}
	}
	if msg.Reply == "" {
		return
	}
	var rep pkReply
	if err != nil {
		rep.Error = err.Error()
		for k, e := range pkErrKinds {
			if errors.Is(err, e) {
				rep.Kind = k
			}
		}
	}
	b, _ := json.Marshal(rep)
	if err := msg.Respond(b); err != nil {
		n.log.Debug("cannot answer a PK request", "err", err)
	}
}

// pkOwner is the node that owns room, per the directory: sfu.ErrNotFound
// if no relay has it.
func (n *Node) pkOwner(room string) (string, error) {
	d := n.directory()
	if d == nil {
		return "", fmt.Errorf("%w: the cluster directory is not reachable; try again", sfu.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.OpTimeout)
	defer cancel()
	e, _, err := d.lookup(ctx, room)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", fmt.Errorf("%w: there is no room %s in the cluster", sfu.ErrNotFound, room)
	case err != nil:
		return "", fmt.Errorf("%w: cannot look room %s up in the cluster directory: %v", sfu.ErrUnavailable, room, err)
	case e.Node == n.cfg.NodeID: // ours, but not in the room layer: it emptied
		return "", fmt.Errorf("%w: there is no room %s", sfu.ErrNotFound, room)
	}
	return e.Node, nil
}

// pkRequest sends req to the owner of room and waits for its answer.
func (n *Node) pkRequest(room string, req pkRequest) error {
	owner, err := n.pkOwner(room)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(req)
	msg, err := n.nc.Request(pkSubject(owner), b, n.cfg.OpTimeout)
	if err != nil {
		return fmt.Errorf("%w: relay %s did not answer about room %s (%v); try again", sfu.ErrUnavailable, owner, room, err)
	}
	var rep pkReply
	if err := decode("PK reply", msg.Data, &rep); err != nil {
		return err
	}
	if rep.Error == "" {
		return nil
	}
	if e, ok := pkErrKinds[rep.Kind]; ok {
		return fmt.Errorf("%w: relay %s: %s", e, owner, rep.Error)
	}
	return fmt.Errorf("relay %s: %s", owner, rep.Error)
}

// PKInvite implements sfu.PKPeer.
func (n *Node) PKInvite(from, to string, by sfu.Info) error {
	return n.pkRequest(to, pkRequest{Op: pkOpInvite, From: from, To: to, By: by})
}

// PKAccept implements sfu.PKPeer.
func (n *Node) PKAccept(to, from string) error {
	return n.pkRequest(from, pkRequest{Op: pkOpAccept, From: to, To: from})
}

// PKEnd implements sfu.PKPeer: the owner of remote is told in the
// background (it does not block the room layer). If it cannot be told,
// its own end follows: an invitation expires, a link's connection fails.
func (n *Node) PKEnd(local, remote string, reason sfu.PKReason) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		owner, err := n.pkOwner(remote)
		if err == nil {
			b, _ := json.Marshal(pkRequest{Op: pkOpEnd, From: local, To: remote, Reason: reason})
			err = n.nc.Publish(pkSubject(owner), b)
		}
		if err != nil {
			n.log.Debug("cannot tell the other room's relay that a PK link ended", "room", local, "other", remote, "err", err)
		}
	}()
}

// PKLink implements sfu.PKPeer: a PK link to the owner of room remote
// shows its own publishers in r, with role remote and room remote.
func (n *Node) PKLink(r *sfu.Room, remote string) (stop func()) {
	l := &edgeLink{n: n, id: newLinkID(), room: remote, r: r, pk: true,
		remotes: make(map[string]*sfu.Remote), tracks: make(map[string]*media.UpTrack), report: make(chan struct{}, 1)}
	done := make(chan struct{})
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		close(done)
	} else {
		n.pkLinks[l] = struct{}{}
		n.m.links.WithLabelValues("pk").Set(float64(len(n.pkLinks)))
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer close(done)
			owner, err := n.pkOwner(remote)
			if err != nil {
				n.mu.Lock()
				delete(n.pkLinks, l)
				n.m.links.WithLabelValues("pk").Set(float64(len(n.pkLinks)))
				n.mu.Unlock()
				n.wg.Done()
				n.log.Warn("cannot open a PK link", "room", r.Name(), "other", remote, "err", err)
				n.sfu.PKLinkFailed(r.Name(), remote)
				return
			}
			l.owner = owner
			l.log = n.log.With("room", r.Name(), "pk", remote, "owner", owner, "link", l.id)
			l.run()
		}()
	}
	return func() {
		l.end()
		<-done
	}
}
