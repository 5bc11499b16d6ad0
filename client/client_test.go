package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestServerError(t *testing.T) {
	var err error = fmt.Errorf("client: publish: %w",
		newServerError(&protocol.Error{Header: protocol.Header{Type: "error", ID: "7"}, Code: protocol.CodeForbidden, Message: "audience may not publish"}))
	var se *ServerError
	if !errors.As(err, &se) {
		t.Fatal("errors.As found no *ServerError")
	}
	if se.Code != protocol.CodeForbidden || se.ID != "7" || se.Message != "audience may not publish" {
		t.Fatalf("got %+v", se)
	}
	if got := se.Error(); got != `relay error forbidden (id "7"): audience may not publish` {
		t.Fatalf("Error() = %q", got)
	}
	var ce *CloseError
	if !errors.As(fmt.Errorf("x: %w", &CloseError{Code: 1008}), &ce) || ce.Code != 1008 {
		t.Fatal("errors.As found no *CloseError")
	}
}

func TestWithID(t *testing.T) {
	gen := func() string { return "gen" }
	tests := []struct {
		name    string
		msg     any
		id      string
		wantID  string
		wantErr bool
	}{
		{"set on struct", &protocol.Ping{Header: protocol.Header{Type: "ping"}}, "a", "a", false},
		{"generated", &protocol.Ping{Header: protocol.Header{Type: "ping"}}, "", "gen", false},
		{"carried", &protocol.Ping{Header: protocol.Header{Type: "ping", ID: "b"}}, "", "b", false},
		{"carried and equal", &protocol.Ping{Header: protocol.Header{Type: "ping", ID: "b"}}, "b", "b", false},
		{"carried and different", &protocol.Ping{Header: protocol.Header{Type: "ping", ID: "b"}}, "c", "", true},
		{"map", map[string]any{"type": "mic_request"}, "m", "m", false},
		{"not an object", []int{1}, "x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, id, err := withID(tt.msg, tt.id, gen)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if id != tt.wantID {
				t.Fatalf("id = %q, want %q", id, tt.wantID)
			}
			msg, err := decodeServerMessage("", data) // as a map
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.(map[string]any)["id"]; got != tt.wantID {
				t.Fatalf("sent id %v, want %q (%s)", got, tt.wantID, data)
			}
		})
	}
}

func TestDecodeServerMessage(t *testing.T) {
	tests := []struct {
		typ  string
		json string
		want any
	}{
		{"participant_joined", `{"type":"participant_joined","participant":{"id":"p","name":"n","role":"guest"}}`,
			&protocol.ParticipantJoined{Header: protocol.Header{Type: "participant_joined"}, Participant: protocol.Participant{ID: "p", Name: "n", Role: "guest"}}},
		{"track_published", `{"type":"track_published","participant":"p","track":{"id":"t","kind":"audio"}}`,
			&protocol.TrackPublished{Header: protocol.Header{Type: "track_published"}, Participant: "p", Track: protocol.Track{ID: "t", Kind: "audio"}}},
		{"audience", `{"type":"audience","count":3}`, &protocol.Audience{Header: protocol.Header{Type: "audience"}, Count: 3}},
		{"error", `{"type":"error","id":"1","code":"conflict","message":"m"}`,
			&protocol.Error{Header: protocol.Header{Type: "error", ID: "1"}, Code: "conflict", Message: "m"}},
		{"speakers", `{"type":"speakers","speakers":[{"participant":"p","level":0.5}]}`,
			&protocol.Speakers{Header: protocol.Header{Type: "speakers"}, Speakers: []protocol.Speaker{{Participant: "p", Level: 0.5}}}},
		// A type the protocol package lacks (a later relay's addition).
		{"future_event", `{"type":"future_event","items":[{"a":0.5}]}`,
			map[string]any{"type": "future_event", "items": []any{map[string]any{"a": 0.5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got, err := decodeServerMessage(tt.typ, []byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPushEventDropsOldest(t *testing.T) {
	c := &Client{events: make(chan any, 3)}
	for i := range 5 {
		c.pushEvent(i)
	}
	if got := c.DroppedEvents(); got != 2 {
		t.Fatalf("dropped %d, want 2", got)
	}
	for _, want := range []int{2, 3, 4} {
		if got := <-c.events; got != want {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestStateWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closing := make(chan struct{})

	var w stateWatch
	done := make(chan error, 1)
	go func() { done <- w.waitConnected(ctx, closing) }()
	w.set(webrtc.PeerConnectionStateConnecting)
	w.set(webrtc.PeerConnectionStateConnected)
	if err := <-done; err != nil {
		t.Fatalf("connected: %v", err)
	}

	var failed stateWatch
	go func() { done <- failed.waitConnected(ctx, closing) }()
	failed.set(webrtc.PeerConnectionStateFailed)
	if err := <-done; !errors.Is(err, ErrPeerFailed) {
		t.Fatalf("failed: %v", err)
	}

	var broken stateWatch
	broken.fail(errors.New("bad sdp"))
	if err := broken.waitConnected(ctx, closing); !errors.Is(err, ErrPeerFailed) {
		t.Fatalf("setup failure: %v", err)
	}

	var idle stateWatch
	close(closing)
	if err := idle.waitConnected(ctx, closing); !errors.Is(err, ErrClosed) {
		t.Fatalf("closing: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if err := idle.waitConnected(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}
