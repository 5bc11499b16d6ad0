package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go/jetstream"
)

// Route implements sfu.Router. A room this node owns is local without a
// network round trip. Otherwise one lookup: no entry, so this node claims
// the room (create-if-absent; of two nodes racing, one wins and the other
// routes to it); an entry of this node (left from before a restart, or
// handed over by a draining node), so it adopts it; another node's, so
// hosts and guests are redirected there and listeners get RouteEdge.
// Without the directory (NATS down, or slower than OpTimeout) it returns
// an error wrapping sfu.ErrUnavailable.
func (n *Node) Route(ctx context.Context, room string, role sfu.Role) (sfu.Route, error) {
	if n.holds(room) {
		n.m.routes.WithLabelValues("local").Inc()
		return sfu.Route{Kind: sfu.RouteLocal}, nil
	}
	if rt, ok := n.edgeRoute(room, role); ok { // a listener of a room this node already serves as an edge
		n.m.routes.WithLabelValues("edge").Inc()
		return rt, nil
	}
	ctx, cancel := n.opContext(ctx) // bounds the wait for the room's lock too
	defer cancel()
	unlock, err := n.lockRoom(ctx, room)
	if err != nil {
		n.m.routes.WithLabelValues("unavailable").Inc()
		return sfu.Route{}, fmt.Errorf("%w: %w", sfu.ErrUnavailable, err)
	}
	defer unlock()
	if n.holds(room) { // claimed by a join that held the lock before us
		n.m.routes.WithLabelValues("local").Inc()
		return sfu.Route{Kind: sfu.RouteLocal}, nil
	}
	rt, err := n.routeLocked(ctx, room, role)
	if err != nil {
		n.m.routes.WithLabelValues("unavailable").Inc()
		return rt, fmt.Errorf("%w: room %s: %w", sfu.ErrUnavailable, room, err)
	}
	switch rt.Kind {
	case sfu.RouteLocal:
		n.m.routes.WithLabelValues("local").Inc()
	case sfu.RouteEdge:
		n.m.routes.WithLabelValues("edge").Inc()
	default:
		n.m.routes.WithLabelValues("redirect").Inc()
	}
	return rt, nil
}

// errNotConnected: the directory cannot be reached now.
var errNotConnected = errors.New("not connected to NATS (reconnecting)")

// routeLocked looks room up and claims it if nobody has; the caller holds
// room's lock.
func (n *Node) routeLocked(ctx context.Context, room string, role sfu.Role) (sfu.Route, error) {
	for range 3 { // lookup, claim lost to a racer, lookup its entry: 2 rounds; 3 for an entry deleted in between
		d := n.directory()
		if d == nil {
			n.m.observe(opLookup, resultUnavailable, time.Now())
			return sfu.Route{}, errNotConnected
		}
		start := time.Now()
		e, rev, err := d.lookup(ctx, room)
		n.m.observe(opLookup, resultOf(err), start)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if held, ok, err := n.holder(ctx, room); err != nil {
				return sfu.Route{}, err
			} else if ok {
				// Held without an entry (NATS restarted, say): the
				// holder writes it back; this join goes there.
				return routeTo(held, role), nil
			}
			if n.isDraining() {
				return sfu.Route{}, errors.New("this relay is draining and claims no rooms")
			}
			start = time.Now()
			rev, err = d.claim(ctx, room, n.self)
			n.m.observe(opClaim, resultOf(err), start)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another node won the race: route to it
			}
			if err != nil {
				return sfu.Route{}, err
			}
			n.adopt(room, rev)
			return sfu.Route{Kind: sfu.RouteLocal}, nil
		case err != nil:
			return sfu.Route{}, err
		case e.Node == n.cfg.NodeID:
			n.adopt(room, rev)
			return sfu.Route{Kind: sfu.RouteLocal}, nil
		case !n.ownerAlive(ctx, e.Node):
			// The owner is gone (its entry would age out within the
			// TTL): take the room over now, if the entry is still the
			// one looked at.
			if n.isDraining() {
				return sfu.Route{}, errors.New("this relay is draining and claims no rooms")
			}
			start = time.Now()
			nrev, err := d.renew(ctx, room, n.self, rev)
			n.m.observe(opTakeover, resultOf(err), start)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
			if err != nil {
				return sfu.Route{}, err
			}
			n.log.Info("took over a room whose owner is gone", "room", room, "owner", e.Node)
			n.adopt(room, nrev)
			return sfu.Route{Kind: sfu.RouteLocal}, nil
		default:
			return routeTo(e, role), nil
		}
	}
	return sfu.Route{}, errors.New("the room's entry kept changing; retry")
}

// routeTo is the route to another node's room: listeners are served on an
// edge, hosts and guests redirected.
func routeTo(e entry, role sfu.Role) sfu.Route {
	if role == sfu.RoleAudience {
		return sfu.Route{Kind: sfu.RouteEdge, Owner: e.Node, URL: e.URL}
	}
	return sfu.Route{Kind: sfu.RouteRedirect, Owner: e.Node, URL: e.URL}
}

// holds reports whether this node owns or holds room.
func (n *Node) holds(room string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.owned[room] != nil
}

func (n *Node) isDraining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.draining
}

// adopt records that this node owns room at rev.
func (n *Node) adopt(room string, rev uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.owned[room]; c != nil {
		c.rev = rev
		return
	}
	n.holdLocked(room, &claim{rev: rev, since: time.Now()})
}

// RoomCreated implements sfu.Router: the room layer holds room now. A room
// created without a claim (its entry was released just before) is claimed
// by the keeper at once.
func (n *Node) RoomCreated(room string) {
	n.mu.Lock()
	c := n.owned[room]
	if c == nil {
		c = &claim{since: time.Now()}
		n.holdLocked(room, c)
	}
	c.local = true
	unclaimed := c.rev == 0
	n.mu.Unlock()
	if unclaimed {
		n.wake(false)
	}
}

// RoomRemoved implements sfu.Router: the room emptied; its entry is
// released in the background (the room layer's lock is held here).
func (n *Node) RoomRemoved(room string) {
	n.mu.Lock()
	c := n.unholdLocked(room)
	if c == nil || c.rev == 0 || n.closed {
		n.mu.Unlock()
		return
	}
	n.wg.Add(1) // under mu: Close sets closed under it before it waits
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		unlock, _ := n.lockRoom(context.Background(), room) // no deadline: never fails
		defer unlock()
		if n.holds(room) {
			return // a join adopted the room again meanwhile: keep the entry
		}
		if d := n.directory(); d != nil {
			n.release(d, room, c.rev)
		}
	}()
}
