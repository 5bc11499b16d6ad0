package mix

import (
	"math"
	"testing"
)

// sineSum fills a frame with n full-scale-ish sines summed, as the mixer's
// int32 sum would hold them.
func sineSum(frame []int32, amp float64, n, offset int) {
	for i := range frame {
		var v float64
		for k := 1; k <= n; k++ {
			v += amp * math.Sin(2*math.Pi*float64(100*k)*float64(offset+i)/SampleRate)
		}
		frame[i] = int32(math.Round(v * 32767))
	}
}

func TestLimiterUnityBelowThreshold(t *testing.T) {
	l := newLimiter()
	in := make([]int32, FrameSamples)
	out := make([]int16, FrameSamples)
	sineSum(in, 0.25, 3, 0) // peak < 0.75
	if l.process(in, out) {
		t.Fatal("limiter acted below its threshold")
	}
	for i := range in {
		if int32(out[i]) != in[i] {
			t.Fatalf("sample %d: %d in, %d out; want unchanged", i, in[i], out[i])
		}
	}
}

func TestLimiterNeverClipsOrWraps(t *testing.T) {
	tests := []struct {
		name string
		fill func(frame []int32, k int)
	}{
		{"nine full-scale sines", func(f []int32, k int) { sineSum(f, 1, 9, k*FrameSamples) }},
		{"square wave at 9x full scale", func(f []int32, k int) {
			for i := range f {
				f[i] = 9 * 32767
				if (k*FrameSamples+i)/60%2 == 1 {
					f[i] = -9 * 32768
				}
			}
		}},
		{"a burst out of silence", func(f []int32, k int) {
			clear(f)
			if k >= 5 {
				sineSum(f, 1, 4, k*FrameSamples)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter()
			in := make([]int32, FrameSamples)
			out := make([]int16, FrameSamples)
			ceiling := int16(math.Ceil(ceilingLevel * 32767))
			for k := range 50 {
				tt.fill(in, k)
				l.process(in, out)
				for i, v := range out {
					if v > ceiling || v < -ceiling {
						t.Fatalf("frame %d sample %d: %d beyond the ceiling %d", k, i, v, ceiling)
					}
					if (in[i] > 1000 && v < 0) || (in[i] < -1000 && v > 0) {
						t.Fatalf("frame %d sample %d: %d in, %d out: wrapped around", k, i, in[i], v)
					}
				}
			}
		})
	}
}

// After a loud stretch the gain holds, then comes back to exact unity.
func TestLimiterRecovers(t *testing.T) {
	l := newLimiter()
	in := make([]int32, FrameSamples)
	out := make([]int16, FrameSamples)
	sineSum(in, 1, 3, 0)
	l.process(in, out)
	low := l.gain
	if low >= 0.5 {
		t.Fatalf("gain %.2f after a 3x full-scale frame", low)
	}
	sineSum(in, 0.1, 1, 0)
	for range holdFrames {
		l.process(in, out)
	}
	if l.gain != low {
		t.Fatalf("gain moved to %.3f during the hold", l.gain)
	}
	for range 200 {
		l.process(in, out)
	}
	if l.gain != 1 {
		t.Fatalf("gain %.4f 2 s after the loud frame, want 1", l.gain)
	}
	if l.process(in, out) {
		t.Fatal("limiter still acting once recovered")
	}
}
