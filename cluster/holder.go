package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// A room's entry can be missing while a node still holds the room: after
// a NATS server restart (the buckets are kept in memory) until the
// holder's keeper has re-claimed it, or after a failed renewal. A join
// routed elsewhere in that window must not create a second copy of the
// room. So each node subscribes one holder subject per room it holds, and
// a node that finds no entry asks that subject before it claims: NATS
// answers "no responders" at once when nobody holds the room (one round
// trip more for a new room), and the holder answers with its entry (and
// re-claims at once) otherwise. The window left is only the holder's own
// reconnection: a node that has not yet reconnected cannot answer.
func holderSubject(room string) string { return "relay.cluster.room." + room + ".holder" }

// holdLocked records c as this node's claim on room and subscribes room's
// holder subject (nats.go subscribes it again after each reconnection).
// n.mu is held.
func (n *Node) holdLocked(room string, c *claim) {
	n.owned[room] = c
	n.m.owned.Set(float64(len(n.owned)))
	sub, err := n.nc.Subscribe(holderSubject(room), n.answerHolder)
	if err != nil {
		// Only a closed connection refuses: the node is stopping.
		n.log.Warn("cannot subscribe a room's holder subject; another node may re-create the room while its entry is missing", "room", room, "err", err)
		return
	}
	c.holder = sub
}

// unholdLocked forgets room's claim and its holder subject. n.mu is held.
func (n *Node) unholdLocked(room string) *claim {
	c := n.owned[room]
	if c == nil {
		return nil
	}
	delete(n.owned, room)
	n.m.owned.Set(float64(len(n.owned)))
	if c.holder != nil {
		_ = c.holder.Unsubscribe()
	}
	return c
}

// answerHolder answers a holder request with this node's entry, and wakes
// the keeper to write that entry back. A draining node answers empty: it
// gives its rooms away.
func (n *Node) answerHolder(m *nats.Msg) {
	if n.isDraining() {
		_ = m.Respond(nil)
		return
	}
	_ = m.Respond(mustJSON(n.self))
	n.wake(false)
}

// resultHeld: a holder request answered by a node that holds the room.
const resultHeld = "held"

// holder asks who holds room. ok false: nobody (no responders, or a
// draining node). An error: NATS did not answer in time; the caller must
// not claim.
func (n *Node) holder(ctx context.Context, room string) (entry, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.OpTimeout/4)
	defer cancel()
	start := time.Now()
	m, err := n.nc.RequestWithContext(ctx, holderSubject(room), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		n.m.observe(opHolder, resultNotFound, start)
		return entry{}, false, nil
	case err != nil:
		n.m.observe(opHolder, resultError, start)
		return entry{}, false, err
	case len(m.Data) == 0:
		n.m.observe(opHolder, resultNotFound, start)
		return entry{}, false, nil
	}
	var e entry
	if err := json.Unmarshal(m.Data, &e); err != nil || e.Node == "" {
		n.m.observe(opHolder, resultError, start)
		return entry{}, false, errors.New("a node answered the room's holder subject with a bad entry")
	}
	n.m.observe(opHolder, resultHeld, start)
	return e, true, nil
}
