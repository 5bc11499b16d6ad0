package client

import (
	"context"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
)

// Cross-room co-streaming ("PK", docs/protocol.md): a host invites
// another room, a host of that room accepts or rejects, either ends it.
// The relay's answers come as events (*protocol.PKInvited, PKStarted,
// PKRejected, PKEnded; remote participants in ParticipantJoined with
// role "remote").

// PKInvite invites room to link with ours (pk_invite).
func (c *Client) PKInvite(ctx context.Context, room string) error {
	return c.Command(ctx, &protocol.PKRequest{Header: protocol.Header{Type: protocol.TypePKInvite}, Room: room})
}

// PKAccept accepts room's invitation (pk_accept).
func (c *Client) PKAccept(ctx context.Context, room string) error {
	return c.Command(ctx, &protocol.PKRequest{Header: protocol.Header{Type: protocol.TypePKAccept}, Room: room})
}

// PKReject declines room's invitation (pk_reject).
func (c *Client) PKReject(ctx context.Context, room string) error {
	return c.Command(ctx, &protocol.PKRequest{Header: protocol.Header{Type: protocol.TypePKReject}, Room: room})
}

// PKEnd ends our link or invitation with room (pk_end).
func (c *Client) PKEnd(ctx context.Context, room string) error {
	return c.Command(ctx, &protocol.PKRequest{Header: protocol.Header{Type: protocol.TypePKEnd}, Room: room})
}

// Command sends msg, a message the relay answers only when it fails
// (mic_*, mute, kick, pk_*), and reports its error as a *ServerError, or
// nil once the relay has handled it: a ping sent after it is answered
// (the relay handles a connection's messages in order).
func (c *Client) Command(ctx context.Context, msg any) error {
	data, id, err := withID(msg, "", c.newID)
	if err != nil {
		return fmt.Errorf("client: command: %w", err)
	}
	reply, err := c.register(id)
	if err != nil {
		return err
	}
	defer c.unregister(id)
	if err := c.SendRaw(websocket.TextMessage, data); err != nil {
		return err
	}
	if _, err := c.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing}}, ""); err != nil {
		return err
	}
	select {
	case v := <-reply:
		if e, ok := v.(*protocol.Error); ok {
			return newServerError(e)
		}
		return fmt.Errorf("client: unexpected reply %T to %q", v, id)
	default:
		return nil
	}
}
