package sfu

import "github.com/pion/webrtc/v4"

// Sink receives what the sfu must tell one participant's client. The
// signaling session implements it.
type Sink interface {
	// Send queues ev for the client. It must not block and must not call
	// back into the sfu: the sfu calls it with a room lock held, which is
	// what keeps each client's events in order.
	Send(ev Event)
	// Close ends the client's connection: the participant was removed by
	// the relay (timeout, shutdown). reason is one of the Reason constants.
	Close(reason Reason)
}

// Event is one of the *Event types below.
type Event interface{ isEvent() }

// Role is what a participant may do in a room.
type Role string

// Roles.
const (
	RoleHost     Role = "host"     // publishes and moderates
	RoleGuest    Role = "guest"    // publishes: a co-streamer on the mic
	RoleAudience Role = "audience" // receives only
)

// Roles lists every role.
func Roles() []Role { return []Role{RoleHost, RoleGuest, RoleAudience} }

// publishes reports whether the role takes a seat and may publish.
func (r Role) publishes() bool { return r == RoleHost || r == RoleGuest }

// Reason says why a participant left.
type Reason string

// Reasons for leaving.
const (
	ReasonLeft     Reason = "left"
	ReasonKicked   Reason = "kicked"
	ReasonTimeout  Reason = "timeout"
	ReasonReplaced Reason = "replaced"
	// ReasonPKEnded: a remote publisher (role remote) left because the
	// link between the rooms ended (pk.go).
	ReasonPKEnded Reason = "pk_ended"
	// ReasonShutdown is not sent as participant_left (the whole room goes);
	// it tells Sink.Close why the connection ends.
	ReasonShutdown Reason = "shutdown"
)

// PC names a participant's peer connection.
type PC string

// Peer connections.
const (
	Sub PC = "sub" // offered by the relay; what the participant receives
	Pub PC = "pub" // offered by the client; what the participant sends
)

// Info is a participant as others see it.
type Info struct {
	ID   string
	Name string
	Role Role
	Room string // a remote publisher's room (remote.go); "" for the room's own
}

// TrackInfo is a published track.
type TrackInfo struct {
	ID   string
	Kind string // "audio" (later "video")
}

// State is a participant with what it publishes, for JoinedEvent.
type State struct {
	Info
	Muted  bool
	Tracks []TrackInfo
}

// JoinedEvent is the first event of every participant.
type JoinedEvent struct {
	RequestID string // the join message's id
	Room      string
	Self      Info
	Others    []State // the participants this one may see (see Presence)
	Audience  int
	// ResumeToken lets a later session take this participant over
	// (SFU.Resume); Resumed is set when this event answers a resume.
	ResumeToken string
	Resumed     bool
	// Listen is what the participant's sub connection carries now:
	// ListenMix, or ListenTracks (hosts and guests always; and every
	// audience member when the relay has no mix).
	Listen Listen
}

// ParticipantJoinedEvent announces a participant now visible to the receiver.
type ParticipantJoinedEvent struct{ Participant Info }

// ParticipantLeftEvent announces that a visible participant is gone.
type ParticipantLeftEvent struct {
	ID     string
	Reason Reason
}

// TrackPublishedEvent announces a track; everyone gets it.
type TrackPublishedEvent struct {
	Participant string
	Track       TrackInfo
}

// TrackUnpublishedEvent announces that a track ended.
type TrackUnpublishedEvent struct {
	Participant string
	Track       string
}

// AudienceEvent carries the room's audience count, at most once a second.
type AudienceEvent struct{ Count int }

// DescriptionEvent is an SDP offer (on sub) or answer (on pub) for the
// client. RequestID is the id of the offer an answer replies to.
type DescriptionEvent struct {
	RequestID string
	PC        PC
	Type      webrtc.SDPType // offer or answer
	SDP       string
}

// CandidateEvent is one of the relay's ICE candidates; nil marks the end.
type CandidateEvent struct {
	PC        PC
	Candidate *webrtc.ICECandidateInit
}

// RoleChangedEvent announces a participant's new role.
type RoleChangedEvent struct {
	Participant string
	Role        Role
}

// MicRequestedEvent tells a host that an audience member asks for the mic.
type MicRequestedEvent struct{ Participant string }

// MicInvitedEvent tells an audience member that a host invites it.
type MicInvitedEvent struct {
	By string
	// Ticket, for a proxy participant only (proxy.go): names the
	// invitation for its edge, which hands it to its listener.
	Ticket string
	// Elsewhere: the invitation of an edge's listener by a host of the
	// room's owner (proxy.go); accepting it moves the listener there.
	Elsewhere bool
}

// MicReason says why a request or invitation ended without a seat.
type MicReason string

// Reasons in MicRejectedEvent.
const (
	MicRejected  MicReason = "rejected"  // the other side said no
	MicCancelled MicReason = "cancelled" // the requester withdrew its request
	MicTimeout   MicReason = "timeout"   // nobody answered in time
	MicNoHost    MicReason = "no_host"   // the last host left
)

// MicRejectedEvent ends a request or an invitation. By is who ended it
// (empty for timeout and no_host); Participant is the audience member
// whose request or invitation it was.
type MicRejectedEvent struct {
	By          string
	Participant string
	Reason      MicReason
	// PubClosed: the relay closed the participant's early pub connection
	// (earlypub.go); only in the participant's own copy.
	PubClosed bool
}

// MutedEvent announces that a participant's audio is muted or unmuted.
type MutedEvent struct {
	Participant string
	Muted       bool
	By          string
}

// KickedEvent tells a participant it was removed by a host.
type KickedEvent struct{ Reason string }

// Speaker is one entry of SpeakersEvent.
type Speaker struct {
	Participant string
	Level       float64 // 0 (silent) to 1 (full scale)
}

// SpeakersEvent lists who speaks, loudest first.
type SpeakersEvent struct{ Speakers []Speaker }

// PKInvitedEvent tells a host that another room's host invites its room
// to link (pk.go).
type PKInvitedEvent struct {
	Room string // the inviting room
	By   Info   // the inviting host
}

// PKStartedEvent tells everyone in a room that it is linked with Room.
type PKStartedEvent struct{ Room string }

// PKRejectedEvent tells the hosts of both rooms that an invitation ended
// without a link. Room is the other room.
type PKRejectedEvent struct {
	Room   string
	Reason PKReason
}

// PKEndedEvent tells everyone in a room that its link with Room ended.
type PKEndedEvent struct {
	Room   string
	Reason PKReason
}

func (PKInvitedEvent) isEvent()         {}
func (PKStartedEvent) isEvent()         {}
func (PKRejectedEvent) isEvent()        {}
func (PKEndedEvent) isEvent()           {}
func (RoleChangedEvent) isEvent()       {}
func (MicRequestedEvent) isEvent()      {}
func (MicInvitedEvent) isEvent()        {}
func (MicRejectedEvent) isEvent()       {}
func (MutedEvent) isEvent()             {}
func (KickedEvent) isEvent()            {}
func (SpeakersEvent) isEvent()          {}
func (JoinedEvent) isEvent()            {}
func (ParticipantJoinedEvent) isEvent() {}
func (ParticipantLeftEvent) isEvent()   {}
func (TrackPublishedEvent) isEvent()    {}
func (TrackUnpublishedEvent) isEvent()  {}
func (AudienceEvent) isEvent()          {}
func (DescriptionEvent) isEvent()       {}
func (CandidateEvent) isEvent()         {}
