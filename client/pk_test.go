package client_test

import (
	"errors"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
)

// TestPK: the client's PK calls against a real relay: an audience
// member's invitation is refused (a *ServerError with code forbidden), a
// host's reaches the other room's host, whose acceptance links the rooms
// (pk_started at both, the other host as a remote participant), and
// pk_end ends it.
func TestPK(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	hostA := dial(ctx, t, client.Config{URL: r.URL, Room: "ca", Name: "HA", Role: protocol.RoleHost})
	audA := dial(ctx, t, client.Config{URL: r.URL, Room: "ca", Name: "AA", Role: protocol.RoleAudience})
	hostB := dial(ctx, t, client.Config{URL: r.URL, Room: "cb", Name: "HB", Role: protocol.RoleHost})

	var se *client.ServerError
	if err := audA.PKInvite(ctx, "cb"); !errors.As(err, &se) || se.Code != protocol.CodeForbidden {
		t.Fatalf("an audience member's pk_invite: %v, want a forbidden error", err)
	}
	if err := hostA.PKInvite(ctx, "cb"); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, hostB, func(e *protocol.PKInvited) bool { return e.Room == "ca" && e.By.ID == hostA.ID() })
	if err := hostB.PKAccept(ctx, "ca"); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, hostA, func(e *protocol.PKStarted) bool { return e.Room == "cb" })
	waitEvent(ctx, t, hostA, func(e *protocol.ParticipantJoined) bool {
		return e.Participant.ID == hostB.ID() && e.Participant.Role == protocol.RoleRemote && e.Participant.Room == "cb"
	})
	if err := hostA.PKEnd(ctx, "cb"); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, hostB, func(e *protocol.PKEnded) bool { return e.Room == "ca" && e.Reason == protocol.PKReasonEnded })
	if err := hostB.PKReject(ctx, "ca"); !errors.As(err, &se) || se.Code != protocol.CodeNotFound {
		t.Errorf("pk_reject with no invitation: %v, want a not_found error", err)
	}
}
