package loadtest

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// TestUplink drives the uplink interceptor as pion would: the pacer's
// originals in order, then the NACK responder's retransmissions of lost
// ones, and the relay's NACKs on the RTCP side.
func TestUplink(t *testing.T) {
	tests := []struct {
		name     string
		sc       Scenario
		wantLost bool // some originals lost (5%), none otherwise
	}{
		{"network loss", Scenario{LossPct: 5, LossBurst: 1, LossAt: LossNetwork}, true},
		{"sender loss leaves the uplink alone", Scenario{LossPct: 5, LossBurst: 1, LossAt: LossSender}, false},
		{"no loss", Scenario{LossAt: LossNetwork}, false},
	}
	const frames, seq0 = 4000, 65000 // sequence numbers wrap
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &uplink{}
			u.setLoss(uplinkImpairment(tt.sc, 9))
			log := newFrameLog("p", 0, 0, seq0, frames)
			u.setLog(log)
			it, err := u.NewInterceptor("")
			if err != nil {
				t.Fatal(err)
			}
			var wire []uint16 // sequence numbers that reached the wire
			w := it.BindLocalStream(&interceptor.StreamInfo{}, interceptor.RTPWriterFunc(
				func(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
					wire = append(wire, h.SequenceNumber)
					return 0, nil
				}))
			write := func(seq uint16) {
				if _, err := w.Write(&rtp.Header{SequenceNumber: seq}, []byte{1}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for k := 0; k < frames; k++ {
				write(uint16(seq0 + k))
			}
			if got := u.originals.Load(); got != frames {
				t.Fatalf("%d originals, want %d", got, frames)
			}
			lost := u.lost.Load()
			if uint64(len(wire)) != frames-lost {
				t.Fatalf("%d on the wire, %d lost, of %d", len(wire), lost, frames)
			}
			if !tt.wantLost {
				if lost != 0 {
					t.Fatalf("%d lost, want none", lost)
				}
				return
			}
			if pct := float64(lost) / frames * 100; pct < 4 || pct > 6 {
				t.Fatalf("lost %.2f%%, want about 5%%", pct)
			}
			// Every frame missing from the wire is marked lost in the frame
			// log, and no other.
			onWire := map[uint16]bool{}
			for _, s := range wire {
				onWire[s] = true
			}
			for k := int64(0); k < frames; k++ {
				if got, want := log.uplinkLost(k), !onWire[uint16(seq0+k)]; got != want {
					t.Fatalf("frame %d: marked lost %v, lost %v", k, got, want)
				}
			}
			// The responder resends the lost ones: retransmissions, not
			// originals, and lost again at the same rate.
			for k := int64(0); k < frames; k++ {
				if log.uplinkLost(k) {
					write(uint16(seq0 + k))
				}
			}
			if u.originals.Load() != frames || u.resent.Load() != lost {
				t.Fatalf("after retransmitting: %d originals, %d retransmissions, want %d and %d",
					u.originals.Load(), u.resent.Load(), frames, lost)
			}
			if u.resentLost.Load() > lost/2 {
				t.Fatalf("%d of %d retransmissions lost", u.resentLost.Load(), lost)
			}

			// NACKs are counted by the sequence numbers they ask for.
			raw, err := rtcp.Marshal([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1,
				Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{10, 12, 13, 40})}})
			if err != nil {
				t.Fatal(err)
			}
			r := it.BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
				return copy(b, raw), a, nil
			}))
			if _, _, err := r.Read(make([]byte, 1500), nil); err != nil {
				t.Fatal(err)
			}
			if u.nackedPackets.Load() != 1 || u.nackedSeqs.Load() != 4 {
				t.Fatalf("%d NACKs for %d packets, want 1 for 4", u.nackedPackets.Load(), u.nackedSeqs.Load())
			}
		})
	}
}

// TestRepairedAccounting: a frame lost on the uplink that arrives anyway
// counts as repaired, with its latency; it is late if the repair took
// longer than the playout deadline.
func TestRepairedAccounting(t *testing.T) {
	log := newFrameLog("p_pub", 0, testTS0, testSeq0, 100)
	for k := int64(0); k < 10; k++ {
		log.stamp(k, sentAt(k), false)
	}
	log.markUplinkLost(3)
	log.markUplinkLost(6)
	var live liveCounters
	st := newStreamStats(log, newWindow(0, sentAt(9)), newWindow(0, never), 0, nil, &live)
	for k := int64(0); k < 10; k++ {
		at := sentAt(k) + 2*ms
		switch k {
		case 3:
			at = sentAt(k) + 25*ms // repaired in time
		case 6:
			at = sentAt(k) + 90*ms // repaired late
		}
		st.onPacket(at, rtpPacket(k))
	}
	res := st.finish()
	if st.repaired != 2 || st.repair.Count() != 2 || st.repair.Max() != 90*ms {
		t.Fatalf("repaired %d, latencies %+v", st.repaired, st.repair.Dist())
	}
	if res.lost != 0 || res.stutter != 1 || st.late != 1 {
		t.Fatalf("result %+v, late %d: want nothing lost, frame 6 late", res, st.late)
	}
}
