package media

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/webrtc/v4"
)

// BenchmarkForward: one publisher packet in, written to N down tracks
// through a discarding writer; per input packet, and per delivered packet
// (ns/delivery). With tap, the payload is also copied to a tap (the
// audience mix's input).
func BenchmarkForward(b *testing.B) {
	for _, c := range []struct {
		subs int
		tap  bool
	}{{1, false}, {10, false}, {50, false}, {10, true}} {
		subs := c.subs
		name := fmt.Sprintf("subs=%d", subs)
		if c.tap {
			name += ",tap"
		}
		b.Run(name, func(b *testing.B) {
			f := newForwardFixture(b, subs, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
			if c.tap {
				f.up.AddTap(&copyTap{})
			}
			raw := inPacket(b, testInSSRC, 0, 0)
			seq, ts := uint16(0), uint32(0)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				pkt := bufpool.Get()
				buf := pkt.Buf()
				n := copy(buf, raw)
				binary.BigEndian.PutUint16(buf[2:], seq)
				binary.BigEndian.PutUint32(buf[4:], ts)
				seq, ts = seq+1, ts+testFrameTS
				f.forward(pkt, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/delivery")
		})
	}
}
