package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeSeeds are one valid message of every client type, then malformed
// ones: each class of DecodeError at least once. testdata/fuzz/FuzzDecode
// holds a few more, in the corpus file format.
var decodeSeeds = []string{
	`{"type":"join","id":"j1","room":"r-1_x","name":"Ann","role":"host","token":"t","version":1}`,
	`{"type":"join","room":"r","name":"Zoë 李"}`,
	`{"type":"offer","id":"o1","pc":"pub","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}`,
	`{"type":"answer","pc":"sub","sdp":"v=0"}`,
	`{"type":"candidate","pc":"pub","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
	`{"type":"candidate","pc":"sub","candidate":null}`,
	`{"type":"mic_request","id":"m"}`,
	`{"type":"mic_invite","participant":"p_1"}`,
	`{"type":"mic_accept"}`,
	`{"type":"mic_reject","participant":"p_1"}`,
	`{"type":"mic_release"}`,
	`{"type":"mute","participant":"p_1","muted":true}`,
	`{"type":"kick","participant":"p_1","reason":"spam"}`,
	`{"type":"leave"}`,
	`{"type":"pk_invite","id":"k1","room":"other-room"}`,
	`{"type":"pk_accept","room":"r"}`,
	`{"type":"pk_reject","room":"r"}`,
	`{"type":"pk_end","room":"r_2"}`,
	`  {"type":"ping","id":null,"extra":[1,{"x":2}]}` + "\n",

	``,
	`hello`,
	`[`,
	`[1,2]`,
	`"join"`,
	`null`,
	`{"type":`,
	`{"id":"x"}`,
	`{"type":null}`,
	`{"type":"dance","id":"x"}`,
	`{"type":"ping","id":5}`,
	`{"type":"ping","id":"` + strings.Repeat("i", MaxIDLength+1) + `"}`,
	`{"type":"join","room":"a b","name":"n"}`,
	`{"type":"join","room":"r","name":"a\u0007b"}`,
	`{"type":"join","room":"r","name":"n","role":"admin"}`,
	`{"type":"join","room":"r","name":"n","version":2}`,
	`{"type":"join","room":5,"name":"n"}`,
	`{"type":"offer","pc":"sub","sdp":"v=0"}`,
	`{"type":"answer","pc":"pub","sdp":"v=0"}`,
	`{"type":"offer","pc":"pub"}`,
	`{"type":"candidate","pc":"x","candidate":null}`,
	`{"type":"candidate","pc":"sub"}`,
	`{"type":"candidate","pc":"sub","candidate":{"candidate":"c"}}`,
	`{"type":"mute","participant":"p"}`,
	`{"type":"kick"}`,
	`{"type":"kick","participant":"p","reason":"` + strings.Repeat("r", 201) + `"}`,
	"{\"type\":\"join\",\"room\":\"r\",\"name\":\"\xff\xfe\"}",
	`{"TYPE":"ping","Id":"case"}`,
	`{"type":"ping","type":"leave"}`,
}

// FuzzDecode: Decode never panics; an error is always a *DecodeError with a
// reason fit to show the client (non-empty UTF-8) and an ID within the
// limit; a message that decodes is one of the client types with its type
// set, and survives a round trip: what json.Marshal makes of it decodes to
// an equal value, and marshals to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		msg, err := Decode(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("Decode modified its input: %q became %q", in, b)
		}
		if err != nil {
			checkDecodeError(t, err)
			if msg != nil {
				t.Fatalf("Decode returned %T and an error", msg)
			}
			return
		}
		checkClientMessage(t, msg)

		enc, err := json.Marshal(msg)
		if err != nil {
			t.Fatalf("marshal %#v: %v", msg, err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("%q decoded, but its re-encoding %s does not: %v", b, enc, err)
		}
		if !reflect.DeepEqual(msg, again) {
			t.Fatalf("round trip changed the message:\n in %q\nfirst  %#v\nsecond %#v", b, msg, again)
		}
		enc2, err := json.Marshal(again)
		if err != nil {
			t.Fatalf("marshal %#v: %v", again, err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// checkDecodeError: the documented error type, with a reason to show and
// an id that could be echoed.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *DecodeError", err, err)
	}
	if de.Reason == "" || de.Error() != de.Reason {
		t.Fatalf("DecodeError without a reason: %#v", de)
	}
	if !utf8.ValidString(de.Reason) {
		t.Fatalf("reason is not UTF-8: %q", de.Reason)
	}
	if len(de.ID) > MaxIDLength {
		t.Fatalf("DecodeError.ID of %d bytes, over %d", len(de.ID), MaxIDLength)
	}
}

// checkClientMessage: msg is one of Decode's types, with the fields its
// validation promises.
func checkClientMessage(t *testing.T, msg any) {
	t.Helper()
	h, ok := msg.(interface{ MessageHeader() Header })
	if !ok || typeName(msg) == "?" {
		t.Fatalf("decoded %T, not a client message type", msg)
	}
	hdr := h.MessageHeader()
	if len(hdr.ID) > MaxIDLength {
		t.Fatalf("id of %d bytes decoded", len(hdr.ID))
	}
	want := map[string][]string{
		"Join":               {TypeJoin},
		"SessionDescription": {TypeOffer, TypeAnswer},
		"Candidate":          {TypeCandidate},
		"Targeted":           {TypeMicInvite, TypeMicAccept, TypeMicReject, TypeMicRelease, TypeKick},
		"MicRequest":         {TypeMicRequest},
		"Mute":               {TypeMute},
		"Leave":              {TypeLeave},
		"Ping":               {TypePing},
		"PKRequest":          {TypePKInvite, TypePKAccept, TypePKReject, TypePKEnd},
	}[typeName(msg)]
	found := false
	for _, w := range want {
		found = found || hdr.Type == w
	}
	if !found {
		t.Fatalf("%T decoded with type %q, want one of %q", msg, hdr.Type, want)
	}
	switch m := msg.(type) {
	case *Join:
		if !ValidRoom(m.Room) || !ValidName(m.Name) || (m.Role != "" && !ValidRole(m.Role)) {
			t.Fatalf("join with invalid fields decoded: %#v", m)
		}
		if m.Version != nil && *m.Version != Version {
			t.Fatalf("join with version %d decoded", *m.Version)
		}
	case *SessionDescription:
		if m.SDP == "" || (m.Type == TypeOffer) != (m.PC == PCPub) {
			t.Fatalf("%s on %q with %d bytes of SDP decoded", m.Type, m.PC, len(m.SDP))
		}
	case *Candidate:
		if m.PC != PCPub && m.PC != PCSub {
			t.Fatalf("candidate on %q decoded", m.PC)
		}
		if m.Candidate != nil && m.Candidate.SDPMid == nil && m.Candidate.SDPMLineIndex == nil {
			t.Fatalf("candidate without sdpMid and sdpMLineIndex decoded")
		}
	case *Targeted:
		if (m.Type == TypeMicInvite || m.Type == TypeKick) && m.Participant == "" {
			t.Fatalf("%s without participant decoded", m.Type)
		}
	case *Mute:
		if m.Participant == "" || m.Muted == nil {
			t.Fatalf("mute without participant or muted decoded: %#v", m)
		}
	case *PKRequest:
		if !ValidRoom(m.Room) {
			t.Fatalf("%s with an invalid room decoded: %q", m.Type, m.Room)
		}
	}
}
