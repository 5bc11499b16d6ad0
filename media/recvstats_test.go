package media

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

const msNS = int64(1_000_000) // a millisecond in Now's nanoseconds

// arrival is one packet as a receiveStats test feeds it.
type arrival struct {
	seq uint16
	ts  uint32
	at  int64 // Now's clock, ns
}

// inOrder is n packets of 10 ms Opus from seq 0 (ts 480 apart) arriving
// exactly 10 ms apart from t0, leaving out the sequence numbers in skip.
func inOrder(first uint16, n int, t0 int64, skip ...uint16) []arrival {
	var out []arrival
	for i := range n {
		seq := first + uint16(i)
		if slices.Contains(skip, seq) {
			continue
		}
		out = append(out, arrival{seq: seq, ts: uint32(i) * 480, at: t0 + int64(i)*10*msNS})
	}
	return out
}

func feed(s *receiveStats, ssrc uint32, as []arrival) {
	for _, a := range as {
		s.packet(ssrc, a.seq, a.ts, a.at)
	}
}

// TestReceiveStatsMissing: the sequence numbers the relay NACKs are those
// missing after the last run of consecutive arrivals, over sequence
// number wraps, reordering and duplicates, and never more than lossWindow
// back.
func TestReceiveStatsMissing(t *testing.T) {
	t0 := int64(1000) * msNS
	tests := []struct {
		name string
		in   []arrival
		want []uint16
	}{
		{"none lost", inOrder(100, 50, t0), nil},
		{"two lost", inOrder(100, 50, t0, 110, 120), []uint16{110, 120}},
		{"a burst", inOrder(100, 50, t0, 130, 131, 132), []uint16{130, 131, 132}},
		{"over the wrap", inOrder(65530, 12, t0, 65534, 1), []uint16{65534, 1}},
		{"reordered", append(inOrder(100, 10, t0, 105), arrival{seq: 105, ts: 5 * 480, at: t0 + 95*msNS}), nil},
		{"repaired late", append(inOrder(100, 40, t0, 110, 111), arrival{seq: 111, at: t0 + 400*msNS}), []uint16{110}},
		{"duplicates", append(inOrder(100, 10, t0, 104), arrival{seq: 103}, arrival{seq: 109}), []uint16{104}},
		// A gap longer than the window: only the window's last lossWindow
		// numbers are asked for.
		{"beyond the window", []arrival{{seq: 0}, {seq: lossWindow + 10}}, seqRange(11, lossWindow-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newReceiveStats(48000)
			feed(s, 0x1234, tt.in)
			s.mu.Lock()
			got := s.missingLocked(nil)
			s.mu.Unlock()
			if !slices.Equal(got, tt.want) {
				t.Errorf("missing %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReceiveStatsReport: the receiver report's fields, checked against
// RFC 3550's definitions on streams whose values are known.
func TestReceiveStatsReport(t *testing.T) {
	t0 := int64(5000) * msNS
	const ssrc = 0xcafe
	t.Run("loss, then an interval without", func(t *testing.T) {
		s := newReceiveStats(48000)
		// 100 packets from 65500 (wrapping at 36), 4 lost.
		feed(s, ssrc, inOrder(65500, 100, t0, 65510, 65520, 5, 6))
		s.mu.Lock()
		r := s.reportLocked(t0 + time.Second.Nanoseconds())
		s.mu.Unlock()
		want := rtcp.ReceptionReport{SSRC: ssrc, FractionLost: 4 * 256 / 100, TotalLost: 4,
			LastSequenceNumber: 1<<16 | 63, Jitter: 0} // 65599 after one wrap
		if r != want {
			t.Errorf("first report %+v, want %+v", r, want)
		}
		// 50 more, none lost; 1 of the earlier lost comes back (a
		// retransmission): cumulative loss drops to 3, fraction is 0.
		feed(s, ssrc, inOrder(64, 50, t0+time.Second.Nanoseconds())) // 65600 after the wrap
		s.packet(ssrc, 5, 41*480, t0+1600*msNS)
		s.mu.Lock()
		r = s.reportLocked(t0 + 2*time.Second.Nanoseconds())
		s.mu.Unlock()
		if r.FractionLost != 0 || r.TotalLost != 3 || r.LastSequenceNumber != 1<<16|113 {
			t.Errorf("second report %+v, want fraction 0, total 3, highest %d", r, 1<<16|113)
		}
	})
	t.Run("jitter", func(t *testing.T) {
		s := newReceiveStats(48000)
		// Every other packet 2 ms late: |D| is 96 timestamp units at
		// every packet after the first, so J converges on 96.
		var in []arrival
		for i := range 400 {
			a := arrival{seq: uint16(i), ts: uint32(i) * 480, at: t0 + int64(i)*10*msNS}
			if i%2 == 1 {
				a.at += 2 * msNS
			}
			in = append(in, a)
		}
		feed(s, ssrc, in)
		s.mu.Lock()
		r := s.reportLocked(t0 + 5*time.Second.Nanoseconds())
		s.mu.Unlock()
		if r.Jitter < 94 || r.Jitter > 96 {
			t.Errorf("jitter %d timestamp units, want 96 (2 ms at 48 kHz) within rounding", r.Jitter)
		}
	})
	t.Run("LSR and DLSR", func(t *testing.T) {
		s := newReceiveStats(48000)
		feed(s, ssrc, inOrder(0, 10, t0))
		const ntp = uint64(0x0123456789abcdef)
		s.senderReport(ssrc+1, 0xffff_ffff_ffff_ffff, t0) // another stream's: ignored
		s.senderReport(ssrc, ntp, t0+200*msNS)
		s.mu.Lock()
		r := s.reportLocked(t0 + 700*msNS)
		s.mu.Unlock()
		if r.LastSenderReport != 0x456789ab {
			t.Errorf("LSR %#x, want the middle 32 bits of the NTP time, 0x456789ab", r.LastSenderReport)
		}
		if want := uint32(65536 / 2); r.Delay != want {
			t.Errorf("DLSR %d, want %d (0.5 s in 1/65536 s)", r.Delay, want)
		}
	})
	t.Run("no sender report yet", func(t *testing.T) {
		s := newReceiveStats(48000)
		feed(s, ssrc, inOrder(0, 10, t0))
		s.mu.Lock()
		r := s.reportLocked(t0 + 700*msNS)
		s.mu.Unlock()
		if r.LastSenderReport != 0 || r.Delay != 0 {
			t.Errorf("LSR %d DLSR %d, want 0 0 before any sender report", r.LastSenderReport, r.Delay)
		}
	})
	t.Run("a new SSRC starts over", func(t *testing.T) {
		s := newReceiveStats(48000)
		feed(s, ssrc, inOrder(0, 10, t0, 3))
		feed(s, ssrc+1, inOrder(500, 10, t0+time.Second.Nanoseconds()))
		s.mu.Lock()
		r := s.reportLocked(t0 + 2*time.Second.Nanoseconds())
		missing := s.missingLocked(nil)
		s.mu.Unlock()
		if r.SSRC != ssrc+1 || r.TotalLost != 0 || r.LastSequenceNumber != 509 || len(missing) != 0 {
			t.Errorf("after the SSRC change: report %+v, missing %v; want the new stream's, nothing lost", r, missing)
		}
	})
}
