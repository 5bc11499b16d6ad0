package media

import (
	"fmt"
	"testing"

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
			benchForward(b, f, subs)
		})
	}
}

// benchForward forwards packets through f (subs subscribers) for the
// benchmark's loop and reports the time per delivery.
func benchForward(b *testing.B, f *forwardFixture, subs int) {
	next := packetSource(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(inPacket(b, testInSSRC, 0, 0))))
	for b.Loop() {
		f.forward(next())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/delivery")
}
