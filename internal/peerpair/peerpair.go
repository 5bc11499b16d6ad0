// Package peerpair connects two pion peer connections in one process, for
// tests that need a raw WebRTC link without the relay (a packet path
// under test between them). It imports only pion, so that any package's
// tests may use it, sfu's included.
package peerpair

import (
	"context"
	"errors"

	"github.com/pion/webrtc/v4"
)

// Connect runs offer and answer, each side with every candidate gathered
// (no trickle), and waits until both are connected or ctx ends.
func Connect(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	connected := func(pc *webrtc.PeerConnection) <-chan struct{} {
		c := make(chan struct{})
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				close(c)
			}
		})
		return c
	}
	c1, c2 := connected(offerer), connected(answerer)
	exchange := func(from, to *webrtc.PeerConnection, create func(*webrtc.PeerConnection) (webrtc.SessionDescription, error)) error {
		sd, err := create(from)
		if err != nil {
			return err
		}
		gathered := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(sd); err != nil {
			return err
		}
		select {
		case <-gathered:
		case <-ctx.Done():
			return errors.New("gathering candidates: deadline")
		}
		return to.SetRemoteDescription(*from.LocalDescription())
	}
	if err := exchange(offerer, answerer, func(pc *webrtc.PeerConnection) (webrtc.SessionDescription, error) { return pc.CreateOffer(nil) }); err != nil {
		return err
	}
	if err := exchange(answerer, offerer, func(pc *webrtc.PeerConnection) (webrtc.SessionDescription, error) { return pc.CreateAnswer(nil) }); err != nil {
		return err
	}
	for _, c := range []<-chan struct{}{c1, c2} {
		select {
		case <-c:
		case <-ctx.Done():
			return errors.New("not connected before the deadline")
		}
	}
	return nil
}
