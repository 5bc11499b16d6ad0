package sfu

import "errors"

// Errors returned by Join and the Participant methods. Signaling maps each
// to a protocol error code; wrapped errors add context with %w.
var (
	// ErrRoomFull: the room has no free seat for a publisher, or has
	// reached its participant limit, or the relay its room limit.
	ErrRoomFull = errors.New("room is full")
	// ErrBadRequest: a field the request needs is missing.
	ErrBadRequest = errors.New("bad request")
	// ErrForbidden: the participant's role may not do this.
	ErrForbidden = errors.New("forbidden for this role")
	// ErrBadDescription: an SDP offer or answer the relay cannot use.
	ErrBadDescription = errors.New("bad session description")
	// ErrBadCandidate: an ICE candidate the relay cannot parse or add.
	ErrBadCandidate = errors.New("bad ICE candidate")
	// ErrNoOffer: an answer on sub when the relay has no offer outstanding.
	ErrNoOffer = errors.New("no offer is outstanding on this connection")
	// ErrShuttingDown: the relay is shutting down and takes no new joins.
	ErrShuttingDown = errors.New("relay is shutting down")
	// ErrResumeUnknown: the resume token names no participant of that
	// room (removed after its grace period, or never issued): join afresh.
	ErrResumeUnknown = errors.New("no session to resume")
	// ErrClosed: the participant has left.
	ErrClosed = errors.New("participant has left")
	// ErrNotFound: the named participant is not in the room, or has no
	// such request, invitation or seat.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the participant already has an outstanding request or
	// invitation, or is already on the mic.
	ErrConflict = errors.New("conflict")
	// ErrRedirect: another relay of the cluster serves the room; the
	// error is a *RedirectError that says where (route.go).
	ErrRedirect = errors.New("the room is served by another relay")
	// ErrUnavailable: the cluster's directory cannot be reached, so the
	// relay cannot tell who serves a room it does not hold; retry shortly.
	ErrUnavailable = errors.New("the cluster directory is unavailable")
)
