package signaling_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/protocol"
)

// sentStream is what one publisher sent: payload by sequence number.
type sentStream struct {
	mu       sync.Mutex
	payloads map[uint16][]byte
	last     uint16
}

// record keeps a copy of the payload sent as seq.
func (s *sentStream) record(seq uint16, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.payloads[seq] = append([]byte(nil), payload...)
	s.last = seq
}

// publish sends n 10 ms Opus frames of a voice-like source from pub,
// paced in real time, until ctx ends or a write fails.
func publish(ctx context.Context, pub *client.Publisher, seed int64, n int) (*sentStream, error) {
	s := &sentStream{payloads: make(map[uint16][]byte, n)}
	if err := publishTo(ctx, pub, s, seed, n); err != nil {
		return s, err
	}
	return s, nil
}

// publishTo is publish recording into s, which the caller may read
// meanwhile (under s.mu).
func publishTo(ctx context.Context, pub *client.Publisher, s *sentStream, seed int64, n int) error {
	src, err := opusgen.NewSource(seed, 1)
	if err != nil {
		return err
	}
	pk := opusgen.NewPacketizer(111, rand.Uint32())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		frame, err := src.NextFrame()
		if err != nil {
			return err
		}
		pkt := pk.Packet(frame)
		s.record(pkt.SequenceNumber, frame)
		if err := pub.WriteRTP(pkt); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// received is what one subscriber got of one track.
type received struct {
	trackID  string
	payloads map[uint16][]byte
	first    uint16
	count    int
}

// receiver collects the tracks a client receives.
type receiver struct {
	mu     sync.Mutex
	tracks map[string]*received // by stream id (publisher participant id)
	wg     sync.WaitGroup
}

// receive starts collecting c's remote tracks until ctx ends; each track's
// reader ends when c closes.
func receive(ctx context.Context, c *client.Client) *receiver {
	r := &receiver{tracks: make(map[string]*received)}
	go func() {
		for {
			select {
			case rt := <-c.Tracks():
				rec := &received{trackID: rt.TrackID, payloads: make(map[uint16][]byte)}
				r.mu.Lock()
				r.tracks[rt.StreamID] = rec
				r.mu.Unlock()
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					for {
						pkt, _, err := rt.Track.ReadRTP()
						if err != nil {
							return
						}
						r.mu.Lock()
						if rec.count == 0 {
							rec.first = pkt.SequenceNumber
						}
						rec.count++
						rec.payloads[pkt.SequenceNumber] = append([]byte(nil), pkt.Payload...)
						r.mu.Unlock()
					}
				}()
			case <-ctx.Done():
				return
			}
		}
	}()
	return r
}

// TestForwarding: a host and a guest publish distinct real Opus streams in
// 10 ms frames; three audience members receive both, and each publisher
// the other's. Payloads arrive unchanged, at least 99% of the packets
// after the first arrive, and each sub track is labelled with its
// publisher's id and the track id of track_published.
func TestForwarding(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{})
	host := r.join(ctx, t, "stage", "Host", protocol.RoleHost)
	guest := r.join(ctx, t, "stage", "Guest", protocol.RoleGuest)
	var audience []*client.Client
	for _, name := range []string{"A1", "A2", "A3"} {
		audience = append(audience, r.join(ctx, t, "stage", name, protocol.RoleAudience))
	}
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	receivers := map[*client.Client]*receiver{}
	for _, c := range append([]*client.Client{host, guest}, audience...) {
		receivers[c] = receive(recvCtx, c)
	}

	pubs := map[*client.Client]*client.Publisher{}
	for _, c := range []*client.Client{host, guest} {
		p, err := c.Publish(ctx)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if !strings.Contains(p.AnswerSDP(), "a=ptime:10") {
			t.Errorf("pub answer lacks a=ptime:10:\n%s", p.AnswerSDP())
		}
		if !strings.Contains(p.AnswerSDP(), "minptime=10;useinbandfec=1") {
			t.Errorf("pub answer's Opus fmtp lacks minptime=10;useinbandfec=1:\n%s", p.AnswerSDP())
		}
		if err := p.Connected(ctx); err != nil {
			t.Fatalf("pub connected: %v", err)
		}
		pubs[c] = p
	}
	const frames = 300 // 3 s
	sent := map[string]*sentStream{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range []*client.Client{host, guest} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := publish(ctx, pubs[c], int64(i+1), frames)
			if err != nil {
				t.Errorf("publish: %v", err)
			}
			mu.Lock()
			sent[c.ID()] = s
			mu.Unlock()
		}()
	}
	// A track is announced when its first packet reaches the relay.
	trackIDs := map[string]string{} // publisher id → track id, from track_published
	for len(trackIDs) < 2 {
		e := waitEvent[*protocol.TrackPublished](ctx, t, audience[0], nil)
		trackIDs[e.Participant] = e.Track.ID
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // the last packets in flight on loopback
	stopRecv()

	if mostlyEqual(sent[host.ID()].payloads, sent[guest.ID()].payloads) {
		t.Fatal("host and guest sent the same audio; the test needs distinct streams")
	}
	for c, rc := range receivers {
		rc.mu.Lock()
		for _, from := range []*client.Client{host, guest} {
			if from == c {
				if _, ok := rc.tracks[from.ID()]; ok {
					t.Errorf("%s receives its own track", c.ID())
				}
				continue
			}
			t.Run(c.Joined().Participant.Name+"<-"+from.Joined().Participant.Name, func(t *testing.T) {
				checkStream(t, rc.tracks[from.ID()], sent[from.ID()], trackIDs[from.ID()])
			})
		}
		rc.mu.Unlock()
	}
	if got := r.counter(t, "relay_packets_dropped_total", "reason", "write_failed"); got != 0 {
		t.Errorf("%v packets failed to write on an idle loopback", got)
	}
}

func checkStream(t *testing.T, got *received, sent *sentStream, trackID string) {
	t.Helper()
	if got == nil {
		t.Fatal("track never arrived")
	}
	if got.trackID != trackID {
		t.Errorf("track id %q, want %q from track_published", got.trackID, trackID)
	}
	sent.mu.Lock()
	defer sent.mu.Unlock()
	for seq, p := range got.payloads {
		want, ok := sent.payloads[seq]
		if !ok {
			t.Errorf("received seq %d that was never sent", seq)
			continue
		}
		if string(p) != string(want) {
			t.Errorf("seq %d: payload changed in transit (%d bytes, sent %d)", seq, len(p), len(want))
		}
	}
	expected := int(sent.last-got.first) + 1
	if ratio := float64(len(got.payloads)) / float64(expected); ratio < 0.99 {
		t.Errorf("received %d of the %d packets after the first (%.1f%%), want at least 99%%", len(got.payloads), expected, 100*ratio)
	}
	if expected < 150 {
		t.Errorf("the first packet arrived late: only %d of 300 packets could be counted", expected)
	}
}

// mostlyEqual reports whether most of a's payloads stand in b at the same
// sequence number.
func mostlyEqual(a, b map[uint16][]byte) bool {
	n := 0
	for seq, p := range a {
		if q, ok := b[seq]; ok && string(p) == string(q) {
			n++
		}
	}
	return n > len(a)/2
}
