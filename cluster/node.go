package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is one relay of the cluster: its NATS connection, its part of the
// directory and the keeper goroutine that renews it.
type Node struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	self entry // this node's directory value
	nc   *nats.Conn
	js   jetstream.JetStream

	kick chan bool     // wakes the keeper; true: (re)connected, reopen the buckets; buffered 1, sent without blocking
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu       sync.Mutex
	dir      *directory        // nil until the buckets are open, and again after a lost connection
	owned    map[string]*claim // the rooms this node owns or holds, by name
	locks    map[string]*roomLock
	onLost   func(room, url string)
	draining bool
	closed   bool // set by Close: no more background work

	sfu        *sfu.SFU              // the room layer (Attach); nil until then
	ownerLinks map[string]*ownerLink // edges' links to rooms this node owns, by link id
	// linkOutRetired is the packets closed owner links were sent (guarded by mu).
	linkOutRetired uint64
	edgeLinks      map[*edgeLink]struct{} // this node's links to other nodes' rooms
	pkLinks        map[*edgeLink]struct{} // this node's PK links (pk.go): other nodes' rooms linked with rooms here
}

// claim is this node's hold on a room.
type claim struct {
	rev    uint64             // the entry's revision as this node last wrote or read it; 0: not written yet
	local  bool               // the room layer holds the room (RoomCreated)
	since  time.Time          // when the claim was made, to drop one whose join never created the room
	holder *nats.Subscription // this node's answer to who holds the room (holder.go)
}

// roomLock serializes the directory operations of one room on this node,
// so that a release never deletes what a concurrent join has just
// adopted. A channel, so that a join waits for it no longer than its
// deadline. refs: holders and waiters, guarded by Node.mu.
type roomLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// Start connects to NATS (retrying forever in the background if it cannot
// yet) and starts the keeper. Close stops it.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	n := &Node{}
	m, err := newMetrics(cfg.Registry, n.linkPacketsOut)
	if err != nil {
		return nil, err
	}
	*n = Node{
		cfg:   cfg,
		log:   cfg.Logger.With("node", cfg.NodeID),
		m:     m,
		self:  entry{Node: cfg.NodeID, URL: cfg.NodeURL},
		kick:  make(chan bool, 1),
		stop:  make(chan struct{}),
		owned: make(map[string]*claim),
		locks: make(map[string]*roomLock),

		ownerLinks: make(map[string]*ownerLink),
		edgeLinks:  make(map[*edgeLink]struct{}),
		pkLinks:    make(map[*edgeLink]struct{}),
	}
	nc, err := n.connect()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	n.nc, n.js = nc, js
	if err := n.answerPings(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe the ping subject: %w", err)
	}
	if err := n.serveLinks(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe the link subject: %w", err)
	}
	if err := n.servePK(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe the PK subject: %w", err)
	}
	n.wg.Add(1)
	go n.keep()
	n.log.Info("cluster node started", "nats", cfg.NATSURL, "url", cfg.NodeURL, "ttl", cfg.TTL, "heartbeat", cfg.TTL/3)
	return n, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Conn is the node's NATS connection (for the edge link's signaling, and
// for tests that cut it).
func (n *Node) Conn() *nats.Conn { return n.nc }

// Attach gives the node its room layer, which edges and links need: call
// it once, right after sfu.New (whose Config.Router and Config.Edge are
// this node). Until then edge joins and link requests are refused.
func (n *Node) Attach(s *sfu.SFU) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sfu = s
}

// OnLost sets what happens to a room this node holds when, after an
// outage, the directory names another owner: f moves the room's
// participants to url (signaling.Server.MoveRoom). Set it before the
// first join.
func (n *Node) OnLost(f func(room, url string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onLost = f
}

// wake asks the keeper for a pass now; reopen: after a (re)connection.
func (n *Node) wake(reopen bool) {
	if reopen {
		n.mu.Lock()
		n.dir = nil // a restarted server may have lost the buckets
		n.mu.Unlock()
	}
	select {
	case n.kick <- reopen:
	default:
		if reopen { // a pending plain kick must not swallow the reopen
			select {
			case <-n.kick:
			default:
			}
			select {
			case n.kick <- true:
			default:
			}
		}
	}
}

// directory is the open directory, or nil when NATS is not reachable.
func (n *Node) directory() *directory {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.nc.IsConnected() {
		return nil
	}
	return n.dir
}

// lockRoom takes room's lock, or gives up when ctx ends; the returned
// func releases it.
func (n *Node) lockRoom(ctx context.Context, room string) (func(), error) {
	n.mu.Lock()
	l := n.locks[room]
	if l == nil {
		l = &roomLock{ch: make(chan struct{}, 1)}
		n.locks[room] = l
	}
	l.refs++
	n.mu.Unlock()
	forget := func() {
		n.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(n.locks, room)
		}
		n.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("waiting for another join of room %s: %w", room, ctx.Err())
	}
	return func() {
		<-l.ch
		forget()
	}, nil
}

// opContext bounds one directory operation (or a few in a row).
func (n *Node) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.OpTimeout)
}

// Close stops the keeper, releases the rooms this node owns and its
// liveness key (best effort, each bounded by OpTimeout), and closes the
// NATS connection.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	n.wg.Wait()
	if d := n.directory(); d != nil {
		n.mu.Lock()
		owned := n.owned
		n.owned = make(map[string]*claim)
		n.mu.Unlock()
		for room, c := range owned {
			if c.rev != 0 {
				n.release(d, room, c.rev)
			}
		}
		ctx, cancel := n.opContext(context.Background())
		if err := d.nodes.Delete(ctx, n.cfg.NodeID); err != nil {
			n.log.Warn("cannot remove this node's liveness key; it ages out by itself", "err", err, "ttl", n.cfg.TTL)
		}
		cancel()
	}
	n.m.owned.Set(0)
	n.nc.Close()
	return nil
}

// release deletes room's entry if it is still rev; errors are logged (the
// entry then ages out within the TTL).
func (n *Node) release(d *directory, room string, rev uint64) {
	ctx, cancel := n.opContext(context.Background())
	defer cancel()
	start := time.Now()
	err := d.release(ctx, room, rev)
	n.m.observe(opRelease, resultOf(err), start)
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		n.log.Warn("cannot release a room's directory entry; it ages out by itself", "room", room, "err", err, "ttl", n.cfg.TTL)
	}
}
