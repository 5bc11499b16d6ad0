package sfu

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/webrtc/v4"
)

// candidateGate orders one peer connection's ICE candidates against its
// descriptions: the relay's own go out only after the description they
// belong to was sent, and the client's are held until the client's
// description is set (pion refuses them before). Once its connection is
// replaced or closed the gate is retired: the relay's late candidates for
// it go nowhere, since the session would take them for its new
// connection's.
type candidateGate struct {
	pc   PC
	sink Sink
	log  *slog.Logger

	mu          sync.Mutex
	retired     bool
	localReady  bool
	local       []*webrtc.ICECandidateInit // held until localReady
	remoteReady bool
	remote      []webrtc.ICECandidateInit // held until remoteReady
}

// onLocal is the peer connection's OnICECandidate handler; nil is the end
// of candidates.
func (g *candidateGate) onLocal(c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		ci := c.ToJSON()
		init = &ci
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.retired:
	case !g.localReady:
		g.local = append(g.local, init)
	default:
		g.sink.Send(CandidateEvent{PC: g.pc, Candidate: init})
	}
}

// retire drops the held candidates and every later one of the relay's.
func (g *candidateGate) retire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retired = true
	g.local = nil
}

// setLocalReady sends the held candidates; call after sending the
// description.
func (g *candidateGate) setLocalReady() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.localReady || g.retired {
		return
	}
	g.localReady = true
	for _, c := range g.local {
		g.sink.Send(CandidateEvent{PC: g.pc, Candidate: c})
	}
	g.local = nil
}

// addRemote adds the client's candidate to pc, or holds it until
// setRemoteReady. pc may be nil while not yet created.
func (g *candidateGate) addRemote(pc *webrtc.PeerConnection, c webrtc.ICECandidateInit) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.remoteReady || pc == nil {
		if len(g.remote) >= maxHeldCandidates {
			return fmt.Errorf("%w: more than %d candidates before the %s description", ErrBadCandidate, maxHeldCandidates, g.pc)
		}
		g.remote = append(g.remote, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// fresh is an empty gate for a new connection under the same name; retire
// the old one, so that its connection's late candidates stay with it.
func (g *candidateGate) fresh() *candidateGate {
	return &candidateGate{pc: g.pc, sink: g.sink, log: g.log}
}

// maxHeldCandidates bounds what a client may send before its description.
const maxHeldCandidates = 64

// setRemoteReady adds the held candidates to pc; call after
// SetRemoteDescription succeeded.
func (g *candidateGate) setRemoteReady(pc *webrtc.PeerConnection) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.remoteReady {
		return
	}
	g.remoteReady = true
	for _, c := range g.remote {
		if err := pc.AddICECandidate(c); err != nil {
			// The client was told nothing when it sent it; say it now in
			// the log, the candidate is useless anyway.
			g.log.Info("held ICE candidate refused", "pc", g.pc, "candidate", c.Candidate, "err", err)
		}
	}
	g.remote = nil
}
