// Package cluster makes several relays one service over NATS
// (docs/cluster.md). Each relay is a node with an id and a public
// WebSocket URL. A JetStream key-value bucket (the directory) maps each
// room to the node that owns it: claimed atomically on the room's first
// join (create-if-absent), renewed by the owner's heartbeat, released when
// the room empties. A second bucket holds each node's liveness key. Both
// buckets age keys out (MaxAge, Config.TTL), so an entry whose node stopped
// heartbeating is gone at most TTL after its last renewal.
//
// A Node implements sfu.Router: the room layer asks it where each join
// goes (here, another node's URL, or an edge of the owner) and tells it
// when rooms come and go. When NATS returns after an outage the node
// rebuilds its part of the directory from the rooms it holds, without a
// restart.
package cluster
