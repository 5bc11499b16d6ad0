package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/sfu"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// Short timing for tests: entries age out 2 s after the last heartbeat
// (heartbeats every 0.67 s, with room for a loaded machine under the race
// detector).
const (
	testTTL       = 2 * time.Second
	testOpTimeout = 2 * time.Second
	testDeadline  = 30 * time.Second
)

// setup starts a NATS server for t, and the leak check (run last).
func setup(t *testing.T) (*natstest.Server, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return natstest.Start(t), ctx
}

// startNode starts a node named id on url (the NATS server or a proxy).
func startNode(t *testing.T, url, id string) *Node {
	t.Helper()
	n, err := Start(Config{NATSURL: url, NodeID: id, NodeURL: "ws://" + id + ".test/ws",
		TTL: testTTL, OpTimeout: testOpTimeout, ReconnectWait: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// eventually is natstest.Eventually.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	natstest.Eventually(ctx, t, what, cond)
}

// routeWhenReady routes until the node has opened the directory (its
// first heartbeat runs right after it connects).
func routeWhenReady(ctx context.Context, t *testing.T, n *Node, room string, role sfu.Role) sfu.Route {
	t.Helper()
	var rt sfu.Route
	eventually(ctx, t, n.ID()+" routes "+room, func() bool {
		var err error
		rt, err = n.Route(ctx, room, role)
		return err == nil
	})
	return rt
}

// reader looks at the directory as an outsider.
type reader struct{ rooms jetstream.KeyValue }

func newReader(ctx context.Context, t *testing.T, url string) *reader {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var kv jetstream.KeyValue
	eventually(ctx, t, "the rooms bucket", func() bool {
		kv, err = js.KeyValue(ctx, RoomsBucket)
		return err == nil
	})
	return &reader{rooms: kv}
}

// owner is the room's owner in the directory, "" if it has no entry.
func (r *reader) owner(ctx context.Context, t *testing.T, room string) string {
	t.Helper()
	kve, err := r.rooms.Get(ctx, room)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		return "?" + err.Error()
	}
	return string(kve.Value())
}

func TestConfigValidate(t *testing.T) {
	ok := Config{NATSURL: "nats://x:4222", NodeID: "relay-0", NodeURL: "wss://relay-0.example.com/ws"}
	for _, tt := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no nats", func(c *Config) { c.NATSURL = "" }, "-nats"},
		{"node id with a dot", func(c *Config) { c.NodeID = "relay.0" }, "-node-id"},
		{"empty node id", func(c *Config) { c.NodeID = "" }, "-node-id"},
		{"http node url", func(c *Config) { c.NodeURL = "https://x/ws" }, "-node-url"},
		{"node url without host", func(c *Config) { c.NodeURL = "wss:///ws" }, "-node-url"},
		{"ttl too short", func(c *Config) { c.TTL = 10 * time.Millisecond }, "TTL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// Two nodes race for the same fresh rooms: every room ends with exactly
// one owner, its joins are local there, and the other node routes hosts to
// it (redirect) and listeners to it (edge).
func TestClaimRace(t *testing.T) {
	srv, ctx := setup(t)
	a, b := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b")
	routeWhenReady(ctx, t, a, "warmup-a", sfu.RoleHost)
	routeWhenReady(ctx, t, b, "warmup-b", sfu.RoleHost)
	rd := newReader(ctx, t, srv.URL())
	for i := range 20 {
		room := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		routes := make([]sfu.Route, 2)
		errs := make([]error, 2)
		for j, n := range []*Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				routes[j], errs[j] = n.Route(ctx, room, sfu.RoleHost)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", room, err)
			}
		}
		locals := 0
		for _, rt := range routes {
			if rt.Kind == sfu.RouteLocal {
				locals++
			}
		}
		if locals != 1 {
			t.Fatalf("%s: routes %+v: want exactly one node to own it", room, routes)
		}
		winner, loser, lrt := a, b, routes[1]
		if routes[1].Kind == sfu.RouteLocal {
			winner, loser, lrt = b, a, routes[0]
		}
		if lrt.Kind != sfu.RouteRedirect || lrt.Owner != winner.ID() || lrt.URL != winner.cfg.NodeURL {
			t.Fatalf("%s: the loser's route %+v, want a redirect to %s", room, lrt, winner.cfg.NodeURL)
		}
		if got := rd.owner(ctx, t, room); got != string(mustJSON(winner.self)) {
			t.Fatalf("%s: directory says %s, want %s", room, got, winner.ID())
		}
		if rt, err := loser.Route(ctx, room, sfu.RoleAudience); err != nil || rt.Kind != sfu.RouteEdge || rt.Owner != winner.ID() {
			t.Fatalf("%s: a listener on the loser routes %+v, %v; want edge of %s", room, rt, err, winner.ID())
		}
		if rt, err := winner.Route(ctx, room, sfu.RoleGuest); err != nil || rt.Kind != sfu.RouteLocal {
			t.Fatalf("%s: a guest on the owner routes %+v, %v; want local", room, rt, err)
		}
	}
}

// A room's entry is renewed while the room lives (beyond several TTLs)
// and released when it empties.
func TestRenewAndRelease(t *testing.T) {
	srv, ctx := setup(t)
	a := startNode(t, srv.URL(), "a")
	if rt := routeWhenReady(ctx, t, a, "r", sfu.RoleHost); rt.Kind != sfu.RouteLocal {
		t.Fatalf("route %+v, want local", rt)
	}
	a.RoomCreated("r")
	rd := newReader(ctx, t, srv.URL())
	// Outlive two TTLs, checking the entry throughout.
	for end := time.Now().Add(2 * testTTL); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if rd.owner(ctx, t, "r") == "" {
			t.Fatal("the entry of a live room aged out: the heartbeat did not renew it")
		}
	}
	a.RoomRemoved("r")
	eventually(ctx, t, "the released entry gone", func() bool { return rd.owner(ctx, t, "r") == "" })
	if v := testutilValue(a.m.ops.WithLabelValues(opRenew, resultOK)); v < 3 {
		t.Errorf("renewals counted: %v, want at least 3", v)
	}
}

// A claim whose join never created the room (it failed after routing) is
// dropped and released by the keeper after a TTL, not renewed forever.
func TestUnusedClaimDropped(t *testing.T) {
	srv, ctx := setup(t)
	a := startNode(t, srv.URL(), "a")
	routeWhenReady(ctx, t, a, "never-made", sfu.RoleHost)
	rd := newReader(ctx, t, srv.URL())
	eventually(ctx, t, "the unused claim gone", func() bool { return rd.owner(ctx, t, "never-made") == "" && !a.holds("never-made") })
}

// The owner stops heartbeating (cut off): with nobody asking, its entry
// ages out within the TTL (the staleness bound).
func TestOwnerGoneEntryAgesOut(t *testing.T) {
	srv, ctx := setup(t)
	px := natstest.NewProxy(t, srv.Addr())
	a := startNode(t, px.URL(), "a")
	routeWhenReady(ctx, t, a, "r", sfu.RoleHost)
	a.RoomCreated("r")
	rd := newReader(ctx, t, srv.URL())
	if rd.owner(ctx, t, "r") == "" {
		t.Fatal("no entry for a's room")
	}
	px.Cut()
	eventually(ctx, t, "a's entry to age out", func() bool { return rd.owner(ctx, t, "r") == "" })
}

// A join for a room whose owner is gone (no responder on its ping
// subject) takes the room over at once, without waiting for the entry to
// age out; while the owner answers, the room stays its own.
func TestOwnerGoneTakeover(t *testing.T) {
	srv, ctx := setup(t)
	px := natstest.NewProxy(t, srv.Addr())
	a, b := startNode(t, px.URL(), "a"), startNode(t, srv.URL(), "b")
	routeWhenReady(ctx, t, a, "r", sfu.RoleHost)
	a.RoomCreated("r")
	routeWhenReady(ctx, t, b, "warmup", sfu.RoleHost)
	if rt, _ := b.Route(ctx, "r", sfu.RoleHost); rt.Kind != sfu.RouteRedirect {
		t.Fatalf("b routes %+v while a owns r, want redirect", rt)
	}
	if v := testutilValue(b.m.ops.WithLabelValues(opPing, resultOK)); v < 1 {
		t.Errorf("pings answered: %v", v)
	}
	px.Cut()
	// Once the server has dropped a's connection (and its ping
	// subscription), b takes over.
	eventually(ctx, t, "b to take r over", func() bool {
		rt, err := b.Route(ctx, "r", sfu.RoleHost)
		return err == nil && rt.Kind == sfu.RouteLocal
	})
	if v := testutilValue(b.m.ops.WithLabelValues(opTakeover, resultOK)); v != 1 {
		t.Errorf("takeovers counted: %v, want 1", v)
	}
	rd := newReader(ctx, t, srv.URL())
	if got := rd.owner(ctx, t, "r"); got != string(mustJSON(b.self)) {
		t.Fatalf("directory says %s after the takeover", got)
	}
}

// Without NATS a join that needs the directory fails with ErrUnavailable
// (within OpTimeout, not hanging); a room the node holds still routes
// locally; when NATS comes back, the node rebuilds its entries without a
// restart (the server lost its memory-stored buckets).
func TestOutageAndRebuild(t *testing.T) {
	srv, ctx := setup(t)
	a := startNode(t, srv.URL(), "a")
	routeWhenReady(ctx, t, a, "held", sfu.RoleHost)
	a.RoomCreated("held")
	srv.Shutdown()
	eventually(ctx, t, "a to notice the outage", func() bool { return !a.nc.IsConnected() })
	_, err := a.Route(ctx, "other", sfu.RoleHost)
	if !errors.Is(err, sfu.ErrUnavailable) {
		t.Fatalf("route without NATS: %v, want ErrUnavailable", err)
	}
	if rt, err := a.Route(ctx, "held", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteLocal {
		t.Fatalf("a held room without NATS routes %+v, %v; want local", rt, err)
	}
	if v := testutilValue(a.m.routes.WithLabelValues("unavailable")); v < 1 {
		t.Errorf("unavailable routes counted: %v", v)
	}
	// The gauge is set by nats.go's disconnect callback, which runs on its
	// own goroutine after IsConnected turns false.
	eventually(ctx, t, "relay_cluster_nats_connected to be 0 while down", func() bool { return testutilValue(a.m.connected) == 0 })
	srv.Restart()
	rd := newReader(ctx, t, srv.URL())
	eventually(ctx, t, "the held room back in the directory", func() bool {
		return rd.owner(ctx, t, "held") == string(mustJSON(a.self))
	})
	if v := testutilValue(a.m.reconnects); v < 1 {
		t.Errorf("reconnects counted: %v", v)
	}
	if rt, err := a.Route(ctx, "other", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteLocal {
		t.Fatalf("after the rebuild a new room routes %+v, %v; want local", rt, err)
	}
}

// A node cut off long enough for its entry to age out finds, when it comes
// back, that another node claimed its room: its copy loses, and onLost
// gets the winner's URL.
func TestLostRoomAfterPartition(t *testing.T) {
	srv, ctx := setup(t)
	px := natstest.NewProxy(t, srv.Addr())
	a, b := startNode(t, px.URL(), "a"), startNode(t, srv.URL(), "b")
	lost := make(chan [2]string, 1)
	a.OnLost(func(room, url string) { lost <- [2]string{room, url} })
	routeWhenReady(ctx, t, a, "r", sfu.RoleHost)
	a.RoomCreated("r")
	routeWhenReady(ctx, t, b, "warmup", sfu.RoleHost)
	px.Cut()
	eventually(ctx, t, "b to claim r", func() bool {
		rt, err := b.Route(ctx, "r", sfu.RoleHost)
		return err == nil && rt.Kind == sfu.RouteLocal
	})
	b.RoomCreated("r")
	px.Heal()
	select {
	case got := <-lost:
		if got != [2]string{"r", b.cfg.NodeURL} {
			t.Fatalf("onLost(%v), want r moved to %s", got, b.cfg.NodeURL)
		}
	case <-ctx.Done():
		t.Fatal("a never noticed it lost r")
	}
	if a.holds("r") {
		t.Error("a still holds r after losing it")
	}
	if rt, err := a.Route(ctx, "r", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteRedirect || rt.Owner != "b" {
		t.Fatalf("a routes r %+v, %v after losing it; want redirect to b", rt, err)
	}
}

// A draining owner hands its room to the other live node, which adopts it
// on its first join; with no other node, the room is released.
func TestHandover(t *testing.T) {
	srv, ctx := setup(t)
	a, b := startNode(t, srv.URL(), "a"), startNode(t, srv.URL(), "b")
	routeWhenReady(ctx, t, a, "r", sfu.RoleHost)
	a.RoomCreated("r")
	routeWhenReady(ctx, t, b, "warmup", sfu.RoleHost)
	moved := a.Handover(ctx)
	if len(moved) != 1 || moved["r"] != b.cfg.NodeURL {
		t.Fatalf("handover moved %v, want r to %s", moved, b.cfg.NodeURL)
	}
	if rt, err := a.Route(ctx, "s", sfu.RoleHost); !errors.Is(err, sfu.ErrUnavailable) {
		t.Fatalf("a draining node claimed a new room: %+v, %v", rt, err)
	}
	if rt, err := b.Route(ctx, "r", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteLocal {
		t.Fatalf("b routes the handed-over room %+v, %v; want local", rt, err)
	}
	// b alone: its handover releases.
	b.RoomCreated("r")
	_ = a.Close()
	eventually(ctx, t, "a's liveness key gone", func() bool {
		nodes, err := b.directory().liveNodes(ctx)
		return err == nil && len(nodes) == 1
	})
	if moved := b.Handover(ctx); len(moved) != 0 {
		t.Fatalf("the last node handed over %v", moved)
	}
	rd := newReader(ctx, t, srv.URL())
	if o := rd.owner(ctx, t, "r"); o != "" {
		t.Fatalf("after the last node's drain r is owned by %s, want released", o)
	}
}

// A relay whose NATS is not there yet starts anyway (and keeps
// reconnecting): joins that need the directory get ErrUnavailable at once.
func TestStartWithoutNATS(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	n := startNode(t, url, "a")
	if _, err := n.Route(context.Background(), "r", sfu.RoleHost); !errors.Is(err, sfu.ErrUnavailable) {
		t.Fatalf("route without NATS: %v, want ErrUnavailable", err)
	}
	if v := testutilValue(n.m.connected); v != 0 {
		t.Errorf("relay_cluster_nats_connected = %v", v)
	}
}

// A join waits for another join's directory work on the same room no
// longer than OpTimeout: then it gets ErrUnavailable, not a hang.
func TestRouteWaitsBounded(t *testing.T) {
	srv, ctx := setup(t)
	a := startNode(t, srv.URL(), "a")
	routeWhenReady(ctx, t, a, "warmup", sfu.RoleHost)
	unlock, err := a.lockRoom(ctx, "busy") // as a join stuck in a slow NATS
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Route(ctx, "busy", sfu.RoleHost)
	unlock()
	if !errors.Is(err, sfu.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("route while the room's lock is held: %v; want ErrUnavailable after the operation timeout", err)
	}
	if rt, err := a.Route(ctx, "busy", sfu.RoleHost); err != nil || rt.Kind != sfu.RouteLocal {
		t.Fatalf("route once the lock is free: %+v, %v", rt, err)
	}
	eventually(ctx, t, "every room lock to be forgotten", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.locks) == 0 // the keeper takes them briefly too
	})
}

// A room held without an entry (deleted here behind the holder's back, as
// a NATS restart loses the in-memory buckets) is not claimed by another
// node: its joins go to the holder, which writes the entry back at once.
func TestHeldRoomWithoutEntry(t *testing.T) {
	srv, ctx := setup(t)
	a := startNode(t, srv.URL(), "a")
	b := startNode(t, srv.URL(), "b")
	if rt := routeWhenReady(ctx, t, a, "r", sfu.RoleHost); rt.Kind != sfu.RouteLocal {
		t.Fatalf("route %+v, want local", rt)
	}
	a.RoomCreated("r")
	if err := a.nc.Flush(); err != nil { // the holder subscription has reached the server
		t.Fatal(err)
	}
	rd := newReader(ctx, t, srv.URL())
	for _, role := range []sfu.Role{sfu.RoleHost, sfu.RoleAudience} {
		// (a writes the entry back after each answer: delete it again.)
		eventually(ctx, t, "the entry deleted", func() bool { return rd.rooms.Delete(ctx, "r") == nil && rd.owner(ctx, t, "r") == "" })
		rt := routeWhenReady(ctx, t, b, "r", role)
		want := sfu.RouteRedirect
		if role == sfu.RoleAudience {
			want = sfu.RouteEdge
		}
		if rt.Kind != want || rt.Owner != "a" {
			t.Fatalf("%s route through b of a room a holds without an entry: %+v, want kind %v to a", role, rt, want)
		}
	}
	// The first route found no entry; the second may find the one a
	// wrote back meanwhile.
	if v := testutilValue(b.m.ops.WithLabelValues(opHolder, resultHeld)); v < 1 {
		t.Errorf("holder answers counted on b: %v, want at least 1", v)
	}
	eventually(ctx, t, "a to write its entry back", func() bool { return strings.Contains(rd.owner(ctx, t, "r"), `"node":"a"`) })

	// Once a has let the room go, nobody answers and b claims it.
	a.RoomRemoved("r")
	eventually(ctx, t, "the released entry gone", func() bool { return rd.owner(ctx, t, "r") == "" })
	if rt := routeWhenReady(ctx, t, b, "r", sfu.RoleHost); rt.Kind != sfu.RouteLocal {
		t.Fatalf("route through b of a room nobody holds: %+v, want local", rt)
	}
	if v := testutilValue(b.m.ops.WithLabelValues(opHolder, resultNotFound)); v != 1 {
		t.Errorf("holder misses counted on b: %v, want 1", v)
	}
}
