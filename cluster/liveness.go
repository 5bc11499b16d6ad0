package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// Each node answers requests on its ping subject while its NATS connection
// is up. NATS answers a request to a subject nobody subscribes to at once
// with "no responders": that is how a node learns, in one round trip,
// that a room's owner has died or been cut off, instead of waiting up to
// the TTL for its entry to age out.
func pingSubject(node string) string { return "relay.cluster.node." + node + ".ping" }

// answerPings subscribes this node's ping subject (nats.go subscribes it
// again after each reconnection).
func (n *Node) answerPings() error {
	_, err := n.nc.Subscribe(pingSubject(n.cfg.NodeID), func(m *nats.Msg) { _ = m.Respond(nil) })
	return err
}

// resultGone: a ping that found no responder.
const resultGone = "gone"

// ownerAlive reports whether node answers its ping. Only "no responders"
// counts as gone: a slow answer (timeout) or another error keeps the
// owner, so a busy node is never taken over.
func (n *Node) ownerAlive(ctx context.Context, node string) bool {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.OpTimeout/4)
	defer cancel()
	start := time.Now()
	_, err := n.nc.RequestWithContext(ctx, pingSubject(node), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		n.m.observe(opPing, resultGone, start)
		return false
	case err != nil:
		n.m.observe(opPing, resultError, start)
	default:
		n.m.observe(opPing, resultOK, start)
	}
	return true
}
