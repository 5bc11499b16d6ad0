package cluster

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// connect opens the NATS connection. It returns at once even when NATS
// cannot be reached (RetryOnFailedConnect): the relay serves its rooms
// regardless, and the connection is retried forever, as after any loss.
// Each state change is logged once and shown in relay_cluster_nats_connected;
// a (re)connection wakes the keeper to rebuild this node's entries.
func (n *Node) connect() (*nats.Conn, error) {
	log := n.log
	nc, err := nats.Connect(n.cfg.NATSURL,
		nats.Name("lianmai-relay "+n.cfg.NodeID),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(n.cfg.ReconnectWait),
		nats.ConnectHandler(func(*nats.Conn) {
			log.Info("connected to NATS: the cluster directory is available", "nats", n.cfg.NATSURL)
			n.m.connected.Set(1)
			n.wake(true)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("lost the connection to NATS: rooms here keep running, joins that need the directory get unavailable; reconnecting", "nats", n.cfg.NATSURL, "err", err)
			n.m.connected.Set(0)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info("reconnected to NATS: rebuilding this node's directory entries", "nats", n.cfg.NATSURL)
			n.m.connected.Set(1)
			n.m.reconnects.Inc()
			n.wake(true)
			n.resyncEdges()  // owners rebuild their proxies of this relay's listeners
			n.askEdgeLists() // and this relay its proxies of its edges' listeners
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("NATS reconnection attempt failed", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			n.m.connected.Set(0)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("NATS %s: %w", n.cfg.NATSURL, err)
	}
	if nc.IsConnected() {
		n.m.connected.Set(1)
	}
	return nc, nil
}
