package client

import (
	"errors"
	"strings"
	"sync"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

// candidateToWire converts a local candidate from pion's OnICECandidate to
// the browser's RTCIceCandidateInit shape. nil (end of candidates) stays
// nil. ufrag, when known, becomes usernameFragment.
func candidateToWire(c *webrtc.ICECandidate, ufrag string) *protocol.ICECandidate {
	if c == nil {
		return nil
	}
	init := c.ToJSON()
	w := &protocol.ICECandidate{
		Candidate:     init.Candidate,
		SDPMid:        init.SDPMid,
		SDPMLineIndex: init.SDPMLineIndex,
	}
	if ufrag != "" {
		w.UsernameFragment = &ufrag
	}
	return w
}

// candidateFromWire converts a remote candidate to what pion's
// AddICECandidate takes. ok is false for nil, the end of candidates, which
// the client ignores.
func candidateFromWire(c *protocol.ICECandidate) (init webrtc.ICECandidateInit, ok bool) {
	if c == nil {
		return webrtc.ICECandidateInit{}, false
	}
	return webrtc.ICECandidateInit{
		Candidate:        c.Candidate,
		SDPMid:           c.SDPMid,
		SDPMLineIndex:    c.SDPMLineIndex,
		UsernameFragment: c.UsernameFragment,
	}, true
}

// iceUfrag returns the first a=ice-ufrag in an SDP, or "".
func iceUfrag(sdp string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// maxHeld bounds what a holdQueue keeps before it opens; a peer trickles a
// handful of candidates, so more than this is a runaway and is dropped.
const maxHeld = 256

var errHoldFull = errors.New("too many candidates held")

// holdQueue holds values until it is opened, then applies them in order,
// and applies every later value at once. It serves both directions of
// trickle ICE: remote candidates that arrive before the remote description
// of their peer connection (applied with AddICECandidate once it is set),
// and local candidates gathered before our offer or answer went out (sent
// once it has, so the relay always sees the description first).
//
// apply runs with the queue's lock held, which keeps the order; it must
// not call back into the queue.
type holdQueue[T any] struct {
	mu    sync.Mutex
	apply func(T) error // nil until open
	held  []T           // owned by the queue; emptied on open
}

// push applies v, or holds it if the queue is not open yet.
func (q *holdQueue[T]) push(v T) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.apply != nil {
		return q.apply(v)
	}
	if len(q.held) >= maxHeld {
		return errHoldFull
	}
	q.held = append(q.held, v)
	return nil
}

// open applies what was held, in order, and applies later values at once.
// Opening an open queue does nothing. It returns the errors of the held
// values that failed; the others are applied regardless.
func (q *holdQueue[T]) open(apply func(T) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.apply != nil {
		return nil
	}
	q.apply = apply
	var errs []error
	for _, v := range q.held {
		if err := apply(v); err != nil {
			errs = append(errs, err)
		}
	}
	q.held = nil
	return errors.Join(errs...)
}
