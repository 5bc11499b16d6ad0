package sfu

import (
	"context"
	"errors"
	"fmt"
)

// A relay in a cluster (package cluster) serves a room only on the node
// that owns it in the cluster's directory. Router is how the room layer
// asks: Join calls Route before it opens anything, and tells the router
// when it creates and removes a room, so that the directory follows the
// rooms this relay holds. Config.Router nil: a single relay, every room
// local.
//
// RoomCreated and RoomRemoved are called under the SFU's lock (the order
// of creations and removals of one room is theirs): they must not block
// or call back; a router does its network work later, in order.
type Router interface {
	// Route says where a join of room by a participant with role is
	// served. An error wrapping ErrUnavailable refuses the join (the
	// directory cannot be reached); it must return within a bounded time.
	Route(ctx context.Context, room string, role Role) (Route, error)
	// RoomCreated: this relay created its local room (after a RouteLocal).
	RoomCreated(room string)
	// RoomRemoved: this relay's local room emptied and is gone.
	RoomRemoved(room string)
}

// RouteKind is a Router's answer.
type RouteKind int

const (
	// RouteLocal: this relay serves the room (it owns it, or has just
	// claimed it).
	RouteLocal RouteKind = iota
	// RouteRedirect: another relay owns the room; the client must
	// reconnect to Route.URL and send the same join there.
	RouteRedirect
	// RouteEdge: another relay (Route.Owner) owns the room, and the
	// participant only listens: this relay may serve it as an edge of the
	// owner (Config.Edge). Without an Edge it is a RouteRedirect to
	// Route.URL.
	RouteEdge
)

// Route is where a join goes.
type Route struct {
	Kind  RouteKind
	Owner string // the owning node's id (RouteRedirect, RouteEdge)
	URL   string // the owning node's WebSocket URL (RouteRedirect, RouteEdge)
}

// EdgeJoiner serves a listener of a room that another relay owns, on this
// relay (an edge). Join calls it for a RouteEdge, instead of joining a
// local room; nil (Config.Edge): the listener is redirected to the owner.
type EdgeJoiner interface {
	JoinEdge(jp JoinParams, route Route) (*Participant, error)
}

// RedirectError refuses a join that another relay serves: the client must
// send the same join to URL. It wraps ErrRedirect.
type RedirectError struct {
	Room, Owner, URL string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("room %s is served by relay %s: reconnect to %s and join there", e.Room, e.Owner, e.URL)
}

// Unwrap makes errors.Is(err, ErrRedirect) true.
func (e *RedirectError) Unwrap() error { return ErrRedirect }

// MicElsewhereError refuses a mic request on an edge room: the room's
// hosts are on its owner, at URL, where the requester must join (as
// audience) and ask again. It wraps ErrRedirect.
//
// With Ticket set it refuses a mic_accept instead: the listener accepts
// an invitation from a host of the owner (proxy.go), and must join the
// owner and accept there, naming the ticket (Participant.AcceptTicket).
type MicElsewhereError struct {
	Room, URL string
	Ticket    string
}

func (e *MicElsewhereError) Error() string {
	if e.Ticket != "" {
		return fmt.Sprintf("room %s's hosts are on another relay: join it at %s and accept the invitation there (mic_accept with its ticket)", e.Room, e.URL)
	}
	return fmt.Sprintf("room %s's hosts are on another relay: join it at %s and request the mic there", e.Room, e.URL)
}

// Unwrap makes errors.Is(err, ErrRedirect) true.
func (e *MicElsewhereError) Unwrap() error { return ErrRedirect }

// route asks the router, if any, where jp is served. nil, nil: here.
func (s *SFU) route(jp JoinParams) (*Participant, error) {
	if s.cfg.Router == nil {
		return nil, nil
	}
	rt, err := s.cfg.Router.Route(context.Background(), jp.Room, jp.Role)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, err
	}
	switch rt.Kind {
	case RouteLocal:
		return nil, nil
	case RouteEdge:
		if s.cfg.Edge != nil {
			p, err := s.cfg.Edge.JoinEdge(jp, rt)
			if err == nil && p == nil {
				err = errors.New("edge join returned no participant")
			}
			return p, err
		}
	}
	return nil, &RedirectError{Room: jp.Room, Owner: rt.Owner, URL: rt.URL}
}
