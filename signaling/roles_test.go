package signaling_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

// stage is a room with one participant in every role and mic state:
// a host, a guest, an audience member with nothing pending, one who has
// asked for the mic and one a host has invited.
type stage struct {
	host, guest, audience, requester, invitee *client.Client
}

func setStage(ctx context.Context, t *testing.T, r *relay, room string) *stage {
	t.Helper()
	s := &stage{
		host:      r.join(ctx, t, room, "Host", protocol.RoleHost),
		guest:     r.join(ctx, t, room, "Guest", protocol.RoleGuest),
		audience:  r.join(ctx, t, room, "Aud", protocol.RoleAudience),
		requester: r.join(ctx, t, room, "Req", protocol.RoleAudience),
		invitee:   r.join(ctx, t, room, "Inv", protocol.RoleAudience),
	}
	mustOK(ctx, t, s.requester, map[string]any{"type": "mic_request"})
	mustOK(ctx, t, s.host, map[string]any{"type": "mic_invite", "participant": s.invitee.ID()})
	return s
}

var msgSeq int // ids for do; tests run one at a time

// do sends msg from c with a fresh id and returns the error code it
// caused, "" for none. The relay handles a client's messages in order, so
// an error arrives before the pong of a ping sent after it.
func do(ctx context.Context, t *testing.T, c *client.Client, msg map[string]any) string {
	t.Helper()
	msgSeq++
	id := fmt.Sprintf("m%d", msgSeq)
	msg["id"] = id
	data, _ := json.Marshal(msg)
	if err := c.SendRaw(websocket.TextMessage, data); err != nil {
		t.Fatalf("send: %v", err)
	}
	ping(ctx, t, c)
	code := ""
	for {
		select {
		case ev := <-c.Events():
			if e, ok := ev.(*protocol.Error); ok && e.ID == id {
				if e.Message == "" {
					t.Errorf("error %s without a message", e.Code)
				}
				code = e.Code
				continue
			}
			pushBacklog(c, ev)
		default:
			return code
		}
	}
}

func mustOK(ctx context.Context, t *testing.T, c *client.Client, msg map[string]any) {
	t.Helper()
	if code := do(ctx, t, c, msg); code != "" {
		t.Fatalf("%v: error %s", msg, code)
	}
}

// TestEveryMessageEveryRole: each co-streaming message from each role and
// mic state is allowed or gets the exact error code, over the real
// WebSocket API. Every row runs in a room of its own.
func TestEveryMessageEveryRole(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	type who func(*stage) *client.Client
	var (
		host      who = func(s *stage) *client.Client { return s.host }
		guest     who = func(s *stage) *client.Client { return s.guest }
		audience  who = func(s *stage) *client.Client { return s.audience }
		requester who = func(s *stage) *client.Client { return s.requester }
		invitee   who = func(s *stage) *client.Client { return s.invitee }
		nobody    who = func(*stage) *client.Client { return nil }
	)
	const ok = ""
	tests := []struct {
		from   who
		typ    string
		target who // nil: no participant field; nobody: an id not in the room
		extra  map[string]any
		want   string
	}{
		{host, "mic_request", nil, nil, protocol.CodeForbidden},
		{guest, "mic_request", nil, nil, protocol.CodeForbidden},
		{audience, "mic_request", nil, nil, ok},
		{requester, "mic_request", nil, nil, protocol.CodeConflict},
		{invitee, "mic_request", nil, nil, protocol.CodeConflict},

		{host, "mic_invite", audience, nil, ok},
		{host, "mic_invite", guest, nil, protocol.CodeConflict},
		{host, "mic_invite", requester, nil, protocol.CodeConflict},
		{host, "mic_invite", invitee, nil, protocol.CodeConflict},
		{host, "mic_invite", nobody, nil, protocol.CodeNotFound},
		{guest, "mic_invite", audience, nil, protocol.CodeForbidden},
		{audience, "mic_invite", requester, nil, protocol.CodeForbidden},

		{host, "mic_accept", requester, nil, ok},
		{host, "mic_accept", audience, nil, protocol.CodeNotFound},
		{host, "mic_accept", invitee, nil, protocol.CodeNotFound},
		{host, "mic_accept", nobody, nil, protocol.CodeNotFound},
		{host, "mic_accept", nil, nil, protocol.CodeBadRequest},
		{guest, "mic_accept", requester, nil, protocol.CodeForbidden},
		{audience, "mic_accept", nil, nil, protocol.CodeNotFound},
		{requester, "mic_accept", nil, nil, protocol.CodeNotFound},
		{invitee, "mic_accept", nil, nil, ok},

		{host, "mic_reject", requester, nil, ok},
		{host, "mic_reject", audience, nil, protocol.CodeNotFound},
		{host, "mic_reject", nil, nil, protocol.CodeBadRequest},
		{guest, "mic_reject", requester, nil, protocol.CodeForbidden},
		{audience, "mic_reject", nil, nil, protocol.CodeNotFound},
		{requester, "mic_reject", nil, nil, ok},
		{invitee, "mic_reject", nil, nil, ok},

		{host, "mic_release", guest, nil, ok},
		{host, "mic_release", audience, nil, protocol.CodeNotFound},
		{host, "mic_release", nobody, nil, protocol.CodeNotFound},
		{host, "mic_release", nil, nil, protocol.CodeBadRequest},
		{guest, "mic_release", nil, nil, ok},
		{guest, "mic_release", guest, nil, ok},
		{guest, "mic_release", host, nil, protocol.CodeForbidden},
		{audience, "mic_release", nil, nil, protocol.CodeForbidden},
		{requester, "mic_release", nil, nil, protocol.CodeForbidden},

		{host, "mute", guest, map[string]any{"muted": true}, ok},
		{host, "mute", host, map[string]any{"muted": true}, ok},
		{host, "mute", audience, map[string]any{"muted": true}, ok},
		{host, "mute", nobody, map[string]any{"muted": true}, protocol.CodeNotFound},
		{guest, "mute", guest, map[string]any{"muted": true}, ok},
		{guest, "mute", guest, map[string]any{"muted": false}, ok},
		{guest, "mute", host, map[string]any{"muted": true}, protocol.CodeForbidden},
		{audience, "mute", audience, map[string]any{"muted": true}, ok},
		{audience, "mute", guest, map[string]any{"muted": true}, protocol.CodeForbidden},

		{host, "kick", audience, nil, ok},
		{host, "kick", guest, nil, ok},
		{host, "kick", host, nil, protocol.CodeBadRequest},
		{host, "kick", nobody, nil, protocol.CodeNotFound},
		{guest, "kick", audience, nil, protocol.CodeForbidden},
		{audience, "kick", guest, nil, protocol.CodeForbidden},
		{requester, "kick", guest, nil, protocol.CodeForbidden},
	}
	names := map[*client.Client]string{}
	for i, tt := range tests {
		s := setStage(ctx, t, r, fmt.Sprintf("roles%d", i))
		names[s.host], names[s.guest], names[s.audience], names[s.requester], names[s.invitee] = "host", "guest", "audience", "requester", "invitee"
		from := tt.from(s)
		msg := map[string]any{"type": tt.typ}
		target := "-"
		if tt.target != nil {
			msg["participant"], target = "p_nobody", "nobody"
			if c := tt.target(s); c != nil {
				msg["participant"], target = c.ID(), names[c]
			}
		}
		for k, v := range tt.extra {
			msg[k] = v
		}
		want := tt.want
		if want == "" {
			want = "ok"
		}
		t.Run(fmt.Sprintf("%s %s %s: %s", names[from], tt.typ, target, want), func(t *testing.T) {
			if got := do(ctx, t, from, msg); got != tt.want {
				t.Errorf("got %q, want %q", orOK(got), orOK(tt.want))
			}
		})
	}
}

func orOK(code string) string {
	if code == "" {
		return "ok"
	}
	return code
}
