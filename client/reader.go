package client

import (
	"encoding/json"
	"errors"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
)

// readLoop is the client's one WebSocket reader. It never blocks on the
// user: events go to a drop-oldest queue, replies to buffered waiters. It
// does block while it applies a sub offer, which keeps the relay's sub
// offers and candidates in order; that takes milliseconds and no network.
func (c *Client) readLoop() {
	defer close(c.readDone)
	for _, data := range c.early {
		c.dispatch(data)
	}
	c.early = nil
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			// gorilla reports a connection that ended without a close
			// frame as 1006, which no server may send.
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				c.closeCode.Store(int64(ce.Code))
			}
			c.log.Debug("websocket reader ended", "err", err)
			return
		}
		if typ != websocket.TextMessage {
			c.log.Warn("ignoring non-text frame from relay", "type", typ)
			continue
		}
		c.dispatch(data)
	}
}

// dispatch routes one server message.
func (c *Client) dispatch(data []byte) {
	var h struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		PC   string `json:"pc"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		c.log.Warn("undecodable message from relay", "err", err)
		return
	}
	msg, err := decodeServerMessage(h.Type, data)
	if err != nil {
		c.log.Warn("undecodable message from relay", "type", h.Type, "err", err)
		return
	}

	delivered := h.ID != "" && c.deliver(h.ID, msg)

	switch h.Type {
	case protocol.TypeOffer:
		sd := msg.(*protocol.SessionDescription)
		if sd.PC != protocol.PCSub {
			c.log.Warn("relay offered on a pc other than sub", "pc", sd.PC)
			return
		}
		c.handleSubOffer(sd.SDP)
	case protocol.TypeAnswer:
		sd := msg.(*protocol.SessionDescription)
		if sd.PC != protocol.PCPub {
			c.log.Warn("relay answered on a pc other than pub", "pc", sd.PC)
			return
		}
		if !delivered {
			// An answer without our offer's id still answers it.
			select {
			case c.pubReply <- sd:
			default:
				c.log.Warn("unexpected pub answer from relay")
			}
		}
	case protocol.TypeCandidate:
		c.handleRemoteCandidate(msg.(*protocol.Candidate))
	case protocol.TypePong:
	case protocol.TypeMicRejected:
		if m, ok := msg.(*protocol.MicRejected); ok && m.PubClosed {
			c.pubClosedByRelay()
		}
		c.pushEvent(msg)
	default:
		c.pushEvent(msg)
	}
}

// deliver hands msg to the waiter for id, if there is one.
func (c *Client) deliver(id string, msg any) bool {
	c.mu.Lock()
	ch, ok := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	if ok {
		ch <- msg // buffered 1, sent once
	}
	return ok
}

// pushEvent queues ev on events; when events is full it drops the oldest.
// Only the reader calls it, so the loop ends in at most a few rounds.
func (c *Client) pushEvent(ev any) {
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.droppedEvents.Add(1)
		default:
		}
	}
}

// decodeServerMessage decodes data into the protocol type for typ, or a
// map[string]any for types the protocol package lacks.
func decodeServerMessage(typ string, data []byte) (any, error) {
	msg, ok := protocol.NewServerMessage(typ)
	if !ok {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		return m, nil
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// handleRemoteCandidate applies a relay candidate to its peer connection,
// or holds it until that connection's remote description is set.
func (c *Client) handleRemoteCandidate(m *protocol.Candidate) {
	init, ok := candidateFromWire(m.Candidate)
	if !ok {
		return // end of candidates
	}
	var p *peer
	switch m.PC {
	case protocol.PCSub:
		p = c.sub
	case protocol.PCPub:
		c.mu.Lock()
		p = c.pub
		c.mu.Unlock()
	}
	if p == nil {
		c.log.Warn("relay candidate for no peer connection", "pc", m.PC)
		return
	}
	if err := p.remote.push(init); err != nil {
		c.log.Warn("adding relay candidate", "pc", m.PC, "err", err)
	}
}
