package client_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// dropSentNth is a SendInterceptor that drops the nth RTP packet the
// publisher writes, on its first write only: the NACK responder's
// retransmission of it (the same sequence number) passes.
type dropSentNth struct {
	n int

	mu      sync.Mutex
	written int
	dropped bool
	seq     uint16 // valid when dropped
	resent  int    // writes of the dropped sequence number after the drop
}

func (d *dropSentNth) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropSentInterceptor{d: d}, nil
}

type dropSentInterceptor struct {
	interceptor.NoOp
	d *dropSentNth
}

func (i *dropSentInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if i.d.drop(h.SequenceNumber) {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

func (d *dropSentNth) drop(seq uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped && seq == d.seq {
		d.resent++
		return false
	}
	d.written++
	if d.written == d.n {
		d.dropped, d.seq = true, seq
		return true
	}
	return false
}

func (d *dropSentNth) state() (seq uint16, dropped bool, resent int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq, d.dropped, d.resent
}

// TestSendInterceptor: a packet the publisher's SendInterceptor drops is
// lost on the wire after the NACK responder kept it, so the relay's NACK
// brings its retransmission, which the audience receives.
func TestSendInterceptor(t *testing.T) {
	r, ctx := start(t, relaytest.Options{})
	loss := &dropSentNth{n: 30}
	host := dial(ctx, t, client.Config{URL: r.URL, Room: "send", Name: "alice", Role: protocol.RoleHost, SendInterceptor: loss})
	aud := dial(ctx, t, client.Config{URL: r.URL, Room: "send", Name: "bob", Role: protocol.RoleAudience})
	if err := aud.SubConnected(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sendPaced(pub, stop) }()
	defer func() { close(stop); wg.Wait() }()

	var rt *client.RemoteTrack
	select {
	case rt = <-aud.Tracks():
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	deadline, _ := ctx.Deadline()
	if err := rt.Track.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	// Payload i carries i, so the dropped packet is known by its payload
	// whatever sequence numbers the relay writes.
	seen := map[uint32]bool{}
	for {
		seq, dropped, _ := loss.state()
		idx := uint32(seq - 1000) // sendPaced numbers packet i as 1000 + i
		if dropped && seen[idx] && len(seen) >= 60 {
			break
		}
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			t.Fatalf("received %d packets; dropped %v (index %d), back: %v; %v", len(seen), dropped, idx, seen[idx], err)
		}
		if len(pkt.Payload) == 5 {
			seen[binary.BigEndian.Uint32(pkt.Payload[1:])] = true
		}
	}
	if _, _, resent := loss.state(); resent < 1 {
		t.Fatalf("the dropped packet came back without a retransmission through the interceptor (%d)", resent)
	}
}
