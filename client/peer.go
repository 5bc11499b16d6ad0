package client

import (
	"github.com/pion/webrtc/v4"
)

// peer is one of the client's two peer connections with its signaling
// state. The sub peer exists from Dial, before its PeerConnection, so that
// candidates and SubConnected can wait for it; a pub peer is made by each
// Publish attempt.
type peer struct {
	name   string                             // protocol.PCSub or protocol.PCPub
	pc     *webrtc.PeerConnection             // set once; guarded by Client.mu
	remote holdQueue[webrtc.ICECandidateInit] // the relay's candidates, until our remote description is set
	local  holdQueue[*webrtc.ICECandidate]    // our candidates, until our offer or answer is sent
	state  stateWatch
}

// watch installs the handlers every peer connection needs: local
// candidates go out through p.local, state changes go to p.state.
func (c *Client) watch(p *peer, pc *webrtc.PeerConnection) {
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if err := p.local.push(cand); err != nil {
			c.log.Debug("sending local candidate", "pc", p.name, "err", err)
		}
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		c.log.Debug("ice state", "pc", p.name, "state", s.String())
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("peer connection state", "pc", p.name, "state", s.String())
		p.state.set(s)
	})
}

// openLocal sends what p.local held and everything after it, once our
// description (sdp) has been sent.
func (c *Client) openLocal(p *peer, sdp string) {
	ufrag := iceUfrag(sdp)
	err := p.local.open(func(cand *webrtc.ICECandidate) error {
		return c.sendCandidate(p.name, candidateToWire(cand, ufrag))
	})
	if err != nil {
		c.log.Debug("sending held local candidates", "pc", p.name, "err", err)
	}
}

// openRemote applies the relay's held candidates to pc, and later ones at
// once, after pc's remote description is set.
func (c *Client) openRemote(p *peer, pc *webrtc.PeerConnection) {
	if err := p.remote.open(pc.AddICECandidate); err != nil {
		c.log.Warn("adding held remote candidates", "pc", p.name, "err", err)
	}
}
