package signaling

import (
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/sfu"
)

// message is the package's message with what the server adds per
// participant: joined's ice_servers, whose credentials name the
// participant (Config.ICEServers).
func (srv *Server) message(ev sfu.Event) any {
	m := message(ev)
	if j, ok := m.(protocol.Joined); ok && srv.cfg.ICEServers != nil {
		j.ICEServers = srv.cfg.ICEServers(j.Participant.ID)
		return j
	}
	return m
}
