package media

import "testing"

// TestMunger drives one subscriber's numbering through a sequence of
// publisher packets and checks each output sequence number and timestamp.
func TestMunger(t *testing.T) {
	const ms = int64(1e6)
	type pkt struct {
		ssrc    uint32
		seq     uint16
		ts      uint32
		at      int64 // ns
		fail    bool  // the write fails: not recorded as sent
		wantSeq uint16
		wantTS  uint32
	}
	tests := []struct {
		name string
		pkts []pkt
	}{
		{name: "continuous stream passes through", pkts: []pkt{
			{ssrc: 1, seq: 100, ts: 4800, at: 0, wantSeq: 100, wantTS: 4800},
			{ssrc: 1, seq: 101, ts: 5280, at: 10 * ms, wantSeq: 101, wantTS: 5280},
			{ssrc: 1, seq: 102, ts: 5760, at: 20 * ms, wantSeq: 102, wantTS: 5760},
		}},
		{name: "sequence and timestamp wrap around", pkts: []pkt{
			{ssrc: 1, seq: 0xfffe, ts: 0xfffffe20, at: 0, wantSeq: 0xfffe, wantTS: 0xfffffe20},
			{ssrc: 1, seq: 0xffff, ts: 0x00000000, at: 10 * ms, wantSeq: 0xffff, wantTS: 0},
			{ssrc: 1, seq: 0, ts: 480, at: 20 * ms, wantSeq: 0, wantTS: 480},
		}},
		{name: "short gap shows as loss", pkts: []pkt{
			{ssrc: 1, seq: 10, ts: 0, at: 0, wantSeq: 10, wantTS: 0},
			{ssrc: 1, seq: 13, ts: 1440, at: 30 * ms, wantSeq: 13, wantTS: 1440},
		}},
		{name: "pause with a gap is rebased", pkts: []pkt{
			{ssrc: 1, seq: 10, ts: 0, at: 0, wantSeq: 10, wantTS: 0},
			{ssrc: 1, seq: 60, ts: 48000, at: 1000 * ms, wantSeq: 11, wantTS: 48000},
			{ssrc: 1, seq: 61, ts: 48480, at: 1010 * ms, wantSeq: 12, wantTS: 48480},
		}},
		{name: "pause rebased across wrap-around", pkts: []pkt{
			{ssrc: 1, seq: 0xfff0, ts: 0, at: 0, wantSeq: 0xfff0, wantTS: 0},
			{ssrc: 1, seq: 0x0100, ts: 96000, at: 2000 * ms, wantSeq: 0xfff1, wantTS: 96000},
			{ssrc: 1, seq: 0x0101, ts: 96480, at: 2010 * ms, wantSeq: 0xfff2, wantTS: 96480},
		}},
		{name: "late packet after a pause is kept, not rebased", pkts: []pkt{
			{ssrc: 1, seq: 10, ts: 0, at: 0, wantSeq: 10, wantTS: 0},
			{ssrc: 1, seq: 9, ts: 0, at: 500 * ms, wantSeq: 9, wantTS: 0},
		}},
		{name: "new SSRC continues the numbering and the clock", pkts: []pkt{
			{ssrc: 1, seq: 500, ts: 9600, at: 0, wantSeq: 500, wantTS: 9600},
			// 100 ms later: +4800 ticks.
			{ssrc: 2, seq: 7, ts: 123456, at: 100 * ms, wantSeq: 501, wantTS: 9600 + 4800},
			{ssrc: 2, seq: 8, ts: 123936, at: 110 * ms, wantSeq: 502, wantTS: 9600 + 4800 + 480},
		}},
		{name: "new SSRC at once advances at least one frame", pkts: []pkt{
			{ssrc: 1, seq: 500, ts: 9600, at: 0, wantSeq: 500, wantTS: 9600},
			{ssrc: 2, seq: 0xffff, ts: 0xffffffff, at: 0, wantSeq: 501, wantTS: 9600 + minFrameTicks},
			{ssrc: 2, seq: 0, ts: 479, at: 10 * ms, wantSeq: 502, wantTS: 9600 + minFrameTicks + 480},
		}},
		{name: "failed write leaves a visible gap", pkts: []pkt{
			{ssrc: 1, seq: 10, ts: 0, at: 0, wantSeq: 10, wantTS: 0},
			{ssrc: 1, seq: 11, ts: 480, at: 10 * ms, fail: true, wantSeq: 11, wantTS: 480},
			{ssrc: 1, seq: 12, ts: 960, at: 20 * ms, wantSeq: 12, wantTS: 960},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m munger
			for i, p := range tt.pkts {
				f := rtpFields{ssrc: p.ssrc, seq: p.seq, ts: p.ts}
				seq, ts := m.next(&f, p.at)
				if seq != p.wantSeq || ts != p.wantTS {
					t.Errorf("packet %d (ssrc %d seq %d ts %d): out seq %d ts %d, want %d %d",
						i, p.ssrc, p.seq, p.ts, seq, ts, p.wantSeq, p.wantTS)
				}
				if !p.fail {
					m.sent(seq, ts, p.at)
				}
				// A retransmission finds the publisher's packet again.
				if in := m.inSeq(seq); in != p.seq {
					t.Errorf("packet %d: inSeq(%d) = %d, want %d", i, seq, in, p.seq)
				}
				if out := m.outTS(p.ts); out != ts {
					t.Errorf("packet %d: outTS(%d) = %d, want %d", i, p.ts, out, ts)
				}
			}
		})
	}
}
