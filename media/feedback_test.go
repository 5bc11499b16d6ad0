package media

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/goleak"

	"github.com/lianmai/relay/bufpool"
)

// rtcpRecorder is an RTCPWriter keeping what it is given.
type rtcpRecorder struct {
	mu    sync.Mutex
	batch [][]rtcp.Packet
}

func (r *rtcpRecorder) WriteRTCP(pkts []rtcp.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = append(r.batch, pkts)
	return nil
}

// TestFeedbackSend: one tick's RTCP for a track: a NACK naming what is
// missing, a receiver report only when due (first in the compound
// packet), nothing when neither; no NACK to a publisher that did not
// negotiate it.
func TestFeedbackSend(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	const reportEvery = time.Second
	fb := NewFeedback(20*time.Millisecond, reportEvery, m)
	t0 := int64(1000) * msNS
	tests := []struct {
		name       string
		nack       bool
		skip       []uint16
		sinceRR    int64
		wantNACK   []uint16
		wantReport bool
	}{
		{"nothing due", true, nil, 100 * msNS, nil, false},
		{"a NACK", true, []uint16{3, 7}, 100 * msNS, []uint16{3, 7}, false},
		{"a report", true, nil, reportEvery.Nanoseconds(), nil, true},
		{"both", true, []uint16{5}, reportEvery.Nanoseconds(), []uint16{5}, true},
		{"no NACK negotiated", false, []uint16{5}, 100 * msNS, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &rtcpRecorder{}
			up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", Metrics: m, Feedback: fb, RTCP: rec, NACK: tt.nack})
			feed(up.rx, 0xbeef, inOrder(0, 20, t0, tt.skip...))
			now := t0 + 200*msNS
			up.lastReport = now - tt.sinceRR
			before := counterValue(t, m.NACKsSent)
			fb.send(up, now, make([]uint16, 0, lossWindow))
			var gotNACK []uint16
			gotReport := false
			for i, b := range rec.batch {
				for j, p := range b {
					switch p := p.(type) {
					case *rtcp.TransportLayerNack:
						if p.MediaSSRC != 0xbeef {
							t.Errorf("NACK for SSRC %#x, want 0xbeef", p.MediaSSRC)
						}
						for _, pair := range p.Nacks {
							gotNACK = append(gotNACK, pair.PacketList()...)
						}
					case *rtcp.ReceiverReport:
						gotReport = true
						if i != 0 || j != 0 {
							t.Errorf("receiver report at %d/%d, want first", i, j)
						}
						if len(p.Reports) != 1 || p.Reports[0].SSRC != 0xbeef {
							t.Errorf("report %+v, want one block for 0xbeef", p)
						}
					default:
						t.Errorf("unexpected %T", p)
					}
				}
			}
			if !slices.Equal(gotNACK, tt.wantNACK) || gotReport != tt.wantReport {
				t.Errorf("sent NACK %v report %v, want %v %v", gotNACK, gotReport, tt.wantNACK, tt.wantReport)
			}
			if got := counterValue(t, m.NACKsSent) - before; got != float64(len(tt.wantNACK)) {
				t.Errorf("relay_nack_sent_total rose by %v, want %d", got, len(tt.wantNACK))
			}
		})
	}
}

// TestFeedbackLoop: the relay-wide loop, fed through UpTrack.Ingest as
// the socket readers feed it. While nothing is missing it does not tick
// (the first report is a second away); a packet that goes missing wakes
// it, and its NACK names that packet; the loop ends when the last track
// leaves.
func TestFeedbackLoop(t *testing.T) {
	defer goleak.VerifyNone(t)
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	fb := NewFeedback(20*time.Millisecond, time.Hour, m) // no report in the test's time
	rec := &rtcpRecorder{}
	up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", Metrics: m, Feedback: fb, RTCP: rec, NACK: true})
	fb.add(up) // as ReadLoop does
	ingest := func(seq uint16) {
		raw := inPacket(t, testInSSRC, seq, uint32(seq)*testFrameTS)
		pkt := bufpool.Get()
		up.Ingest(pkt, copy(pkt.Buf(), raw))
	}
	for seq := range uint16(20) {
		ingest(seq)
	}
	// Ten nackEvery of a complete stream: a ticker would have run ten
	// times; this loop had nothing to do. (Timers fire late, never
	// early, so a loaded machine cannot make this fail.)
	time.Sleep(200 * time.Millisecond)
	if n := fb.passes.Load(); n != 0 {
		t.Errorf("%d ticks ran with nothing missing and no report due, want 0", n)
	}
	ingest(21) // 20 is missing
	deadline := time.Now().Add(10 * time.Second)
	var nacked []uint16
	for len(nacked) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		rec.mu.Lock()
		for _, b := range rec.batch {
			for _, p := range b {
				if n, ok := p.(*rtcp.TransportLayerNack); ok {
					for _, pair := range n.Nacks {
						nacked = append(nacked, pair.PacketList()...)
					}
				}
			}
		}
		rec.mu.Unlock()
	}
	if !slices.Equal(nacked, []uint16{20}) {
		t.Fatalf("NACKed %v, want [20] (within 10 s of the loss)", nacked)
	}
	ingest(20) // the retransmission
	up.end()
	fb.remove(up) // the last track: the loop ends (goleak checks)
}
