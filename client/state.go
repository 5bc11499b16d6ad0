package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// stateWatch follows a peer connection's state so that callers can wait
// for it to connect. The zero value is ready (state "unknown": no peer
// connection yet).
type stateWatch struct {
	mu      sync.Mutex
	state   webrtc.PeerConnectionState
	err     error         // set when the connection could not be set up
	changed chan struct{} // closed and replaced on every change; nil until someone waits
}

func (w *stateWatch) set(s webrtc.PeerConnectionState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state = s
	w.notifyLocked()
}

// fail records that the connection could not be set up.
func (w *stateWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.notifyLocked()
}

func (w *stateWatch) notifyLocked() {
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

func (w *stateWatch) get() webrtc.PeerConnectionState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// waitConnected returns nil once the state is connected, or an error when
// it is failed or closed, the setup failed, ctx ends or closing is closed.
func (w *stateWatch) waitConnected(ctx context.Context, closing <-chan struct{}) error {
	for {
		w.mu.Lock()
		state, err := w.state, w.err
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()

		switch {
		case state == webrtc.PeerConnectionStateConnected:
			return nil
		case err != nil:
			return fmt.Errorf("%w: %w", ErrPeerFailed, err)
		case state == webrtc.PeerConnectionStateFailed || state == webrtc.PeerConnectionStateClosed:
			return fmt.Errorf("%w: state %s", ErrPeerFailed, state)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for connected (state %s): %w", state, ctx.Err())
		case <-closing:
			return ErrClosed
		}
	}
}
