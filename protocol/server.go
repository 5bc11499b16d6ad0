package protocol

// MicRequested tells hosts that an audience member asks for the mic.
type MicRequested struct {
	Header
	Participant string `json:"participant"`
}

// MicInvited tells an audience member that a host invites it to the mic.
type MicInvited struct {
	Header
	By string `json:"by"`
	// Elsewhere (an extension of relay clusters): the inviting host is on
	// another relay, the room's owner; mic_accept moves this listener
	// there (redirect, then mic_accept with a ticket), so an early pub
	// here is pointless (and refused).
	Elsewhere bool `json:"elsewhere,omitempty"`
}

// Reasons in mic_rejected (an extension: docs/protocol.md).
const (
	MicReasonRejected  = "rejected"  // the other side said no
	MicReasonCancelled = "cancelled" // the requester withdrew its request
	MicReasonTimeout   = "timeout"   // nobody answered within the mic timeout
	MicReasonNoHost    = "no_host"   // no host is left in the room
)

// MicRejected ends a mic request or invitation without a seat.
type MicRejected struct {
	Header
	By          string `json:"by,omitempty"`          // who ended it; absent for timeout and no_host
	Participant string `json:"participant,omitempty"` // whose request or invitation it was
	Reason      string `json:"reason"`
	// PubClosed (an extension: the early pub) says that the relay closed
	// the participant's early pub connection; only in its own copy.
	PubClosed bool `json:"pub_closed,omitempty"`
}

// Muted announces a participant's mute state.
type Muted struct {
	Header
	Participant string `json:"participant"`
	Muted       bool   `json:"muted"`
	By          string `json:"by"`
}

// Kicked tells a participant that a host removed it.
type Kicked struct {
	Header
	Reason string `json:"reason"`
}

// Speaker is one entry of Speakers.
type Speaker struct {
	Participant string  `json:"participant"`
	Level       float64 `json:"level"`
}

// Speakers lists who speaks, loudest first.
type Speakers struct {
	Header
	Speakers []Speaker `json:"speakers"`
}

// NewServerMessage returns a new value of the Go type of the server message
// type typ, to unmarshal into; false for a type this package does not know.
func NewServerMessage(typ string) (any, bool) {
	switch typ {
	case TypeJoined:
		return &Joined{}, true
	case TypeOffer, TypeAnswer:
		return &SessionDescription{}, true
	case TypeCandidate:
		return &Candidate{}, true
	case TypeParticipantJoined:
		return &ParticipantJoined{}, true
	case TypeParticipantLeft:
		return &ParticipantLeft{}, true
	case TypeTrackPublished:
		return &TrackPublished{}, true
	case TypeTrackUnpublished:
		return &TrackUnpublished{}, true
	case TypeRoleChanged:
		return &RoleChanged{}, true
	case TypeMicRequested:
		return &MicRequested{}, true
	case TypeMicInvited:
		return &MicInvited{}, true
	case TypeMicRejected:
		return &MicRejected{}, true
	case TypeMuted:
		return &Muted{}, true
	case TypeKicked:
		return &Kicked{}, true
	case TypeSpeakers:
		return &Speakers{}, true
	case TypeAudience:
		return &Audience{}, true
	case TypePong:
		return &Pong{}, true
	case TypeError:
		return &Error{}, true
	case TypeDraining:
		return &Draining{}, true
	case TypeRedirect:
		return &Redirect{}, true
	case TypePKInvited:
		return &PKInvited{}, true
	case TypePKStarted:
		return &PKStarted{}, true
	case TypePKRejected:
		return &PKRejected{}, true
	case TypePKEnded:
		return &PKEnded{}, true
	}
	return nil, false
}
