package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxIDLength is the longest id a client message may carry.
const MaxIDLength = 64

// MaxResumeLength is the longest resume token a join may carry.
const MaxResumeLength = 128

// MaxTicketLength is the longest invitation ticket a mic_accept may carry.
const MaxTicketLength = 64

// Ping, Leave and MicRequest carry nothing but their header.
type (
	Ping       struct{ Header }
	Leave      struct{ Header }
	MicRequest struct{ Header }
	Pong       struct{ Header }
)

// DecodeError says why a client message was refused. ID is the message's
// id when it could be read, so that the error can carry it.
type DecodeError struct {
	ID     string
	Reason string
}

func (e *DecodeError) Error() string { return e.Reason }

// Decode parses one client message and checks its fields. It returns one of
// *Join, *SessionDescription (offer or answer), *Candidate, *Targeted
// (mic_invite, mic_accept, mic_reject, mic_release, kick), *MicRequest,
// *Mute, *Leave, *Ping or *PKRequest (pk_invite, pk_accept, pk_reject,
// pk_end). Any error is a *DecodeError whose Reason is fit
// to show the client.
func Decode(data []byte) (any, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		if !json.Valid(data) {
			return nil, &DecodeError{Reason: "message is not valid JSON"}
		}
		return nil, &DecodeError{Reason: "message must be a JSON object"}
	}
	var h struct {
		Type *string         `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, &DecodeError{Reason: "message is not valid JSON: " + jsonReason(err)}
	}
	var id string
	if len(h.ID) > 0 && string(h.ID) != "null" {
		if err := json.Unmarshal(h.ID, &id); err != nil {
			return nil, &DecodeError{Reason: `"id" must be a string`}
		}
		if len(id) > MaxIDLength {
			return nil, &DecodeError{Reason: fmt.Sprintf(`"id" is longer than %d characters`, MaxIDLength)}
		}
	}
	if h.Type == nil {
		return nil, &DecodeError{ID: id, Reason: `message has no "type"`}
	}
	msg, ok := newClientMessage(*h.Type)
	if !ok {
		return nil, &DecodeError{ID: id, Reason: fmt.Sprintf("unknown message type %q", *h.Type)}
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return nil, &DecodeError{ID: id, Reason: fmt.Sprintf("%s: %s", *h.Type, jsonReason(err))}
	}
	if v, ok := msg.(interface{ validate(raw []byte) error }); ok {
		if err := v.validate(data); err != nil {
			return nil, &DecodeError{ID: id, Reason: fmt.Sprintf("%s: %v", *h.Type, err)}
		}
	}
	return msg, nil
}

func newClientMessage(typ string) (any, bool) {
	switch typ {
	case TypeJoin:
		return &Join{}, true
	case TypeOffer, TypeAnswer:
		return &SessionDescription{}, true
	case TypeCandidate:
		return &Candidate{}, true
	case TypeMicInvite, TypeMicAccept, TypeMicReject, TypeMicRelease, TypeKick:
		return &Targeted{}, true
	case TypeMicRequest:
		return &MicRequest{}, true
	case TypeMute:
		return &Mute{}, true
	case TypeLeave:
		return &Leave{}, true
	case TypePing:
		return &Ping{}, true
	case TypePKInvite, TypePKAccept, TypePKReject, TypePKEnd:
		return &PKRequest{}, true
	}
	return nil, false
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "struct", "ptr":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a number"
}

func (j *Join) validate([]byte) error {
	if !ValidRoom(j.Room) {
		return errors.New(`"room" must be 1 to 64 ASCII letters, digits, '-' or '_'`)
	}
	if !ValidName(j.Name) {
		return errors.New(`"name" must be 1 to 64 characters of UTF-8 without control characters`)
	}
	if j.Role != "" && !ValidRole(j.Role) {
		return fmt.Errorf(`"role" must be "host", "guest" or "audience", not %q`, j.Role)
	}
	if len(j.Token) > 4096 {
		return errors.New(`"token" is longer than 4096 characters`)
	}
	if len(j.Resume) > MaxResumeLength {
		return fmt.Errorf(`"resume" is longer than %d characters`, MaxResumeLength)
	}
	if j.Listen != "" && j.Listen != ListenMix && j.Listen != ListenTracks {
		return fmt.Errorf(`"listen" must be "mix" or "tracks", not %q`, j.Listen)
	}
	if j.ICERestart && j.Resume == "" {
		return errors.New(`"ice_restart" needs "resume": only a resumed session has peer connections to restart`)
	}
	if j.Version != nil && *j.Version != Version {
		return fmt.Errorf(`"version" %d is not supported; this relay speaks version %d`, *j.Version, Version)
	}
	return nil
}

func (s *SessionDescription) validate([]byte) error {
	if s.PC != PCPub && s.PC != PCSub {
		return fmt.Errorf(`"pc" must be "pub" or "sub", not %q`, s.PC)
	}
	if s.SDP == "" {
		return errors.New(`"sdp" is missing or empty`)
	}
	if s.Type == TypeOffer && s.PC != PCPub {
		return errors.New(`clients offer only on "pub"; the server offers "sub"`)
	}
	if s.Type == TypeAnswer && s.PC != PCSub {
		return errors.New(`clients answer only on "sub"; the server answers "pub"`)
	}
	return nil
}

func (c *Candidate) validate(raw []byte) error {
	if c.PC != PCPub && c.PC != PCSub {
		return fmt.Errorf(`"pc" must be "pub" or "sub", not %q`, c.PC)
	}
	var probe struct {
		Candidate json.RawMessage `json:"candidate"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil || len(probe.Candidate) == 0 {
		return errors.New(`"candidate" is missing (use null to mark the end of candidates)`)
	}
	if c.Candidate != nil && c.Candidate.SDPMid == nil && c.Candidate.SDPMLineIndex == nil {
		return errors.New(`"candidate" needs "sdpMid" or "sdpMLineIndex"`)
	}
	return nil
}

func (t *Targeted) validate([]byte) error {
	if t.Type == TypeMicInvite || t.Type == TypeKick {
		if t.Participant == "" {
			return errors.New(`"participant" is missing`)
		}
	}
	if t.Type == TypeKick && utf8.RuneCountInString(t.Reason) > 200 {
		return errors.New(`"reason" is longer than 200 characters`)
	}
	if t.Ticket != "" && t.Type != TypeMicAccept {
		return errors.New(`"ticket" goes with mic_accept only`)
	}
	if len(t.Ticket) > MaxTicketLength {
		return fmt.Errorf(`"ticket" is longer than %d characters`, MaxTicketLength)
	}
	return nil
}

func (m *Mute) validate([]byte) error {
	if m.Participant == "" {
		return errors.New(`"participant" is missing`)
	}
	if m.Muted == nil {
		return errors.New(`"muted" is missing`)
	}
	return nil
}

// ValidRoom reports whether s is a room name: 1 to 64 ASCII letters,
// digits, '-' and '_'.
func ValidRoom(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidName reports whether s is a display name: 1 to 64 characters of
// UTF-8 without control characters.
func ValidName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 64 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return false
		}
	}
	return true
}

// ValidRole reports whether s is host, guest or audience.
func ValidRole(s string) bool {
	return s == RoleHost || s == RoleGuest || s == RoleAudience
}
