package sfu

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// headerLog is a webrtc.TrackLocalWriter that keeps the headers written.
type headerLog struct{ hdrs []rtp.Header }

func (l *headerLog) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	l.hdrs = append(l.hdrs, *h)
	return len(payload), nil
}

func (l *headerLog) Write(b []byte) (int, error) { return len(b), nil }

// TestSlotClock: the first track in a slot keeps its numbering; the next
// continues it (sequence + 1, timestamp at least one frame on), its
// retransmission of an older packet does not move the slot's last
// number, and the player's NACKs map back to the track's numbering.
func TestSlotClock(t *testing.T) {
	var clock slotClock
	out := &headerLog{}
	first := &slotGen{clock: &clock, w: out}
	for i := range 3 {
		h := rtp.Header{SequenceNumber: 100 + uint16(i), Timestamp: 48000 + 480*uint32(i)}
		if _, err := first.WriteRTP(&h, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	second := &slotGen{clock: &clock, w: out}
	for _, seq := range []uint16{60000, 60001, 60000} { // the last one a retransmission
		h := rtp.Header{SequenceNumber: seq, Timestamp: 9_000_000 + 480*uint32(seq-60000)}
		if _, err := second.WriteRTP(&h, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint16
	for _, h := range out.hdrs {
		seqs = append(seqs, h.SequenceNumber)
	}
	want := []uint16{100, 101, 102, 103, 104, 103}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("sequence numbers %v, want %v", seqs, want)
		}
	}
	if gap := out.hdrs[3].Timestamp - out.hdrs[2].Timestamp; gap < minGapTicks || gap > 1<<31 {
		t.Errorf("the second track's timestamps start %d after the first's last, want at least %d", gap, minGapTicks)
	}
	if clock.lastSeq != 104 {
		t.Errorf("last sequence %d after a retransmission, want 104", clock.lastSeq)
	}
	nack := &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 104}}}
	second.rebaseNACKs([]rtcp.Packet{nack})
	if nack.Nacks[0].PacketID != 60001 {
		t.Errorf("NACK for 104 maps to %d, want the track's 60001", nack.Nacks[0].PacketID)
	}
}

// TestSlotGenZeroAllocs holds the slot writer, on every WHEP player's
// packet path, at zero allocations per packet.
func TestSlotGenZeroAllocs(t *testing.T) {
	g := &slotGen{clock: &slotClock{}, w: discardWriter{}}
	h := rtp.Header{SequenceNumber: 1, Timestamp: 480}
	payload := make([]byte, 60)
	if n := testing.AllocsPerRun(1000, func() {
		h.SequenceNumber++
		_, _ = g.WriteRTP(&h, payload)
	}); n != 0 {
		t.Errorf("%v allocations per packet, want 0", n)
	}
}

type discardWriter struct{}

func (discardWriter) WriteRTP(_ *rtp.Header, p []byte) (int, error) { return len(p), nil }
func (discardWriter) Write(b []byte) (int, error)                   { return len(b), nil }

// BenchmarkSlotGenWrite: what the slot writer adds per packet for a WHEP
// player (a lock, the clock, two additions), before pion's SRTP write.
func BenchmarkSlotGenWrite(b *testing.B) {
	b.ReportAllocs()
	g := &slotGen{clock: &slotClock{}, w: discardWriter{}}
	h := rtp.Header{SequenceNumber: 1, Timestamp: 480}
	payload := make([]byte, 60)
	for b.Loop() {
		h.SequenceNumber++
		_, _ = g.WriteRTP(&h, payload)
	}
}
