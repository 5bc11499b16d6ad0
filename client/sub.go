package client

import (
	"errors"
	"fmt"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

// RemoteTrack is a track the relay forwards on the sub peer connection.
type RemoteTrack struct {
	Track    *webrtc.TrackRemote
	Receiver *webrtc.RTPReceiver
	StreamID string // the publisher's participant id, or "mix" for the room's audience mix
	TrackID  string // the id in track_published
}

// handleSubOffer applies a sub offer and sends the answer. The first offer
// creates the sub peer connection; later ones renegotiate it. It runs on
// the reader.
func (c *Client) handleSubOffer(sdp string) {
	c.mu.Lock()
	c.subOffer = sdp
	pc := c.sub.pc
	c.mu.Unlock()

	if pc == nil {
		var err error
		if pc, err = c.newSubPC(); err != nil {
			if !errors.Is(err, ErrClosed) {
				c.log.Error("creating sub peer connection", "err", err)
			}
			c.sub.state.fail(err)
			return
		}
	}
	if err := c.answerSub(pc, sdp); err != nil {
		c.log.Error("answering sub offer", "err", err)
		c.sub.state.fail(err)
	}
}

func (c *Client) answerSub(pc *webrtc.PeerConnection, sdp string) error {
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}
	if err := pc.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("set remote description: %w", err)
	}
	c.openRemote(c.sub, pc)
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	if err := c.Send(&protocol.SessionDescription{
		Header: protocol.Header{Type: protocol.TypeAnswer},
		PC:     protocol.PCSub,
		SDP:    answer.SDP,
	}); err != nil {
		return fmt.Errorf("send answer: %w", err)
	}
	c.log.Debug("sub answer sent")
	c.openLocal(c.sub, answer.SDP)
	return nil
}

func (c *Client) newSubPC() (*webrtc.PeerConnection, error) {
	api, err := newAPI(&c.cfg, c.knet, c.log, true, c.joined.ICEServers)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(c.rtcConfig())
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	c.watch(c.sub, pc)
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		rt := &RemoteTrack{Track: t, Receiver: r, StreamID: t.StreamID(), TrackID: t.ID()}
		c.log.Debug("track", "stream", rt.StreamID, "track", rt.TrackID)
		select {
		case c.tracks <- rt:
		case <-c.closing:
		}
	})

	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.sub.pc = pc
	}
	c.mu.Unlock()
	if closed {
		_ = pc.Close()
		return nil, ErrClosed
	}
	return pc, nil
}
