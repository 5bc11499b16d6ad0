package sfu

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/lianmai/relay/media"
	"go.uber.org/goleak"
)

// recRouter answers every Route with route (or err) and records the
// calls: the room layer's side of the seam, tested alone (package cluster
// tests the real router against NATS).
type recRouter struct {
	route Route
	err   error

	mu     sync.Mutex
	routed []Role
	events []string // "created r", "removed r"
}

func (r *recRouter) Route(_ context.Context, room string, role Role) (Route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed = append(r.routed, role)
	return r.route, r.err
}

func (r *recRouter) RoomCreated(room string) { r.record("created " + room) }
func (r *recRouter) RoomRemoved(room string) { r.record("removed " + room) }

func (r *recRouter) record(ev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recRouter) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// edgeRec is an EdgeJoiner that refuses with err and records its route.
type edgeRec struct {
	got Route
	err error
}

func (e *edgeRec) JoinEdge(_ JoinParams, rt Route) (*Participant, error) {
	e.got = rt
	return nil, e.err
}

func routedSFU(t *testing.T, rt Router, edge EdgeJoiner) *SFU {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	udp, err := media.ListenUDP("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ICE: ICEConfig{UDPMux: udp, Loopback: true}, Router: rt, Edge: edge, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRoute(t *testing.T) {
	other := Route{Owner: "b", URL: "wss://b.example/ws"}
	errRefused := errors.New("edge refused")
	for _, tt := range []struct {
		name      string
		route     Route
		routeErr  error
		edge      *edgeRec
		role      Role
		wantIs    error
		wantURL   string // of the RedirectError
		wantEdged bool
	}{
		{name: "redirect", route: Route{Kind: RouteRedirect, Owner: other.Owner, URL: other.URL}, role: RoleHost, wantIs: ErrRedirect, wantURL: other.URL},
		{name: "edge without an edge joiner redirects", route: Route{Kind: RouteEdge, Owner: other.Owner, URL: other.URL}, role: RoleAudience, wantIs: ErrRedirect, wantURL: other.URL},
		{name: "edge with an edge joiner", route: Route{Kind: RouteEdge, Owner: other.Owner, URL: other.URL}, role: RoleAudience, edge: &edgeRec{err: errRefused}, wantIs: errRefused, wantEdged: true},
		{name: "edge joiner without participant", route: Route{Kind: RouteEdge, Owner: other.Owner, URL: other.URL}, role: RoleAudience, edge: &edgeRec{}, wantEdged: true},
		{name: "directory unavailable", routeErr: errors.New("nats down"), role: RoleGuest, wantIs: ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rr := &recRouter{route: tt.route, err: tt.routeErr}
			var edge EdgeJoiner
			if tt.edge != nil {
				edge = tt.edge
			}
			s := routedSFU(t, rr, edge)
			p, err := s.Join(JoinParams{Room: "r", Name: "n", Role: tt.role, Sink: newEventSink()})
			if p != nil || err == nil {
				t.Fatalf("Join = %v, %v; want an error", p, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("Join error %v, want one wrapping %v", err, tt.wantIs)
			}
			var re *RedirectError
			if tt.wantURL != "" && (!errors.As(err, &re) || re.URL != tt.wantURL || re.Room != "r" || re.Owner != "b") {
				t.Fatalf("Join error %#v, want a RedirectError to %s", err, tt.wantURL)
			}
			if tt.wantEdged && tt.edge.got != tt.route {
				t.Errorf("the edge joiner got %+v, want %+v", tt.edge.got, tt.route)
			}
			if ev := rr.log(); len(ev) != 0 {
				t.Errorf("a join served elsewhere created a room here: %v", ev)
			}
			if rr.routed[0] != tt.role {
				t.Errorf("routed role %s, want %s", rr.routed[0], tt.role)
			}
		})
	}
	t.Run("local", func(t *testing.T) {
		rr := &recRouter{route: Route{Kind: RouteLocal}}
		s := routedSFU(t, rr, nil)
		p1, err := s.Join(JoinParams{Room: "r", Name: "a", Role: RoleHost, Sink: newEventSink()})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.Join(JoinParams{Room: "r", Name: "b", Role: RoleAudience, Sink: newEventSink()})
		if err != nil {
			t.Fatal(err)
		}
		if len(rr.routed) != 2 {
			t.Errorf("routed %d joins, want every join routed", len(rr.routed))
		}
		p1.Leave()
		if ev := rr.log(); !slices.Equal(ev, []string{"created r"}) {
			t.Fatalf("router saw %v with one participant left, want [created r]", ev)
		}
		p2.Leave()
		if ev := rr.log(); !slices.Equal(ev, []string{"created r", "removed r"}) {
			t.Fatalf("router saw %v, want the room created once and removed once", ev)
		}
	})
}
