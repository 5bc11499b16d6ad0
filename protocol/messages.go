package protocol

// Version is the protocol version the relay speaks.
const Version = 1

// MaxMessageSize is the largest text frame either side may send.
const MaxMessageSize = 64 << 10

// Message types, client to server.
const (
	TypeJoin       = "join"
	TypeOffer      = "offer"
	TypeAnswer     = "answer"
	TypeCandidate  = "candidate"
	TypeMicRequest = "mic_request"
	TypeMicInvite  = "mic_invite"
	TypeMicAccept  = "mic_accept"
	TypeMicReject  = "mic_reject"
	TypeMicRelease = "mic_release"
	TypeMute       = "mute"
	TypeKick       = "kick"
	TypeLeave      = "leave"
	TypePing       = "ping"
	// Cross-room co-streaming (an extension: docs/protocol.md, "PK").
	TypePKInvite = "pk_invite"
	TypePKAccept = "pk_accept"
	TypePKReject = "pk_reject"
	TypePKEnd    = "pk_end"
)

// Message types, server to client (offer, answer and candidate go both ways).
const (
	TypeJoined            = "joined"
	TypeParticipantJoined = "participant_joined"
	TypeParticipantLeft   = "participant_left"
	TypeTrackPublished    = "track_published"
	TypeTrackUnpublished  = "track_unpublished"
	TypeRoleChanged       = "role_changed"
	TypeMicRequested      = "mic_requested"
	TypeMicInvited        = "mic_invited"
	TypeMicRejected       = "mic_rejected"
	TypeMuted             = "muted"
	TypeKicked            = "kicked"
	TypeSpeakers          = "speakers"
	TypeAudience          = "audience"
	TypePong              = "pong"
	TypeError             = "error"
	TypeDraining          = "draining" // an extension: the relay is shutting down
	TypeRedirect          = "redirect" // an extension: the room moved to another relay of the cluster
	TypePKInvited         = "pk_invited"
	TypePKStarted         = "pk_started"
	TypePKRejected        = "pk_rejected"
	TypePKEnded           = "pk_ended"
)

// Peer connection names.
const (
	PCSub = "sub" // offered by the server; carries what the participant receives
	PCPub = "pub" // offered by the client; carries what the participant sends
)

// Roles.
const (
	RoleHost     = "host"
	RoleGuest    = "guest"
	RoleAudience = "audience"
	// RoleRemote (an extension) is a publisher of another room heard in
	// this one while the rooms are linked (pk_*): participant.room names
	// its room. Never a join's role.
	RoleRemote = "remote"
)

// Reasons in participant_left.
const (
	ReasonLeft     = "left"
	ReasonKicked   = "kicked"
	ReasonTimeout  = "timeout"
	ReasonReplaced = "replaced"
	ReasonPKEnded  = "pk_ended" // an extension: a remote participant left as its room's link ended
)

// What an audience member's sub connection carries (join.listen and
// joined.listen, an extension: docs/protocol.md).
const (
	ListenMix    = "mix"    // one track: the room's audience mix
	ListenTracks = "tracks" // one track per published track
)

// ParticipantMix is the participant in track_published and
// track_unpublished for the audience mix's track, and the MediaStream id
// of that track on sub.
const ParticipantMix = "mix"

// Header is the part every message has. ID is set on client messages that
// want their reply or error matched, and echoed on that reply or error.
type Header struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// Join is the first message of a session.
type Join struct {
	Header
	Room    string `json:"room"`
	Name    string `json:"name"`
	Role    string `json:"role,omitempty"`
	Token   string `json:"token,omitempty"`
	Version *int   `json:"version,omitempty"`
	// Resume (an extension) is the resume token of an earlier session's
	// joined: within the grace period the join takes that participant
	// over instead of adding a new one.
	Resume string `json:"resume,omitempty"`
	// ICERestart (an extension, with Resume): the client kept its peer
	// connections and restarts ICE on them; false means it has new ones.
	ICERestart bool `json:"ice_restart,omitempty"`
	// Listen (an extension) is what the participant receives while in
	// the audience: ListenMix or ListenTracks; absent for the relay's
	// default (-audience-listen, tracks unless the operator says mix).
	Listen string `json:"listen,omitempty"`
}

// SessionDescription is an offer or an answer, on pc "pub" or "sub".
// Header.Type says which.
type SessionDescription struct {
	Header
	PC  string `json:"pc"`
	SDP string `json:"sdp"`
}

// ICECandidate is a trickled ICE candidate, as the browser's
// RTCIceCandidateInit has it.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Candidate carries one ICE candidate, or nil for the end of candidates.
type Candidate struct {
	Header
	PC        string        `json:"pc"`
	Candidate *ICECandidate `json:"candidate"`
}

// Targeted is a client message that names a participant: mic_invite,
// mic_accept, mic_reject, mic_release and kick.
type Targeted struct {
	Header
	Participant string `json:"participant,omitempty"`
	// Reason, for kick only (optional, an extension): shown to the kicked
	// participant, at most 200 characters.
	Reason string `json:"reason,omitempty"`
	// Ticket, for mic_accept only (an extension of relay clusters): the
	// invitation this audience member got on another relay of the
	// cluster, named by that relay's redirect (Redirect.Ticket); at most
	// 64 characters.
	Ticket string `json:"ticket,omitempty"`
}

// Mute asks the server to stop (or resume) forwarding a participant's audio.
type Mute struct {
	Header
	Participant string `json:"participant"`
	Muted       *bool  `json:"muted"`
}

// Participant describes a participant in joined and participant_joined.
type Participant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// Room (an extension) is the room of a participant with role
	// "remote"; absent for the room's own participants.
	Room string `json:"room,omitempty"`
}

// Track describes a published track.
type Track struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// ParticipantState is a participant as joined.participants lists it.
type ParticipantState struct {
	Participant
	Muted  bool    `json:"muted"`
	Tracks []Track `json:"tracks"`
}

// Joined answers join.
type Joined struct {
	Header
	Version      int                `json:"version"`
	Room         string             `json:"room"`
	Participant  Participant        `json:"participant"`
	Participants []ParticipantState `json:"participants"`
	Audience     int                `json:"audience"`
	// Resume (an extension) is the token a later join sends to take this
	// session over after a lost connection.
	Resume string `json:"resume,omitempty"`
	// Resumed (an extension) is true when the join resumed an earlier
	// session: same participant id, role, tracks and mic state.
	Resumed bool `json:"resumed,omitempty"`
	// Listen (an extension) is what the participant's sub connection
	// carries now: ListenMix, or ListenTracks (hosts and guests always,
	// and everyone when the relay has no mix).
	Listen string `json:"listen,omitempty"`
	// ICEServers (an extension) are STUN/TURN servers the client should
	// give its peer connections (RTCConfiguration.iceServers), with
	// credentials for this participant; absent when the relay runs none.
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
}

// ICEServer is one entry of Joined.ICEServers, shaped as a browser's
// RTCIceServer: turn:host:port?transport=udp|tcp and turns:host:port URLs,
// and the username and credential that open them until they expire.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ParticipantJoined announces a participant.
type ParticipantJoined struct {
	Header
	Participant Participant `json:"participant"`
}

// ParticipantLeft announces that a participant is gone, and why.
type ParticipantLeft struct {
	Header
	Participant string `json:"participant"`
	Reason      string `json:"reason"`
}

// TrackPublished announces a track, to everyone in the room.
type TrackPublished struct {
	Header
	Participant string `json:"participant"`
	Track       Track  `json:"track"`
}

// TrackUnpublished announces that a track ended.
type TrackUnpublished struct {
	Header
	Participant string `json:"participant"`
	Track       string `json:"track"`
}

// RoleChanged announces a participant's new role.
type RoleChanged struct {
	Header
	Participant string `json:"participant"`
	Role        string `json:"role"`
}

// Audience is the number of audience members in the room.
type Audience struct {
	Header
	Count int `json:"count"`
}

// Draining (an extension) tells every client that the relay is shutting
// down: it closes the connection (1001) after TimeoutMS unless the client
// leaves first. Clients should reconnect to another relay.
type Draining struct {
	Header
	TimeoutMS int64  `json:"timeout_ms"`
	Message   string `json:"message"`
}

// Error reports a failed client message. ID is the ID of the message that
// caused it, when it had one.
type Error struct {
	Header
	Code    string `json:"code"`
	Message string `json:"message"`
	// URL and Room, with code redirect only (an extension): send the
	// same join to URL, a relay of the cluster that serves Room.
	URL  string `json:"url,omitempty"`
	Room string `json:"room,omitempty"`
}

// Redirect tells a joined participant that its room now lives on another
// relay of the cluster (an extension): the relay closes the connection
// (1000, "redirect") next; join again at URL. Before joined a join is
// refused with error code redirect instead (docs/protocol.md).
type Redirect struct {
	Header
	URL     string `json:"url"`
	Room    string `json:"room"`
	Message string `json:"message"`
	// Then is what the client should send again once joined at URL:
	// "mic_request" when the move answers a mic request on an edge (the
	// room's hosts are at URL), "mic_accept" when it answers the
	// acceptance of a host's invitation there (with Ticket); empty when
	// the room itself moved.
	Then string `json:"then,omitempty"`
	// Ticket, with Then "mic_accept" (an extension): the invitation to
	// accept at URL; send it in mic_accept's ticket there.
	Ticket string `json:"ticket,omitempty"`
}

// MessageHeader returns the header; every message type has it through
// embedding, so code can read any message's type and id.
func (h Header) MessageHeader() Header { return h }
