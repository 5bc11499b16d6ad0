//go:build cgo

package mix

import (
	"testing"

	"github.com/lianmai/relay/bufpool"
)

// BenchmarkTick is one mixer tick with every input fed a real Opus frame:
// jitter buffers, decode, sum, limiter, encode, RTP packet. %core is the
// share of one core a mixer takes at 100 ticks a second.
func BenchmarkTick(b *testing.B) {
	for _, tt := range []struct {
		name   string
		inputs int
	}{{"inputs=3", 3}, {"inputs=9", 9}} {
		b.Run(tt.name, func(b *testing.B) {
			srcs := make([]source, tt.inputs)
			for i := range srcs {
				srcs[i] = newVoice(b, int64(i+1))
			}
			f := newFixture(b, Config{Complexity: ComplexityDefault}, srcs...)
			f.m.out = func(p *bufpool.Packet, n int) { p.Release() }
			const n = 200 // 2 s of voice, replayed
			seqs := make([][]uint16, len(srcs))
			payloads := make([][][]byte, len(srcs))
			for i, s := range srcs {
				for range n {
					seq, _, p := s.next(b)
					seqs[i] = append(seqs[i], seq)
					payloads[i] = append(payloads[i], p)
				}
			}
			k := 0
			tick := func() {
				for i, in := range f.ins {
					in.WriteRTP(seqs[i][k%n]+uint16(k/n*n), 0, payloads[i][k%n])
				}
				k++
				f.frame++
				f.m.tick(f.frame)
			}
			for range 50 {
				tick()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				tick()
			}
			b.StopTimer()
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/float64(FrameDuration.Nanoseconds())*100, "%core")
		})
	}
}
