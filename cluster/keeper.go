package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keep runs the node's heartbeat: every TTL/3, and at once when woken
// (a (re)connection, a room created without a claim), it writes the
// liveness key and renews every room this node holds, and pings the
// edges whose listeners it shows as proxies (proxyowner.go). That is the
// only periodic work: three writes per TTL per room and one ping per TTL/3
// per such edge.
func (n *Node) keep() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		case <-n.kick:
		}
		n.pass()
	}
}

// pass is one heartbeat. After a (re)connection it opens the buckets
// first (a NATS server restarted without its store has lost them) and
// then, by renewing or re-claiming each room this node holds, rebuilds
// the node's part of the directory.
func (n *Node) pass() {
	if !n.nc.IsConnected() {
		return // the reconnection wakes us
	}
	d := n.directory()
	if d == nil {
		ctx, cancel := n.opContext(context.Background())
		start := time.Now()
		var err error
		d, err = openDirectory(ctx, n.js, n.cfg.TTL, n.cfg.Replicas)
		cancel()
		n.m.observe(opBuckets, resultOf(err), start)
		if err != nil {
			n.log.Warn("cannot open the directory's buckets; retrying at the next heartbeat", "err", err, "heartbeat", n.cfg.TTL/3)
			return
		}
		n.mu.Lock()
		n.dir = d
		n.mu.Unlock()
		n.log.Info("directory open; renewing this node's rooms", "rooms", n.ownedCount())
	}
	ctx, cancel := n.opContext(context.Background())
	start := time.Now()
	err := d.heartbeat(ctx, n.cfg.NodeID, n.cfg.NodeURL)
	cancel()
	n.m.observe(opHeartbeat, resultOf(err), start)
	if err != nil {
		n.log.Warn("cannot write this node's liveness key", "err", err)
	}
	n.checkEdges(context.Background()) // each ping bounded by OpTimeout/4
	for _, room := range n.ownedRooms() {
		select {
		case <-n.stop:
			return
		default:
		}
		n.renewRoom(d, room)
	}
}

// renewRoom renews room's entry, re-claims it if it aged out or the server
// lost it, drops a claim whose join never created the room, and hands a
// room that another node claimed meanwhile to onLost.
func (n *Node) renewRoom(d *directory, room string) {
	unlock, _ := n.lockRoom(context.Background(), room) // no deadline: never fails
	defer unlock()
	n.mu.Lock()
	c := n.owned[room]
	var rev uint64
	var local bool
	var since time.Time
	if c != nil {
		rev, local, since = c.rev, c.local, c.since
	}
	n.mu.Unlock()
	if c == nil {
		return // removed meanwhile
	}
	if !local && time.Since(since) > n.cfg.TTL {
		// Adopted by a join that failed before the room was made.
		n.drop(room, c)
		if rev != 0 {
			n.release(d, room, rev)
		}
		return
	}
	ctx, cancel := n.opContext(context.Background())
	defer cancel()
	if rev != 0 {
		start := time.Now()
		nrev, err := d.renew(ctx, room, n.self, rev)
		n.m.observe(opRenew, resultOf(err), start)
		if err == nil {
			n.setRev(room, c, nrev)
			return
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			n.log.Warn("cannot renew a room's directory entry; retrying at the next heartbeat", "room", room, "err", err)
			return
		}
	}
	// Aged out, lost with the server, never written, or written by
	// someone else: look.
	start := time.Now()
	e, cur, err := d.lookup(ctx, room)
	n.m.observe(opLookup, resultOf(err), start)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		start = time.Now()
		nrev, err := d.claim(ctx, room, n.self)
		n.m.observe(opClaim, resultOf(err), start)
		if err != nil {
			n.log.Warn("cannot re-claim a room; retrying at the next heartbeat", "room", room, "err", err)
			return
		}
		n.setRev(room, c, nrev)
		n.log.Info("room re-claimed in the directory", "room", room)
	case err != nil:
		n.log.Warn("cannot read a room's directory entry; retrying at the next heartbeat", "room", room, "err", err)
	case e.Node == n.cfg.NodeID:
		n.setRev(room, c, cur) // renewed at the next heartbeat
	default:
		n.lost(room, c, e)
	}
}

// lost handles a room this node holds that the directory gives to another
// node (claimed there while this node could not renew): the other node's
// copy wins, because joins everywhere already go to it; this node's
// participants are moved there (onLost) and its copy ends as they leave.
func (n *Node) lost(room string, c *claim, e entry) {
	n.drop(room, c)
	n.mu.Lock()
	f := n.onLost
	n.mu.Unlock()
	n.log.Warn("another node claimed a room this node holds (while the directory was out of reach): moving its participants there", "room", room, "owner", e.Node, "url", e.URL)
	if f != nil {
		f(room, e.URL)
	}
}

// drop forgets this node's claim c on room, if it is still the current one.
func (n *Node) drop(room string, c *claim) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.owned[room] == c {
		n.unholdLocked(room)
	}
}

func (n *Node) setRev(room string, c *claim, rev uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.owned[room] == c {
		c.rev = rev
	}
}

func (n *Node) ownedRooms() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.owned))
	for r := range n.owned {
		out = append(out, r)
	}
	return out
}

func (n *Node) ownedCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.owned)
}
