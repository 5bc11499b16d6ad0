package protocol

import "errors"

// Cross-room co-streaming ("PK", an extension: docs/protocol.md): a host
// invites another room, a host of that room accepts or rejects, and while
// linked each room's publishers are heard in the other as participants
// with role "remote".

// PKRequest is pk_invite, pk_accept, pk_reject or pk_end: Room is the
// other room (the one invited, or whose invitation is answered, or the
// linked one).
type PKRequest struct {
	Header
	Room string `json:"room"`
}

func (m *PKRequest) validate([]byte) error {
	if !ValidRoom(m.Room) {
		return errors.New(`"room" must be 1 to 64 ASCII letters, digits, '-' or '_'`)
	}
	return nil
}

// Reasons in pk_rejected and pk_ended.
const (
	PKReasonRejected  = "rejected"  // pk_rejected: a host of the invited room said no
	PKReasonTimeout   = "timeout"   // pk_rejected: nobody answered within the mic timeout
	PKReasonCancelled = "cancelled" // pk_rejected: a host sent pk_end before the answer
	PKReasonNoHost    = "no_host"   // either: one of the rooms has no host any more
	PKReasonEnded     = "ended"     // pk_ended: a host sent pk_end
	PKReasonLinkLost  = "link_lost" // pk_ended: across nodes, the other room's relay died or the link between the relays failed
)

// PKInvited tells every host of a room that another room's host invites
// it to link.
type PKInvited struct {
	Header
	Room string      `json:"room"` // the inviting room
	By   Participant `json:"by"`   // the inviting host
}

// PKStarted tells everyone in both rooms that they are linked.
type PKStarted struct {
	Header
	Room string `json:"room"` // the other room
}

// PKRejected tells the hosts of both rooms that an invitation ended
// without a link.
type PKRejected struct {
	Header
	Room   string `json:"room"` // the other room
	Reason string `json:"reason"`
}

// PKEnded tells everyone in both rooms that their link ended; the remote
// participants then leave with reason pk_ended.
type PKEnded struct {
	Header
	Room   string `json:"room"` // the other room
	Reason string `json:"reason"`
}
