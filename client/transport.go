package client

import (
	"errors"

	"github.com/pion/webrtc/v4"
)

// SubTransport names how the sub peer connection's media travels, in the
// words the page's connection panel uses: "udp" or "tcp" (straight to the
// relay), "relay/udp", "relay/tcp" or "relay/tls" (through a TURN server,
// reached over that protocol). It fails while no candidate pair is
// selected.
func (c *Client) SubTransport() (string, error) {
	c.mu.Lock()
	pc := c.sub.pc
	c.mu.Unlock()
	if pc == nil {
		return "", errors.New("client: no sub peer connection yet")
	}
	return selectedTransport(pc)
}

// selectedTransport reads pc's selected pair's local candidate from its
// statistics, the only place pion gives a relay candidate's protocol.
func selectedTransport(pc *webrtc.PeerConnection) (string, error) {
	sctp := pc.SCTP()
	if sctp == nil {
		return "", errors.New("client: the peer connection has no transport")
	}
	pair, ok := sctp.Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return "", errors.New("client: no candidate pair selected yet")
	}
	local, ok := pc.GetStats()[pair.LocalCandidateID].(webrtc.ICECandidateStats)
	if !ok {
		return "", errors.New("client: the selected pair's local candidate has no statistics")
	}
	return transportName(local.CandidateType, local.Protocol, local.RelayProtocol), nil
}

// transportName is the panel's name for a local candidate: its protocol,
// or for a relay candidate "relay/" and how the TURN server is reached.
func transportName(typ webrtc.ICECandidateType, protocol, relayProtocol string) string {
	if typ == webrtc.ICECandidateTypeRelay {
		if relayProtocol == "" {
			relayProtocol = "udp"
		}
		return "relay/" + relayProtocol
	}
	return protocol
}
