package client

import (
	"context"
	"fmt"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Publisher is the client's pub peer connection with its one Opus track.
type Publisher struct {
	c      *Client
	p      *peer
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	answer string
}

// Publish opens the pub peer connection with one Opus audio track
// (48 kHz, 2 channels, sendonly), offers it, waits for the relay's answer
// and applies it. A refusal comes back as a *ServerError. A client
// publishes once; a failed Publish (say, forbidden before the client was
// made a guest) may be retried.
//
// An audience member may Publish while its mic request or invitation is
// pending (an early pub, docs/protocol.md): the connection is set up at
// once, and what it sends is forwarded only once the participant is a
// guest (role_changed). If the request ends without a seat, the relay
// closes the connection and says so in mic_rejected (PubClosed): the
// client closes its side too, and Publish may be called again.
func (c *Client) Publish(ctx context.Context) (*Publisher, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrClosed
	case c.pubBusy:
		c.mu.Unlock()
		return nil, ErrAlreadyPublishing
	}
	c.pubBusy = true
	c.mu.Unlock()

	pub, err := c.publish(ctx)
	if err != nil {
		c.mu.Lock()
		c.pubBusy = false
		c.mu.Unlock()
		return nil, fmt.Errorf("client: publish: %w", err)
	}
	return pub, nil
}

func (c *Client) publish(ctx context.Context) (pub *Publisher, err error) {
	api, err := newAPI(&c.cfg, c.knet, c.log, false, c.joined.ICEServers)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(c.rtcConfig())
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	p := &peer{name: protocol.PCPub, pc: pc}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.pub = p // from here Close closes pc, and the reader routes pub candidates to p
	}
	c.mu.Unlock()
	if closed {
		_ = pc.Close()
		return nil, ErrClosed
	}
	defer func() {
		if err != nil {
			_ = pc.GracefulClose()
		}
	}()

	c.watch(p, pc)
	track, err := webrtc.NewTrackLocalStaticRTP(opusCapability(!c.cfg.DisableNACK), "audio", c.ID())
	if err != nil {
		return nil, fmt.Errorf("new track: %w", err)
	}
	tr, err := pc.AddTransceiverFromTrack(track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("add transceiver: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("create offer: %w", err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("set local description: %w", err)
	}

	id := c.newID()
	reply, err := c.register(id)
	if err != nil {
		return nil, err
	}
	defer c.unregister(id)
	// Drop an unmatched answer left over from an earlier attempt.
	select {
	case <-c.pubReply:
	default:
	}
	if err := c.Send(&protocol.SessionDescription{
		Header: protocol.Header{Type: protocol.TypeOffer, ID: id},
		PC:     protocol.PCPub,
		SDP:    offer.SDP,
	}); err != nil {
		return nil, fmt.Errorf("send offer: %w", err)
	}
	c.openLocal(p, offer.SDP)

	var msg any
	select {
	case msg = <-reply:
	case msg = <-c.pubReply:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the pub answer: %w", ctx.Err())
	case <-c.readDone:
		return nil, fmt.Errorf("waiting for the pub answer: %w", ErrDisconnected)
	case <-c.closing:
		return nil, ErrClosed
	}
	var answer *protocol.SessionDescription
	switch m := msg.(type) {
	case *protocol.Error:
		return nil, newServerError(m)
	case *protocol.SessionDescription:
		if m.Type != protocol.TypeAnswer || m.PC != protocol.PCPub {
			return nil, fmt.Errorf("relay replied to the pub offer with %s on %q", m.Type, m.PC)
		}
		answer = m
	default:
		return nil, fmt.Errorf("relay replied to the pub offer with %T", msg)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{
		Type: webrtc.SDPTypeAnswer, SDP: answer.SDP,
	}); err != nil {
		return nil, fmt.Errorf("set remote description: %w", err)
	}
	c.openRemote(p, pc)

	sender := tr.Sender()
	c.mu.Lock()
	closed = c.closed
	if !closed {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	// Reading RTCP drives the interceptors: the NACK responder and the
	// sender reports see incoming RTCP only when someone reads it. Ends
	// when pc closes.
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return &Publisher{c: c, p: p, track: track, sender: sender, answer: answer.SDP}, nil
}

// pubClosedByRelay closes the pub peer connection after the relay closed
// its side: an early pub whose mic request or invitation ended without a
// seat (mic_rejected with pub_closed). Publish may open a new one.
func (c *Client) pubClosedByRelay() {
	c.mu.Lock()
	p := c.pub
	if c.closed || p == nil || p.pc == nil {
		c.mu.Unlock()
		return
	}
	c.pub, c.pubBusy = nil, false
	c.wg.Add(1)
	c.mu.Unlock()
	go func() { // not on the reader: closing takes a while
		defer c.wg.Done()
		_ = p.pc.Close()
	}()
}

// WriteRTP sends pkt on the published track. pion sets the SSRC and
// payload type; pkt is not modified. Header extensions are sent as given
// (see AudioLevelExtensionID).
func (p *Publisher) WriteRTP(pkt *rtp.Packet) error {
	return p.track.WriteRTP(pkt)
}

// State is the pub peer connection's state: closed once the client or,
// for an early pub whose request ended, the relay closed it.
func (p *Publisher) State() webrtc.PeerConnectionState { return p.p.state.get() }

// AnswerSDP returns the relay's answer as received.
func (p *Publisher) AnswerSDP() string { return p.answer }

// Connected waits until the pub peer connection is connected.
func (p *Publisher) Connected(ctx context.Context) error {
	if err := p.p.state.waitConnected(ctx, p.c.closing); err != nil {
		return fmt.Errorf("client: pub: %w", err)
	}
	return nil
}

// AudioLevelExtensionID returns the negotiated id of the RFC 6464 audio
// level header extension, or 0 if the relay did not accept it. To send
// levels, add the extension to each packet with that id.
func (p *Publisher) AudioLevelExtensionID() uint8 {
	for _, ext := range p.sender.GetParameters().HeaderExtensions {
		if ext.URI == sdp.AudioLevelURI {
			return uint8(ext.ID)
		}
	}
	return 0
}
