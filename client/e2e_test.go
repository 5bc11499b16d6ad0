package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestDialRefused(t *testing.T) {
	defer goleak.VerifyNone(t)
	relay := newFakeRelay(t)
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := Dial(ctx, Config{URL: relay.URL(), Room: "deny", Name: "a", ID: "j1", Loopback: true})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeUnauthorized || se.ID != "j1" {
		t.Fatalf("Dial: %v, want unauthorized ServerError with id j1", err)
	}
}

func TestDialContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	relay := newFakeRelay(t)
	defer relay.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, Config{URL: relay.URL(), Room: "r", Name: "a", Loopback: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context: %v", err)
	}
}

// dropOnce is a ReceiveInterceptor that drops the first arrival of one
// sequence number.
type dropOnce struct {
	mu      sync.Mutex
	seq     uint16
	armed   bool
	dropped bool
}

func (d *dropOnce) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropInterceptor{d: d}, nil
}

func (d *dropOnce) arm(seq uint16) {
	d.mu.Lock()
	d.seq, d.armed = seq, true
	d.mu.Unlock()
}

func (d *dropOnce) drop(seq uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed && !d.dropped && seq == d.seq {
		d.dropped = true
		return true
	}
	return false
}

type dropInterceptor struct {
	interceptor.NoOp
	d *dropOnce
}

func (i *dropInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, a, err := r.Read(b, a)
			if err != nil {
				return n, a, err
			}
			var h rtp.Header
			if _, err := h.Unmarshal(b[:n]); err == nil && i.d.drop(h.SequenceNumber) {
				continue
			}
			return n, a, nil
		}
	})
}

// TestPublishEcho publishes to the fake relay, which echoes the packets on
// the sub connection; one is dropped on arrival and must come back through
// NACK.
func TestPublishEcho(t *testing.T) {
	defer goleak.VerifyNone(t)
	relay := newFakeRelay(t)
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	loss := &dropOnce{}
	c, err := Dial(ctx, Config{URL: relay.URL(), Room: "r", Name: "alice", Role: "host", Loopback: true,
		ReceiveInterceptor: loss})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID() != "p-alice" || c.Joined().Room != "r" {
		t.Fatalf("joined %+v", c.Joined())
	}
	if err := c.SubConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if c.SubOfferSDP() == "" {
		t.Fatal("no sub offer recorded")
	}

	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx); !errors.Is(err, ErrAlreadyPublishing) {
		t.Fatalf("second Publish: %v", err)
	}
	if pub.AnswerSDP() == "" {
		t.Fatal("empty answer")
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	if pub.AudioLevelExtensionID() == 0 {
		t.Error("audio level extension not negotiated")
	}

	// Publish 10 ms packets until the echo arrives, then 100 more.
	const seq0 = 1000
	const dropped = seq0 + 30
	loss.arm(dropped)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 1000; i++ {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq0 + i),
				Timestamp: uint32(480 * i), Marker: i == 0}, Payload: []byte{0xf8, byte(i), 0xff, 0xfe}}
			if err := pub.WriteRTP(pkt); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	var rt *RemoteTrack
	select {
	case rt = <-c.Tracks():
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	if rt.StreamID != fakeStreamID || rt.TrackID != fakeTrackID {
		t.Fatalf("track %q/%q", rt.StreamID, rt.TrackID)
	}
	seen := map[uint16]bool{}
	deadline, _ := ctx.Deadline()
	if err := rt.Track.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	for !seen[dropped] || len(seen) < 60 {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			t.Fatalf("saw %d packets, the dropped one: %v (dropped by the interceptor: %v): %v",
				len(seen), seen[dropped], loss.dropped, err)
		}
		seen[pkt.SequenceNumber] = true
	}
	if !loss.dropped {
		t.Fatal("the interceptor dropped nothing")
	}

	// Request: a reply, and an error as *ServerError (also on Events).
	reply, err := c.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing}}, "")
	if _, ok := reply.(*protocol.Pong); err != nil || !ok {
		t.Fatalf("ping: %T %v", reply, err)
	}
	_, err = c.Request(ctx, &protocol.MicRequest{Header: protocol.Header{Type: protocol.TypeMicRequest}}, "m1")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeConflict || se.ID != "m1" {
		t.Fatalf("mic_request: %v", err)
	}
	var gotMap, gotErr bool
	for !gotMap || !gotErr {
		select {
		case ev := <-c.Events():
			switch ev := ev.(type) {
			case map[string]any:
				gotMap = ev["type"] == "mic_requested"
			case *protocol.Error:
				gotErr = ev.ID == "m1"
			}
		case <-ctx.Done():
			t.Fatalf("events: map %v, error %v", gotMap, gotErr)
		}
	}

	if err := c.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if c.CloseCode() != protocol.CloseNormal {
		t.Fatalf("close code %d", c.CloseCode())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Leave")
	}
}

func TestDropAndClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	relay := newFakeRelay(t)
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, drop := range []bool{true, false} {
		c, err := Dial(ctx, Config{URL: relay.URL(), Room: "r", Name: "bob", Role: "guest", Loopback: true, DisableNACK: true})
		if err != nil {
			t.Fatal(err)
		}
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
		if drop {
			c.Drop()
		}
		_ = c.Close()
		_ = c.Close() // idempotent
		if c.CloseCode() != 0 {
			t.Fatalf("close code %d after an abrupt close", c.CloseCode())
		}
		if err := c.Send(&protocol.Ping{Header: protocol.Header{Type: "ping"}}); err == nil {
			t.Fatal("Send after Close succeeded")
		}
		if _, err := c.Publish(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Close: %v", err)
		}
		if err := c.SubConnected(ctx); err == nil {
			t.Fatal("SubConnected after Close succeeded")
		}
	}
}
