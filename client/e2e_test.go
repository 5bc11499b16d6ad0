package client_test

// End-to-end tests of the client against the real relay, started in-process
// on loopback by relaytest: real pion peers on both sides, no fakes.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// testDeadline bounds every test that starts peers; the race detector and
// a shared machine make pion slow, so it is generous.
const testDeadline = 60 * time.Second

// start starts a relay for t and returns it with a context bounded by
// testDeadline. The goroutine-leak check is registered first, so that it
// runs after every other cleanup: the clients' (registered later by dial)
// and the relay's shutdown.
func start(t *testing.T, o relaytest.Options) (*relaytest.Relay, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return relaytest.Start(t, o), ctx
}

// dial joins a client and closes it at cleanup.
func dial(ctx context.Context, t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Loopback = true
	cfg.Logger = relaytest.Logger()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("%s joins %s as %s: %v", cfg.Name, cfg.Room, cfg.Role, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitEvent returns the first event from c that match accepts (nil: any of
// type T), skipping others, and fails t if none comes before ctx ends.
func waitEvent[T any](ctx context.Context, t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	return relaytest.WaitEvent(ctx, t, c, match)
}

func TestDialRefused(t *testing.T) {
	tests := []struct {
		name     string
		opts     relaytest.Options
		hostless bool // no host joins first
		cfg      client.Config
		code     string
	}{
		{
			name:     "bad room name",
			hostless: true,
			cfg:      client.Config{Room: "no spaces", Name: "a", ID: "j1"},
			code:     protocol.CodeBadRequest,
		},
		{
			name:     "no token",
			opts:     relaytest.Options{AuthSecret: "secret"},
			hostless: true,
			cfg:      client.Config{Room: "r", Name: "a", ID: "j3"},
			code:     protocol.CodeUnauthorized,
		},
		{
			name: "seats taken",
			opts: relaytest.Options{Seats: 1},
			cfg:  client.Config{Room: "full", Name: "g", Role: protocol.RoleGuest, ID: "j2"},
			code: protocol.CodeRoomFull,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ctx := start(t, tt.opts)
			if !tt.hostless {
				dial(ctx, t, client.Config{URL: r.URL, Room: tt.cfg.Room, Name: "host", Role: protocol.RoleHost})
			}
			cfg := tt.cfg
			cfg.URL, cfg.Loopback = r.URL, true
			c, err := client.Dial(ctx, cfg)
			if err == nil {
				_ = c.Close()
				t.Fatal("Dial succeeded")
			}
			var se *client.ServerError
			if !errors.As(err, &se) || se.Code != tt.code || se.ID != tt.cfg.ID {
				t.Fatalf("Dial: %v, want a ServerError %s with id %q", err, tt.code, tt.cfg.ID)
			}
		})
	}
}

// TestDialToken: with a secret, the token the client sends decides the
// participant's name and role.
func TestDialToken(t *testing.T) {
	secret := "secret"
	r, ctx := start(t, relaytest.Options{AuthSecret: secret})
	token, err := auth.Mint([]byte(secret), "tok", "Alice", protocol.RoleGuest, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(ctx, t, client.Config{URL: r.URL, Room: "tok", Name: "ignored", Token: token})
	if p := c.Joined().Participant; p.Name != "Alice" || p.Role != protocol.RoleGuest {
		t.Fatalf("joined as %+v, want Alice as guest from the token", p)
	}
}

func TestDialContext(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := client.Dial(cancelled, client.Config{URL: r.URL, Room: "r", Name: "a", Loopback: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context: %v", err)
	}
}

// dropNth is a ReceiveInterceptor that drops the nth RTP packet to arrive,
// on its first arrival only: its retransmission (the same sequence number)
// passes.
type dropNth struct {
	n int

	mu      sync.Mutex
	arrived int
	dropped bool
	seq     uint16 // valid when dropped
}

// factory is the client's ReceiveInterceptor for this policy.
func (d *dropNth) factory() interceptor.Factory {
	return relaytest.DropIncoming(func(_ uint32, seq uint16) bool { return d.drop(seq) }, nil)
}

// drop reports whether the packet with sequence number seq, just arrived,
// is to be dropped.
func (d *dropNth) drop(seq uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.arrived++
	if d.arrived == d.n {
		d.dropped, d.seq = true, seq
		return true
	}
	return false
}

// droppedSeq returns the sequence number dropped, if any yet.
func (d *dropNth) droppedSeq() (uint16, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq, d.dropped
}

// sendPaced writes 10 ms packets on pub until stop is closed or a write
// fails. Payload i is a TOC byte and i, so that each packet is unique.
func sendPaced(pub *client.Publisher, stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := uint32(0); ; i++ {
		payload := binary.BigEndian.AppendUint32([]byte{0xf8}, i)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(1000 + i),
			Timestamp: 480 * i, Marker: i == 0}, Payload: payload}
		if err := pub.WriteRTP(pkt); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

// TestPublishAndReceive: a host publishes through the relay to an
// audience member, whose sub connection drops one packet on arrival that
// must come back through NACK. Along the way: the relay's replies and
// refusals through Request and Publish, and Leave.
func TestPublishAndReceive(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	host := dial(ctx, t, client.Config{URL: r.URL, Room: "e2e", Name: "alice", Role: protocol.RoleHost})
	loss := &dropNth{n: 30}
	aud := dial(ctx, t, client.Config{URL: r.URL, Room: "e2e", Name: "bob", Role: protocol.RoleAudience,
		ID: "join-bob", ReceiveInterceptor: loss.factory()})

	j := aud.Joined()
	if aud.ID() == "" || aud.ID() == host.ID() || j.Room != "e2e" || j.Participant.Name != "bob" ||
		j.Participant.Role != protocol.RoleAudience || j.Version != protocol.Version {
		t.Fatalf("joined %+v", j)
	}
	if len(j.Participants) != 1 || j.Participants[0].ID != host.ID() {
		t.Errorf("joined.participants = %+v, want the host", j.Participants)
	}
	for _, c := range []*client.Client{host, aud} {
		if err := c.SubConnected(ctx); err != nil {
			t.Fatal(err)
		}
		if c.SubOfferSDP() == "" {
			t.Fatal("no sub offer recorded")
		}
	}

	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.Publish(ctx); !errors.Is(err, client.ErrAlreadyPublishing) {
		t.Fatalf("second Publish: %v", err)
	}
	if !strings.Contains(pub.AnswerSDP(), "a=ptime:10") {
		t.Errorf("pub answer lacks a=ptime:10:\n%s", pub.AnswerSDP())
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	if pub.AudioLevelExtensionID() == 0 {
		t.Error("the audio level extension was not negotiated on pub")
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendPaced(pub, stop)
	}()
	defer func() { close(stop); wg.Wait() }()

	// A track is announced when its first packet reaches the relay.
	published := waitEvent(ctx, t, aud, func(e *protocol.TrackPublished) bool { return e.Participant == host.ID() })
	var rt *client.RemoteTrack
	select {
	case rt = <-aud.Tracks():
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	if rt.StreamID != host.ID() || rt.TrackID != published.Track.ID {
		t.Fatalf("remote track %q/%q, want %q/%q (publisher/track_published)",
			rt.StreamID, rt.TrackID, host.ID(), published.Track.ID)
	}
	deadline, _ := ctx.Deadline()
	if err := rt.Track.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	// Read until the dropped packet is back and 60 have arrived. Payloads
	// arrive unchanged, and the sequence numbers keep their distance.
	seen := map[uint16]bool{}
	var offset uint16 // sequence number minus payload index
	for {
		dropped, ok := loss.droppedSeq()
		if ok && seen[dropped] && len(seen) >= 60 {
			break
		}
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			t.Fatalf("received %d packets; the dropped one (%d, dropped: %v) back: %v; %v",
				len(seen), dropped, ok, seen[dropped], err)
		}
		if len(pkt.Payload) != 5 || pkt.Payload[0] != 0xf8 {
			t.Fatalf("payload % x was never sent", pkt.Payload)
		}
		idx := uint16(binary.BigEndian.Uint32(pkt.Payload[1:]))
		if len(seen) == 0 {
			offset = pkt.SequenceNumber - idx
		} else if pkt.SequenceNumber-idx != offset {
			t.Fatalf("packet %d has sequence number %d, want %d", idx, pkt.SequenceNumber, idx+offset)
		}
		seen[pkt.SequenceNumber] = true
	}

	// Request: a reply, and a refusal as *ServerError (also on Events).
	reply, err := aud.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing}}, "")
	if _, ok := reply.(*protocol.Pong); err != nil || !ok {
		t.Fatalf("ping: %T %v", reply, err)
	}
	_, err = aud.Request(ctx, &protocol.SessionDescription{Header: protocol.Header{Type: protocol.TypeOffer},
		PC: protocol.PCPub, SDP: "v=0\r\n"}, "o1")
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeForbidden || se.ID != "o1" {
		t.Fatalf("offer from the audience: %v, want forbidden with id o1", err)
	}
	waitEvent(ctx, t, aud, func(e *protocol.Error) bool { return e.ID == "o1" && e.Code == protocol.CodeForbidden })

	// Publish refused, and a refused Publish may be retried.
	for range 2 {
		_, err := aud.Publish(ctx)
		if !errors.As(err, &se) || se.Code != protocol.CodeForbidden {
			t.Fatalf("Publish as audience: %v, want forbidden", err)
		}
	}

	if err := aud.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if aud.CloseCode() != protocol.CloseNormal {
		t.Fatalf("close code %d after Leave", aud.CloseCode())
	}
	select {
	case <-aud.Done():
	default:
		t.Fatal("Done not closed after Leave")
	}
	left := waitEvent(ctx, t, host, func(e *protocol.ParticipantLeft) bool { return e.Participant == aud.ID() })
	if left.Reason != protocol.ReasonLeft {
		t.Errorf("participant_left reason %q, want left", left.Reason)
	}
}

// TestDropAndClose: a guest that drops (sockets gone, no signaling) or
// closes (WebSocket gone without a close frame) is removed with reason
// timeout after the grace period; a closed client refuses further calls.
func TestDropAndClose(t *testing.T) {
	const grace = 300 * time.Millisecond
	for _, drop := range []bool{true, false} {
		name := map[bool]string{true: "drop", false: "close"}[drop]
		t.Run(name, func(t *testing.T) {
			r, ctx := start(t, relaytest.Options{Grace: grace})
			host := dial(ctx, t, client.Config{URL: r.URL, Room: "dc", Name: "host", Role: protocol.RoleHost})
			c := dial(ctx, t, client.Config{URL: r.URL, Room: "dc", Name: "bob", Role: protocol.RoleGuest, DisableNACK: true})
			if err := c.SubConnected(ctx); err != nil {
				t.Fatal(err)
			}
			pub, err := c.Publish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Connected(ctx); err != nil {
				t.Fatal(err)
			}
			waitEvent(ctx, t, host, func(e *protocol.ParticipantJoined) bool { return e.Participant.ID == c.ID() })

			gone := time.Now()
			if drop {
				c.Drop()
			}
			_ = c.Close()
			_ = c.Close() // idempotent
			if c.CloseCode() != 0 {
				t.Fatalf("close code %d after an abrupt close", c.CloseCode())
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("Done not closed after Close")
			}

			left := waitEvent(ctx, t, host, func(e *protocol.ParticipantLeft) bool { return e.Participant == c.ID() })
			if left.Reason != protocol.ReasonTimeout {
				t.Errorf("participant_left reason %q, want timeout", left.Reason)
			}
			if time.Since(gone) < grace {
				t.Errorf("removed %v after going, before the grace period (%v) ended", time.Since(gone), grace)
			}

			if err := c.Send(&protocol.Ping{Header: protocol.Header{Type: protocol.TypePing}}); err == nil {
				t.Error("Send after Close succeeded")
			}
			if _, err := c.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing}}, ""); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Request after Close: %v, want ErrClosed", err)
			}
			if _, err := c.Publish(ctx); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Publish after Close: %v, want ErrClosed", err)
			}
			if err := c.SubConnected(ctx); err == nil {
				t.Error("SubConnected after Close succeeded")
			}
			if err := pub.Connected(ctx); err == nil {
				t.Error("pub Connected after Close succeeded")
			}
			if err := c.Leave(ctx); err == nil {
				t.Error("Leave after Close succeeded")
			}
		})
	}
}

// TestOnUDPSocket: the hook sees every UDP socket the client's ICE agents
// open before they use it; a hook that fails leaves the client with no
// socket to connect over, and the sub connection does not connect.
func TestOnUDPSocket(t *testing.T) {
	tests := []struct {
		name        string
		fail        bool
		wantConnect bool
	}{
		{name: "accepted", wantConnect: true},
		{name: "refused", fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ctx := start(t, relaytest.Options{})
			var mu sync.Mutex
			var seen []string
			hook := func(c *net.UDPConn) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, c.LocalAddr().String())
				if tt.fail {
					return errors.New("refused by the test")
				}
				return nil
			}
			c := dial(ctx, t, client.Config{URL: r.URL, Room: "hook", Name: "ann", Role: protocol.RoleAudience,
				OnUDPSocket: hook, DisableNACK: true, NoRTCPReports: true})
			cctx := ctx
			if !tt.fail {
				if err := c.SubConnected(cctx); err != nil {
					t.Fatalf("sub connection: %v", err)
				}
			} else {
				// Nothing to connect over: it can only end at a deadline.
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := c.SubConnected(cctx); err == nil {
					t.Fatal("the sub connection connected with every socket refused")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				t.Fatal("the hook saw no socket")
			}
		})
	}
}
