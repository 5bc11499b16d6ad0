package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is a room's value in the rooms bucket: its owner and where
// clients reach it (so a redirect needs one lookup).
type entry struct {
	Node string `json:"node"`
	URL  string `json:"url"`
}

// directory is the two buckets. Made when NATS is reachable (start,
// reconnect); its methods do one request each, bounded by ctx.
type directory struct {
	rooms, nodes jetstream.KeyValue
}

// openDirectory creates the buckets, or checks and keeps them: every node
// does this at start and after each reconnection (a NATS server restarted
// without its store has none). MaxAge is the TTL: a key nobody renews
// ages out.
func openDirectory(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*directory, error) {
	var d directory
	for _, b := range []struct {
		name, desc string
		kv         *jetstream.KeyValue
	}{
		{RoomsBucket, "relay cluster: room -> owner node", &d.rooms},
		{NodesBucket, "relay cluster: node id -> WebSocket URL, while the node heartbeats", &d.nodes},
	} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      b.name,
			Description: b.desc,
			History:     1,
			TTL:         ttl,
			Storage:     jetstream.MemoryStorage, // soft state: heartbeats rebuild it
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("create or open bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	return &d, nil
}

// lookup reads room's entry; jetstream.ErrKeyNotFound if it has none.
func (d *directory) lookup(ctx context.Context, room string) (entry, uint64, error) {
	kve, err := d.rooms.Get(ctx, room)
	if err != nil {
		return entry{}, 0, err
	}
	var e entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return entry{}, 0, fmt.Errorf("room %s: bad directory entry %q: %w", room, kve.Value(), err)
	}
	return e, kve.Revision(), nil
}

// claim creates room's entry if it has none; jetstream.ErrKeyExists if it
// has.
func (d *directory) claim(ctx context.Context, room string, e entry) (uint64, error) {
	return d.rooms.Create(ctx, room, mustJSON(e))
}

// renew rewrites room's entry if it is still at rev (so it outlives
// another TTL); jetstream.ErrKeyRevisionMismatch if it changed.
func (d *directory) renew(ctx context.Context, room string, e entry, rev uint64) (uint64, error) {
	return d.rooms.Update(ctx, room, mustJSON(e), rev)
}

// release deletes room's entry if it is still at rev.
func (d *directory) release(ctx context.Context, room string, rev uint64) error {
	return d.rooms.Delete(ctx, room, jetstream.LastRevision(rev))
}

// heartbeat writes this node's liveness key.
func (d *directory) heartbeat(ctx context.Context, id, url string) error {
	_, err := d.nodes.Put(ctx, id, []byte(url))
	return err
}

// liveNodes are the nodes whose liveness keys have not aged out: id -> URL.
func (d *directory) liveNodes(ctx context.Context) (map[string]string, error) {
	keys, err := d.nodes.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		kve, err := d.nodes.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // aged out meanwhile
		}
		if err != nil {
			return nil, err
		}
		out[k] = string(kve.Value())
	}
	return out, nil
}

func mustJSON(e entry) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // two strings always marshal
	}
	return b
}

// resultOf is err's label.
func resultOf(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return resultNotFound
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return resultConflict
	}
	return resultError
}
