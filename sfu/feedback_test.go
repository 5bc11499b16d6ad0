package sfu_test

// The relay's own RTCP toward publishers (media/feedback.go): NACKs that
// repair a lossy uplink, receiver reports with the right fields, and one
// relay-wide loop instead of pion's two tickers per pub connection.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// uplink is a publisher's SendInterceptor: it drops one in every `every`
// RTP packets on their first write (a retransmission of the same sequence
// number passes), and keeps the RTCP the publisher sends (sender
// reports) and receives (the relay's NACKs and receiver reports).
type uplink struct {
	every int

	mu      sync.Mutex
	ssrc    uint32
	writes  map[uint16]int // writes per sequence number
	dropped map[uint16]bool
	sent    []uint16 // first writes, in order
	srNTP   map[uint32]bool
	nacked  int // sequence numbers asked for
	rrs     []rtcp.ReceptionReport
	other   int // RTCP packets toward the publisher of another type
}

func newUplink(every int) *uplink {
	return &uplink{every: every, writes: map[uint16]int{}, dropped: map[uint16]bool{}, srNTP: map[uint32]bool{}}
}

func (u *uplink) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &uplinkInterceptor{u: u}, nil
}

type uplinkInterceptor struct {
	interceptor.NoOp
	u *uplink
}

func (i *uplinkInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	u := i.u
	u.mu.Lock()
	u.ssrc = info.SSRC
	u.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		u.mu.Lock()
		u.writes[h.SequenceNumber]++
		first := u.writes[h.SequenceNumber] == 1
		drop := false
		if first {
			u.sent = append(u.sent, h.SequenceNumber)
			// Never the first packets: pion must see the track's first
			// packet to announce it.
			drop = len(u.sent) > 20 && len(u.sent)%u.every == 7 // not the last: a loss NACK sees by a later packet
			u.dropped[h.SequenceNumber] = drop
		}
		u.mu.Unlock()
		if drop {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

func (i *uplinkInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		i.u.mu.Lock()
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				i.u.srNTP[uint32(sr.NTPTime>>16)] = true
			}
		}
		i.u.mu.Unlock()
		return w.Write(pkts, a)
	})
}

func (i *uplinkInterceptor) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil {
			return n, a, err
		}
		pkts, perr := rtcp.Unmarshal(b[:n])
		if perr != nil {
			return n, a, err
		}
		i.u.mu.Lock()
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				for _, pair := range p.Nacks {
					i.u.nacked += len(pair.PacketList())
				}
			case *rtcp.ReceiverReport:
				i.u.rrs = append(i.u.rrs, p.Reports...)
			default:
				i.u.other++
			}
		}
		i.u.mu.Unlock()
		return n, a, err
	})
}

// TestRelayFeedbackRepairsUplink: a publisher whose uplink loses 5% of
// its packets gets the relay's NACKs, retransmits, and a listener hears
// every packet; the relay's receiver reports name the publisher's SSRC,
// the highest sequence number it sent, no more loss than it suffered, and
// the publisher's last sender report (LSR) with a delay under the report
// interval's span.
func TestRelayFeedbackRepairsUplink(t *testing.T) {
	const frames = 300 // 3 s of 10 ms frames
	r, ctx := relaytest.StartChecked(t, relaytest.Options{}, 60*time.Second)
	up := newUplink(20)
	host, pub, aud := hostAndListener(ctx, t, r, client.Config{Room: "fb", Name: "host", Role: protocol.RoleHost, SendInterceptor: up})

	heard := map[uint16]bool{}
	var heardMu sync.Mutex
	readDone := hearTrack(ctx, aud, func(p *rtp.Packet) {
		heardMu.Lock()
		heard[p.SequenceNumber] = true // a first stream keeps the publisher's numbering (media's munger: offset 0)
		heardMu.Unlock()
	})
	sendFrames(ctx, t, pub, frames, nil)
	// Wait for the repairs and one more receiver report (1 s apart).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		heardMu.Lock()
		k := len(heard)
		heardMu.Unlock()
		up.mu.Lock()
		done := k >= len(up.sent) && len(up.rrs) >= 3
		up.mu.Unlock()
		if done {
			break
		}
	}

	up.mu.Lock()
	defer up.mu.Unlock()
	dropped := 0
	for _, d := range up.dropped {
		if d {
			dropped++
		}
	}
	heardMu.Lock()
	var missing []uint16
	// The listener's track starts at its first packet; count from there.
	started := false
	for _, seq := range up.sent {
		if heard[seq] {
			started = true
		} else if started {
			missing = append(missing, seq)
		}
	}
	heardMu.Unlock()
	t.Logf("publisher: %d packets, %d dropped on the uplink, %d sequence numbers NACKed, %d receiver report blocks, %d other RTCP",
		len(up.sent), dropped, up.nacked, len(up.rrs), up.other)
	if dropped < frames/20-2 {
		t.Fatalf("only %d packets dropped: the test lost its point", dropped)
	}
	if up.nacked < dropped {
		t.Errorf("%d sequence numbers NACKed for %d lost, want at least as many", up.nacked, dropped)
	}
	if len(missing) != 0 {
		t.Errorf("the listener misses %d packets after repair: %v", len(missing), missing)
	}
	if len(up.rrs) < 2 {
		t.Fatalf("%d receiver report blocks in %d s, want one a second", len(up.rrs), frames/100)
	}
	last := up.rrs[len(up.rrs)-1]
	hi := up.sent[len(up.sent)-1]
	if last.SSRC != up.ssrc {
		t.Errorf("receiver report for SSRC %#x, want the publisher's %#x", last.SSRC, up.ssrc)
	}
	if uint16(last.LastSequenceNumber) != hi {
		t.Errorf("receiver report's highest sequence number %d (low 16 bits), want the last sent, %d", uint16(last.LastSequenceNumber), hi)
	}
	for _, rr := range up.rrs {
		if int(rr.TotalLost) > dropped {
			t.Errorf("receiver report's cumulative loss %d, more than the %d dropped", rr.TotalLost, dropped)
		}
		if rr.FractionLost > 64 { // 25%, five times the loss
			t.Errorf("receiver report's fraction lost %d/256 with 5%% loss", rr.FractionLost)
		}
	}
	if last.TotalLost != 0 {
		t.Errorf("cumulative loss %d after every loss was repaired, want 0", last.TotalLost)
	}
	if last.LastSenderReport == 0 || !up.srNTP[last.LastSenderReport] {
		t.Errorf("receiver report's LSR %#x is none of the publisher's sender reports", last.LastSenderReport)
	}
	if last.Delay > 10*65536 {
		t.Errorf("DLSR %d/65536 s, more than the 10 s the test lasts", last.Delay)
	}
	_ = host.Close()
	_ = aud.Close()
	<-readDone
}

// goroutinesPerPublisher is what a publishing host's pub connection adds
// to the relay, counted exactly by TestPublisherGoroutines: 17 with
// pion's NACK generator and receiver-report interceptors, 15 without
// (ICE 5, DTLS 2, the mux, SRTP's 2 session readers, pion's undeclared
// media processors 2, the track's reader, its RTCP reader, a context's
// cancel watcher), 14 with the relay's own UDP mux (ICE 4: no goroutine
// of pion's UDP mux per connection, media/udpmux.go).
const goroutinesPerPublisher = 14

// TestPublisherGoroutines: a publisher's pub connection runs none of
// pion's NACK generator and receiver-report goroutines; the relay's one
// feedback loop serves every publisher.
func TestPublisherGoroutines(t *testing.T) {
	const n = 3
	r, ctx := relaytest.StartChecked(t, relaytest.Options{}, 90*time.Second)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	var hosts []*client.Client
	for i := range n {
		asClient(func(context.Context) {
			hosts = append(hosts, r.Dial(ctx, t, client.Config{Room: "pubcost", Name: fmt.Sprintf("h%d", i), Role: protocol.RoleHost}))
		})
	}
	for _, h := range hosts {
		if err := h.SubConnected(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Their sub connections taken over (sfu/takeover.go) before counting:
	// what is counted is the pub connections alone.
	for r.Value(t, "relay_sub_takeovers_total") < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%v of %d sub connections taken over before the deadline", r.Value(t, "relay_sub_takeovers_total"), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	before := settledRelayGoroutines(t)
	sendCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	for _, h := range hosts {
		asClient(func(context.Context) {
			pub, err := h.Publish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			src, err := opusgen.NewSource(1, 1)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = relaytest.SendOpus(sendCtx, pub, src, nil)
			}()
		})
	}
	for range n {
		relaytest.WaitEvent[*protocol.TrackPublished](ctx, t, hosts[0], nil)
	}
	after := settledRelayGoroutines(t)
	total := 0
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			t.Logf("%+d  %s", d, k)
			total += d
		}
	}
	loops := after["github.com/lianmai/relay/media.(*Feedback).loop"]
	// The hosts hear each other: the relay-wide sender-report loop of
	// their sub connections (reports.go) runs too, once for the relay.
	reporters := after["github.com/lianmai/relay/media.(*Reporter).loop"] - before["github.com/lianmai/relay/media.(*Reporter).loop"]
	if reporters > 1 {
		t.Errorf("%d sender-report loops, want at most 1 for the relay", reporters)
	}
	// Each host hears the others, on direct sub connections: the socket
	// readers serve their RTCP, so their down tracks have no RTCP reader
	// (and one would be the sub side's, not the publisher's).
	downs := after["github.com/lianmai/relay/media.(*DownTrack).rtcpLoop"] - before["github.com/lianmai/relay/media.(*DownTrack).rtcpLoop"]
	if downs != 0 {
		t.Errorf("%d down-track RTCP readers added for %d hosts hearing each other on direct sub connections, want none", downs, n)
	}
	t.Logf("%d publishers: %d relay goroutines added, %d of them the feedback loop, %d down tracks' RTCP readers", n, total, loops, downs)
	for _, k := range []string{
		"github.com/pion/interceptor/pkg/nack.(*GeneratorInterceptor).loop",
		"github.com/pion/interceptor/pkg/report.(*ReceiverInterceptor).loop",
	} {
		if after[k] != 0 {
			t.Errorf("%d goroutines %s, want none on pub connections", after[k], k)
		}
	}
	if loops != 1 {
		t.Errorf("%d relay feedback loops for %d publishers, want 1", loops, n)
	}
	if per := float64(total-loops-reporters-downs) / n; per != goroutinesPerPublisher {
		t.Errorf("%.2f relay goroutines per publisher besides the feedback and report loops and the down tracks, want %d", per, goroutinesPerPublisher)
	}
}

// hearTrack reads aud's first track until it ends, handing got every
// packet; the channel closes when the reading stops.
func hearTrack(ctx context.Context, aud *client.Client, got func(*rtp.Packet)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var rt *client.RemoteTrack
		select {
		case rt = <-aud.Tracks():
		case <-ctx.Done():
			return
		}
		for {
			p, _, err := rt.Track.ReadRTP()
			if err != nil {
				return
			}
			got(p)
		}
	}()
	return done
}

// sendFrames publishes n frames of real Opus from pub, paced as a
// microphone; each, if not nil, sees every frame before it is sent.
func sendFrames(ctx context.Context, t *testing.T, pub *client.Publisher, n int, each func(payload []byte, p *rtp.Packet)) {
	t.Helper()
	src, err := opusgen.NewSource(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, stop := context.WithCancel(ctx)
	defer stop()
	i := 0
	err = relaytest.SendOpus(sendCtx, pub, src, func(payload []byte, p *rtp.Packet) error {
		if each != nil {
			each(payload, p)
		}
		if i++; i == n {
			stop()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hostAndListener joins host (cfg) and an audience member to cfg.Room,
// and returns them once the listener's sub connection and the host's pub
// connection are up.
func hostAndListener(ctx context.Context, t *testing.T, r *relaytest.Relay, cfg client.Config) (host *client.Client, pub *client.Publisher, aud *client.Client) {
	t.Helper()
	host = r.Dial(ctx, t, cfg)
	aud = r.Dial(ctx, t, client.Config{Room: cfg.Room, Name: "aud", Role: protocol.RoleAudience})
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
	return host, pub, aud
}
