package signaling_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
)

// raw is a bare WebSocket for what a well-behaved client never sends.
type raw struct {
	t    *testing.T
	conn *websocket.Conn
}

func (r *relay) dialRaw(ctx context.Context, t *testing.T) *raw {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, r.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &raw{t: t, conn: conn}
}

func (w *raw) send(s string) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next message, skipping offers and candidates.
func (w *raw) read() map[string]any {
	w.t.Helper()
	for {
		_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			w.t.Fatalf("relay sent invalid JSON %q: %v", data, err)
		}
		if m["type"] != "offer" && m["type"] != "candidate" && m["type"] != "audience" {
			return m
		}
	}
}

// expectClose reads until the relay closes the connection with code.
func (w *raw) expectClose(code int) {
	w.t.Helper()
	for {
		_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := w.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("connection ended without a close frame (%v), want close %d", err, code)
		}
		if ce.Code != code {
			w.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

func expectError(t *testing.T, m map[string]any, code, id string) {
	t.Helper()
	if m["type"] != "error" || m["code"] != code {
		t.Fatalf("got %v, want error %s", m, code)
	}
	if id != "" && m["id"] != id {
		t.Errorf("error id %v, want %q", m["id"], id)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("error %s has no message", code)
	}
}

// TestErrorsBeforeJoin: before join, ping gets pong and anything else gets
// bad_request and close 1008; binary and oversized frames close with 1003
// and 1009.
func TestErrorsBeforeJoin(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	tests := []struct {
		name  string
		send  func(w *raw)
		code  string // error code expected, "" for none
		id    string
		close int
	}{
		{"offer before join", func(w *raw) { w.send(`{"type":"offer","id":"o1","pc":"pub","sdp":"v=0"}`) }, protocol.CodeBadRequest, "o1", protocol.ClosePolicy},
		{"not JSON before join", func(w *raw) { w.send(`hello`) }, protocol.CodeBadRequest, "", protocol.ClosePolicy},
		{"join with a bad room", func(w *raw) { w.send(`{"type":"join","id":"j","room":"no spaces","name":"n"}`) }, protocol.CodeBadRequest, "j", protocol.ClosePolicy},
		{"join with a bad role", func(w *raw) { w.send(`{"type":"join","id":"j","room":"r","name":"n","role":"admin"}`) }, protocol.CodeBadRequest, "j", protocol.ClosePolicy},
		{"join with a control character in the name", func(w *raw) { w.send(`{"type":"join","id":"j","room":"r","name":"a\u0007b"}`) }, protocol.CodeBadRequest, "j", protocol.ClosePolicy},
		{"join with a bad listen", func(w *raw) { w.send(`{"type":"join","id":"j","room":"r","name":"n","listen":"both"}`) }, protocol.CodeBadRequest, "j", protocol.ClosePolicy},
		{"join with an unknown version", func(w *raw) { w.send(`{"type":"join","id":"j","room":"r","name":"n","version":2}`) }, protocol.CodeBadRequest, "j", protocol.ClosePolicy},
		{"binary frame", func(w *raw) { _ = w.conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}) }, "", "", protocol.CloseUnsupported},
		{"frame over 64 KiB", func(w *raw) {
			w.send(`{"type":"ping","pad":"` + strings.Repeat("x", protocol.MaxMessageSize) + `"}`)
		}, "", "", protocol.CloseTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := r.dialRaw(ctx, t)
			tt.send(w)
			if tt.code != "" {
				expectError(t, w.read(), tt.code, tt.id)
			}
			w.expectClose(tt.close)
		})
	}
	t.Run("ping before join", func(t *testing.T) {
		w := r.dialRaw(ctx, t)
		w.send(`{"type":"ping","id":"p1"}`)
		if m := w.read(); m["type"] != "pong" || m["id"] != "p1" {
			t.Fatalf("got %v, want pong p1", m)
		}
		w.send(`{"type":"join","id":"j1","room":"r","name":"n"}`)
		if m := w.read(); m["type"] != "joined" || m["id"] != "j1" {
			t.Fatalf("got %v, want joined j1", m)
		}
	})
}

// TestErrorsAfterJoin: every error of the contract that a joined
// participant can cause gets its code and the message's id, the connection
// stays open, and the room keeps forwarding audio throughout.
func TestErrorsAfterJoin(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Seats: 2})
	host := r.join(ctx, t, "err", "Host", protocol.RoleHost)
	aud := r.join(ctx, t, "err", "A", protocol.RoleAudience)
	idle := r.join(ctx, t, "err", "B", protocol.RoleAudience) // nothing pending: may not offer on pub
	rc := receive(ctx, aud)
	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go func() { _, _ = publish(pubCtx, pub, 7, 100000) }()
	flowing := func(what string) {
		t.Helper()
		before := rc.count(host.ID())
		waitFor(ctx, t, "audio to keep flowing "+what, func() bool { return rc.count(host.ID()) > before+10 })
	}
	flowing("before the errors")
	// An outstanding mic request, for the second one to conflict with.
	if err := aud.Send(&protocol.MicRequest{Header: protocol.Header{Type: protocol.TypeMicRequest}}); err != nil {
		t.Fatal(err)
	}
	waitEvent[*protocol.MicRequested](ctx, t, host, nil)

	tests := []struct {
		name string
		from *client.Client
		msg  string
		code string
	}{
		{"not JSON", aud, `{"type":`, protocol.CodeBadRequest},
		{"not an object", aud, `[1,2,3]`, protocol.CodeBadRequest},
		{"no type", aud, `{"id":"x1"}`, protocol.CodeBadRequest},
		{"unknown type", aud, `{"type":"dance","id":"x1"}`, protocol.CodeBadRequest},
		{"id too long", aud, `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, protocol.CodeBadRequest},
		{"offer without sdp", host, `{"type":"offer","id":"x1","pc":"pub"}`, protocol.CodeBadRequest},
		{"offer on sub", host, `{"type":"offer","id":"x1","pc":"sub","sdp":"v=0"}`, protocol.CodeBadRequest},
		{"sdp of the wrong type", host, `{"type":"offer","id":"x1","pc":"pub","sdp":5}`, protocol.CodeBadRequest},
		{"bad SDP", host, `{"type":"offer","id":"x1","pc":"pub","sdp":"this is not SDP"}`, protocol.CodeBadRequest},
		{"answer with no offer outstanding", aud, `{"type":"answer","id":"x1","pc":"sub","sdp":"v=0\r\n"}`, protocol.CodeBadRequest},
		{"candidate on an unknown pc", aud, `{"type":"candidate","id":"x1","pc":"side","candidate":null}`, protocol.CodeBadRequest},
		{"candidate missing", aud, `{"type":"candidate","id":"x1","pc":"sub"}`, protocol.CodeBadRequest},
		{"candidate without mid or index", aud, `{"type":"candidate","id":"x1","pc":"sub","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`, protocol.CodeBadRequest},
		{"garbage candidate", aud, `{"type":"candidate","id":"x1","pc":"sub","candidate":{"candidate":"nonsense","sdpMid":"0"}}`, protocol.CodeBadRequest},
		{"audience offers on pub", idle, `{"type":"offer","id":"x1","pc":"pub","sdp":"v=0\r\n"}`, protocol.CodeForbidden},
		{"requester offers bad SDP on pub (an early pub)", aud, `{"type":"offer","id":"x1","pc":"pub","sdp":"v=0\r\n"}`, protocol.CodeBadRequest},
		{"join twice", aud, `{"type":"join","id":"x1","room":"err","name":"again"}`, protocol.CodeConflict},
		{"mute without muted", host, `{"type":"mute","id":"x1","participant":"p"}`, protocol.CodeBadRequest},
		{"kick without participant", host, `{"type":"kick","id":"x1"}`, protocol.CodeBadRequest},
		{"mic_invite without participant", host, `{"type":"mic_invite","id":"x1"}`, protocol.CodeBadRequest},
		{"mute someone not in the room", host, `{"type":"mute","id":"x1","participant":"p_nobody","muted":true}`, protocol.CodeNotFound},
		{"audience mutes the host", aud, `{"type":"mute","id":"x1","participant":"` + host.ID() + `","muted":true}`, protocol.CodeForbidden},
		{"second mic request", aud, `{"type":"mic_request","id":"x1"}`, protocol.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.from.SendRaw(websocket.TextMessage, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			e := waitEvent[*protocol.Error](ctx, t, tt.from, nil)
			if e.Code != tt.code {
				t.Fatalf("code %q (%s), want %q", e.Code, e.Message, tt.code)
			}
			if strings.Contains(tt.msg, `"id":"x1"`) && e.ID != "x1" {
				t.Errorf("error id %q, want x1", e.ID)
			}
			if e.Message == "" {
				t.Error("error without a message")
			}
			ping(ctx, t, tt.from) // the connection stays open
		})
	}
	flowing("after the errors")

	t.Run("room_full, then join as audience on the same connection", func(t *testing.T) {
		_ = r.join(ctx, t, "err", "Guest", protocol.RoleGuest) // the second and last seat
		w := r.dialRaw(ctx, t)
		w.send(`{"type":"join","id":"j1","room":"err","name":"G2","role":"guest"}`)
		expectError(t, w.read(), protocol.CodeRoomFull, "j1")
		w.send(`{"type":"join","id":"j2","room":"err","name":"G2"}`)
		if m := w.read(); m["type"] != "joined" || m["id"] != "j2" {
			t.Fatalf("got %v, want joined", m)
		}
	})
	flowing("after room_full")
}

// count is how many packets c received from the publisher with id from.
func (r *receiver) count(from string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.tracks[from]; rec != nil {
		return rec.count
	}
	return 0
}
