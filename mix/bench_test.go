//go:build cgo

package mix

import (
	"runtime"
	"testing"

	"github.com/hraban/opus"
	"github.com/lianmai/relay/bufpool"
)

// BenchmarkTick is one mixer tick with every input fed a real Opus frame:
// jitter buffers, decode, sum, limiter, encode, RTP packet. %core is the
// share of one core a mixer takes at 100 ticks a second (from the wall
// time per op); cpu-%core is the same from the thread's CPU time, which
// leaves out the time spent waiting for a core on a loaded machine.
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
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := threadCPU()
			for range b.N {
				tick()
			}
			cpu1, _ := threadCPU()
			b.StopTimer()
			period := float64(FrameDuration.Nanoseconds())
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/period*100, "%core")
			if cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/period*100, "cpu-%core")
			}
		})
	}
}

// BenchmarkOpus is what libopus alone costs per 10 ms frame at the mixer's
// settings, to read BenchmarkTick against: decoding one input frame, and
// encoding one mixed frame (32 kb/s, default complexity, FEC on).
func BenchmarkOpus(b *testing.B) {
	const n = 200
	f := newFixture(b, Config{Complexity: ComplexityDefault}, newVoice(b, 1), newVoice(b, 2), newVoice(b, 3))
	var mixed []int16
	for range n {
		f.step(b, nil)
		mixed = append(mixed, f.m.pcm...)
	}
	v := newVoice(b, 4)
	payloads := make([][]byte, n)
	for i := range payloads {
		_, _, payloads[i] = v.next(b)
	}
	b.Run("decode", func(b *testing.B) {
		dec, err := opus.NewDecoder(SampleRate, 1)
		if err != nil {
			b.Fatal(err)
		}
		pcm := make([]int16, maxFrameSamples)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := dec.Decode(payloads[i%n], pcm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		m, err := newMixer(Config{Complexity: ComplexityDefault}, func(p *bufpool.Packet, _ int) { p.Release() })
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		out := make([]byte, maxPayload)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i % n
			if _, err := m.enc.Encode(mixed[k*FrameSamples:(k+1)*FrameSamples], out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
