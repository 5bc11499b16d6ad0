package cluster

import (
	"context"
	"hash/fnv"
	"slices"
	"time"
)

// Handover is a draining node's last directory work: it claims no room
// from now on and gives every room it owns to another live node (the same
// node for all of a room's participants, chosen by the room's name), by
// rewriting the room's entry if it is still this node's. It returns each
// room's new home (room -> URL) for the caller to move the room's
// participants there (signaling.Server.MoveRoom); a room it could not
// hand over (no other node is alive, or the directory is out of reach)
// is released instead and missing from the result: its participants get
// the ordinary draining message, and the room is re-created wherever it
// is joined next. Rooms this node serves as an edge are in the result
// too (moveEdgeRooms): their listeners move to another node.
func (n *Node) Handover(ctx context.Context) map[string]string {
	n.mu.Lock()
	n.draining = true
	n.mu.Unlock()
	moved := make(map[string]string)
	d := n.directory()
	if d == nil {
		n.log.Warn("draining without the directory: this node's rooms cannot be handed over; their entries age out", "ttl", n.cfg.TTL)
		n.moveEdgeRooms(moved, nil, nil)
		return moved
	}
	lctx, cancel := n.opContext(ctx)
	nodes, err := d.liveNodes(lctx)
	cancel()
	if err != nil {
		n.log.Warn("draining: cannot list the live nodes; releasing this node's rooms instead of handing them over", "err", err)
	}
	delete(nodes, n.cfg.NodeID)
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, room := range n.ownedRooms() {
		if url, ok := n.handOne(ctx, d, room, ids, nodes); ok {
			moved[room] = url
		}
	}
	n.log.Info("draining: rooms handed over", "moved", len(moved), "live_nodes", len(ids))
	n.moveEdgeRooms(moved, ids, nodes)
	return moved
}

// moveEdgeRooms adds to moved, for each room this node serves as an edge,
// where its listeners go: another live node (by the room's name: the
// same one for all of a room's listeners here, so one new link serves
// them), or the room's owner when no other node is known. Any node
// routes them; another edge serves them over its link.
func (n *Node) moveEdgeRooms(moved map[string]string, ids []string, urls map[string]string) {
	n.mu.Lock()
	links := make([]*edgeLink, 0, len(n.edgeLinks))
	for l := range n.edgeLinks {
		links = append(links, l)
	}
	n.mu.Unlock()
	for _, l := range links {
		url := l.ownerURL
		if len(ids) > 0 {
			h := fnv.New32a()
			_, _ = h.Write([]byte(l.room))
			url = urls[ids[int(h.Sum32()%uint32(len(ids)))]]
		}
		moved[l.room] = url
	}
}

// handOne gives room to one of ids (by its name's hash), or releases it.
func (n *Node) handOne(ctx context.Context, d *directory, room string, ids []string, urls map[string]string) (string, bool) {
	unlock, _ := n.lockRoom(context.Background(), room) // no deadline: never fails
	defer unlock()
	n.mu.Lock()
	c := n.owned[room]
	n.mu.Unlock()
	if c == nil || c.rev == 0 {
		return "", false
	}
	n.drop(room, c) // from now on joins here are routed by the directory
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	if len(ids) == 0 {
		n.release(d, room, c.rev)
		return "", false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(room))
	to := ids[int(h.Sum32()%uint32(len(ids)))]
	start := time.Now()
	_, err := d.renew(ctx, room, entry{Node: to, URL: urls[to]}, c.rev)
	n.m.observe(opHandover, resultOf(err), start)
	if err != nil {
		n.log.Warn("draining: cannot hand a room over; releasing it", "room", room, "to", to, "err", err)
		n.release(d, room, c.rev)
		return "", false
	}
	return urls[to], true
}
