package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any    // the Go type, for a valid message
		wantErr string // part of the reason, for an invalid one
		wantID  string
	}{
		{"join", `{"type":"join","id":"a","room":"r-1_x","name":"Ann","role":"host","version":1}`, &Join{}, "", ""},
		{"join without role", `{"type":"join","room":"r","name":"Ann"}`, &Join{}, "", ""},
		{"join listening to the mix", `{"type":"join","room":"r","name":"Ann","listen":"mix"}`, &Join{}, "", ""},
		{"join listening to tracks", `{"type":"join","room":"r","name":"Ann","listen":"tracks"}`, &Join{}, "", ""},
		{"unknown fields ignored", `{"type":"ping","extra":{"x":[1,2]}}`, &Ping{}, "", ""},
		{"offer", `{"type":"offer","pc":"pub","sdp":"v=0"}`, &SessionDescription{}, "", ""},
		{"pk_invite", `{"type":"pk_invite","room":"other_1"}`, &PKRequest{}, "", ""},
		{"pk_end", `{"type":"pk_end","room":"other"}`, &PKRequest{}, "", ""},
		{"answer", `{"type":"answer","pc":"sub","sdp":"v=0"}`, &SessionDescription{}, "", ""},
		{"candidate", `{"type":"candidate","pc":"sub","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":null}}`, &Candidate{}, "", ""},
		{"end of candidates", `{"type":"candidate","pc":"pub","candidate":null}`, &Candidate{}, "", ""},
		{"mute", `{"type":"mute","participant":"p","muted":false}`, &Mute{}, "", ""},
		{"kick", `{"type":"kick","participant":"p","reason":"spam"}`, &Targeted{}, "", ""},
		{"mic_accept with a ticket", `{"type":"mic_accept","ticket":"t-1"}`, &Targeted{}, "", ""},
		{"mic_accept without participant", `{"type":"mic_accept"}`, &Targeted{}, "", ""},
		{"mic_request", `{"type":"mic_request"}`, &MicRequest{}, "", ""},
		{"leave", `{"type":"leave"}`, &Leave{}, "", ""},

		{"not JSON", `hello`, nil, "not valid JSON", ""},
		{"truncated", `{"type":`, nil, "not valid JSON", ""},
		{"array", `[1]`, nil, "must be a JSON object", ""},
		{"string", `"join"`, nil, "must be a JSON object", ""},
		{"no type", `{"id":"x"}`, nil, `no "type"`, "x"},
		{"unknown type", `{"type":"dance","id":"x"}`, nil, "unknown message type", "x"},
		{"numeric id", `{"type":"ping","id":5}`, nil, `"id" must be a string`, ""},
		{"id too long", `{"type":"ping","id":"` + strings.Repeat("i", 65) + `"}`, nil, "longer than 64", ""},
		{"bad room", `{"type":"join","id":"j","room":"a b","name":"n"}`, nil, `"room"`, "j"},
		{"long room", `{"type":"join","room":"` + strings.Repeat("r", 65) + `","name":"n"}`, nil, `"room"`, ""},
		{"empty name", `{"type":"join","room":"r","name":""}`, nil, `"name"`, ""},
		{"name with control character", `{"type":"join","room":"r","name":"a\u0000b"}`, nil, `"name"`, ""},
		{"name of 65 characters", `{"type":"join","room":"r","name":"` + strings.Repeat("é", 65) + `"}`, nil, `"name"`, ""},
		{"bad role", `{"type":"join","room":"r","name":"n","role":"admin"}`, nil, `"role"`, ""},
		{"bad version", `{"type":"join","room":"r","name":"n","version":2}`, nil, `"version"`, ""},
		{"bad listen", `{"type":"join","id":"j","room":"r","name":"n","listen":"both"}`, nil, `"listen" must be "mix" or "tracks"`, "j"},
		{"listen of the wrong type", `{"type":"join","room":"r","name":"n","listen":true}`, nil, `field "listen" must be a string`, ""},
		{"listen in upper case", `{"type":"join","room":"r","name":"n","listen":"MIX"}`, nil, `"listen"`, ""},
		{"room of the wrong type", `{"type":"join","room":5,"name":"n"}`, nil, `field "room" must be a string`, ""},
		{"offer on sub", `{"type":"offer","pc":"sub","sdp":"v=0"}`, nil, `only on "pub"`, ""},
		{"answer on pub", `{"type":"answer","pc":"pub","sdp":"v=0"}`, nil, `only on "sub"`, ""},
		{"offer without sdp", `{"type":"offer","pc":"pub"}`, nil, `"sdp"`, ""},
		{"bad pc", `{"type":"candidate","pc":"x","candidate":null}`, nil, `"pc"`, ""},
		{"candidate missing", `{"type":"candidate","pc":"sub"}`, nil, `"candidate" is missing`, ""},
		{"candidate without mid and index", `{"type":"candidate","pc":"sub","candidate":{"candidate":"c"}}`, nil, "sdpMid", ""},
		{"mute without muted", `{"type":"mute","participant":"p"}`, nil, `"muted"`, ""},
		{"mute without participant", `{"type":"mute","muted":true}`, nil, `"participant"`, ""},
		{"kick without participant", `{"type":"kick"}`, nil, `"participant"`, ""},
		{"invite without participant", `{"type":"mic_invite"}`, nil, `"participant"`, ""},
		{"pk_invite without room", `{"type":"pk_invite","id":"k"}`, nil, `"room"`, "k"},
		{"pk_accept with a bad room", `{"type":"pk_accept","room":"a b"}`, nil, `"room"`, ""},
		{"pk_end with a room of the wrong type", `{"type":"pk_end","room":7}`, nil, `field "room" must be a string`, ""},
		{"kick reason too long", `{"type":"kick","participant":"p","reason":"` + strings.Repeat("r", 201) + `"}`, nil, `"reason"`, ""},
		{"ticket too long", `{"type":"mic_accept","ticket":"` + strings.Repeat("t", 65) + `"}`, nil, `"ticket"`, ""},
		{"ticket on mic_invite", `{"type":"mic_invite","participant":"p","ticket":"t"}`, nil, `"ticket"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Decode([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if gotT, wantT := typeName(msg), typeName(tt.want); gotT != wantT {
					t.Fatalf("decoded %s, want %s", gotT, wantT)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if !strings.Contains(de.Reason, tt.wantErr) {
				t.Errorf("reason %q, want it to mention %q", de.Reason, tt.wantErr)
			}
			if de.ID != tt.wantID {
				t.Errorf("id %q, want %q", de.ID, tt.wantID)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *Join:
		return "Join"
	case *SessionDescription:
		return "SessionDescription"
	case *Candidate:
		return "Candidate"
	case *Targeted:
		return "Targeted"
	case *Mute:
		return "Mute"
	case *MicRequest:
		return "MicRequest"
	case *Leave:
		return "Leave"
	case *Ping:
		return "Ping"
	case *PKRequest:
		return "PKRequest"
	}
	return "?"
}

func TestNewServerMessageKnowsEveryServerType(t *testing.T) {
	for _, typ := range []string{TypeJoined, TypeOffer, TypeAnswer, TypeCandidate, TypeParticipantJoined, TypeParticipantLeft,
		TypeTrackPublished, TypeTrackUnpublished, TypeRoleChanged, TypeMicRequested, TypeMicInvited, TypeMicRejected,
		TypeMuted, TypeKicked, TypeSpeakers, TypeAudience, TypePong, TypeError, TypeDraining,
		TypePKInvited, TypePKStarted, TypePKRejected, TypePKEnded} {
		if _, ok := NewServerMessage(typ); !ok {
			t.Errorf("NewServerMessage(%q) unknown", typ)
		}
	}
}
