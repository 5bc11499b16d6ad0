package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/lianmai/relay/sfu"
	"github.com/pion/webrtc/v4"
)

// The link's signaling over NATS (docs/cluster.md, "Edges"):
//
//   - relay.link.<owner>: an edge's requests to the room's owner (open,
//     answer, candidate, listeners, close, and its listeners one by one:
//     listener_list, listener_joined, listener_left, listener_declined),
//     each a linkRequest naming its link; open, answer and close are
//     request/reply (linkReply), the others are published without a
//     reply.
//   - relay.edge.<edge>.<link>: what the owner tells one link, in order:
//     every event the link's hidden participant gets (linkEvent: the room's
//     state at open, its sub offers and candidates, participant, track,
//     mute, role and audience events), what hosts do to the edge's
//     listeners (kick, mic_invited, mic_ended: proxyowner.go), and
//     "closed" when the owner ends the link.

// Link request ops.
const (
	opOpen      = "open"
	opAnswer    = "answer"
	opCandidate = "candidate"
	opListeners = "listeners" // the edge's listener count: for owners that predate listener_list
	opClose     = "close"

	// The edge's listeners one by one (proxyowner.go): the whole list
	// when the link opens or NATS reconnects, then each change.
	opListenerList     = "listener_list"
	opListenerJoined   = "listener_joined"
	opListenerLeft     = "listener_left"
	opListenerDeclined = "listener_declined" // declined an invitation of the owner's host
)

// listenerInfo is one of an edge's listeners.
type listenerInfo struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// linkRequest is an edge's message to a room's owner.
type linkRequest struct {
	Op        string                   `json:"op"`
	Link      string                   `json:"link"`
	Room      string                   `json:"room,omitempty"`      // open
	Edge      string                   `json:"edge,omitempty"`      // open: the edge's node id
	Inbox     string                   `json:"inbox,omitempty"`     // open: where the owner sends the link's events
	SDP       string                   `json:"sdp,omitempty"`       // answer
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"` // candidate
	Listeners int                      `json:"listeners,omitempty"` // listeners: the edge's audience in the room
	PK        bool                     `json:"pk,omitempty"`        // open: a PK link (cluster/pk.go): the room's own publishers only
	List      []listenerInfo           `json:"list,omitempty"`      // listener_list: every listener the edge has in the room
	More      bool                     `json:"more,omitempty"`      // listener_list: the list goes on in the next listener_list
	Listener  *listenerInfo            `json:"listener,omitempty"`  // listener_joined, _left, _declined
}

// linkReply answers an open, answer or close; Error "" is success.
type linkReply struct {
	Error    string `json:"error,omitempty"`
	NotOwner bool   `json:"notOwner,omitempty"` // open: the owner no longer holds the room; route again
}

// linkEvent is one event for a link: Type names which sfu event Event
// holds, or "closed" (Reason says why).
type linkEvent struct {
	Type   string          `json:"type"`
	Event  json.RawMessage `json:"event,omitempty"`
	Reason sfu.Reason      `json:"reason,omitempty"`
	Proxy  *proxyEvent     `json:"proxy,omitempty"` // kick, mic_invited, mic_ended
}

// proxyEvent is what a host did to one of the edge's listeners.
type proxyEvent struct {
	Participant string        `json:"participant"`      // the listener's id on the edge
	By          string        `json:"by,omitempty"`     // mic_invited: the inviting host
	Ticket      string        `json:"ticket,omitempty"` // mic_invited
	Text        string        `json:"text,omitempty"`   // kick: the reason shown to the listener
	MicReason   sfu.MicReason `json:"micReason,omitempty"`
}

// Event types on the wire.
const (
	evJoined           = "joined"
	evParticipantJoin  = "participant_joined"
	evParticipantLeft  = "participant_left"
	evTrackUnpublished = "track_unpublished"
	evRoleChanged      = "role_changed"
	evMuted            = "muted"
	evAudience         = "audience"
	evSpeakers         = "speakers"
	evDescription      = "description"
	evCandidate        = "candidate"
	evClosed           = "closed"
	evKick             = "kick"        // a host kicked the listener
	evMicInvited       = "mic_invited" // a host invited the listener
	evMicEnded         = "mic_ended"   // the listener's invitation ended on the owner
	evListAgain        = "list_again"  // the owner reconnected to NATS: send the whole list of listeners again
)

// encodeEvent is ev as a link sees it; ok false for events an edge has no
// use for (track_published: the track itself arrives on the link; the mic
// workflow's events, which are hosts' and the requester's).
func encodeEvent(ev sfu.Event) (linkEvent, bool) {
	var typ string
	switch ev.(type) {
	case sfu.JoinedEvent:
		typ = evJoined
	case sfu.ParticipantJoinedEvent:
		typ = evParticipantJoin
	case sfu.ParticipantLeftEvent:
		typ = evParticipantLeft
	case sfu.TrackUnpublishedEvent:
		typ = evTrackUnpublished
	case sfu.RoleChangedEvent:
		typ = evRoleChanged
	case sfu.MutedEvent:
		typ = evMuted
	case sfu.AudienceEvent:
		typ = evAudience
	case sfu.SpeakersEvent:
		typ = evSpeakers
	case sfu.DescriptionEvent:
		typ = evDescription
	case sfu.CandidateEvent:
		typ = evCandidate
	default:
		return linkEvent{}, false
	}
	b, err := json.Marshal(ev)
	if err != nil { // the sfu's events are plain structs
		return linkEvent{}, false
	}
	return linkEvent{Type: typ, Event: b}, true
}

// linkSubject is where owner receives link requests.
func linkSubject(owner string) string { return "relay.link." + owner }

// edgeSubject is where an edge receives one link's events.
func edgeSubject(edge, link string) string { return "relay.edge." + edge + "." + link }

// newLinkID names a link.
func newLinkID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// decode unmarshals a link message, with what it was in the error.
func decode(what string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("bad %s from NATS: %w", what, err)
	}
	return nil
}
