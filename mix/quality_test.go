//go:build cgo

package mix

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every tone in, every tone out, at its own level: the limiter is unity
// below its threshold and the sum of these three never reaches it.
func TestMixContainsEveryTone(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault},
		newTone(t, 300, 0.25, 100), newTone(t, 700, 0.20, 40000), newTone(t, 1500, 0.15, 65000))
	f.steps(t, 100)
	if len(f.sink.pkts) != 100 {
		t.Fatalf("%d packets for 100 ticks", len(f.sink.pkts))
	}
	frames := decodeFrames(t, f.sink.pkts)
	// The last 500 ms, in 100 ms windows (whole periods of every tone).
	pcm := join(frames[50:])
	for w := 0; w+4800 <= len(pcm); w += 4800 {
		win := pcm[w : w+4800]
		for i := range f.srcs {
			s := f.tone(i)
			got := amplitude(win, s.freq)
			if d := dB(got / s.amp); math.Abs(d) > 3 {
				t.Errorf("window %d: %.0f Hz at %.4f, want %.4f (%.1f dB off, more than 3)", w/4800, s.freq, got, s.amp, d)
			}
		}
		if off := amplitude(win, 1100); off > 0.01 {
			t.Errorf("window %d: 1100 Hz (no input there) at %.4f", w/4800, off)
		}
	}
	if n := counterValue(t, f.met.FramesLimited); n != 0 {
		t.Errorf("limiter acted on %v frames of a sum below its threshold", n)
	}
	if n := counterValue(t, f.met.FramesDecoded); n != 300 {
		t.Errorf("decoded %v input frames, want 300", n)
	}
}

// A muted publisher leaves the mix at once: of the packets made after
// SetMuted, the first still carries the codec's lookahead of the frame
// before (6.5 ms in libopus), the second (10..20 ms after) has no tone.
func TestMuteLeavesWithinTwoFrames(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault},
		newTone(t, 300, 0.25, 1), newTone(t, 700, 0.20, 2), newTone(t, 1500, 0.15, 3))
	f.steps(t, 60)
	before := len(f.sink.pkts)
	f.ins[1].SetMuted(true)
	f.step(t, nil)
	// The very next frame of the sum, before the encoder, has none of it:
	// no concealment tail.
	if got := amplitude(f.m.pcm, 700); got > 0.002 {
		t.Errorf("700 Hz at %.4f in the first mixed frame after SetMuted, want none", got)
	}
	f.steps(t, 19)
	frames := decodeFrames(t, f.sink.pkts)
	levelBefore := amplitude(join(frames[before-10:before]), 700)
	second := amplitude(frames[before+1], 700)
	t.Logf("700 Hz: %.4f before, %.4f in the 1st frame after mute, %.4f in the 2nd, %.5f 10 frames on",
		levelBefore, amplitude(frames[before], 700), second, amplitude(join(frames[before+10:before+20]), 700))
	if levelBefore < 0.15 {
		t.Fatalf("muted tone at %.4f before the mute, want about 0.20", levelBefore)
	}
	if d := dB(second / levelBefore); d > -26 {
		t.Errorf("muted tone in the 2nd frame after SetMuted is %.1f dB below its level, want at least 26", -d)
	}
	if late := amplitude(join(frames[before+10:before+20]), 700); dB(late/levelBefore) > -40 {
		t.Errorf("muted tone still at %.5f 100 ms later", late)
	}
	for _, i := range []int{0, 2} { // the others stay
		s := f.tone(i)
		if got := amplitude(join(frames[before+10:before+20]), s.freq); math.Abs(dB(got/s.amp)) > 3 {
			t.Errorf("%.0f Hz at %.4f after the other's mute, want %.4f", s.freq, got, s.amp)
		}
	}
	// Unmuting brings it back.
	f.ins[1].SetMuted(false)
	f.steps(t, 30)
	frames = decodeFrames(t, f.sink.pkts)
	if got := amplitude(join(frames[len(frames)-10:]), 700); math.Abs(dB(got/0.2)) > 3 {
		t.Errorf("700 Hz at %.4f after unmute, want 0.20", got)
	}
}

// Three near full-scale inputs: the limiter keeps the sum off full scale
// without clipping (no runs at ±32767) and without wrapping around (the
// three tones stay, level with each other, and little else appears).
// The distortion is measured on the limiter's output, before the encoder:
// 32 kb/s Opus adds its own noise at about -17 dB on these tones, loud or
// quiet, while hard clipping or wrap-around of this sum would put more
// than a third of the energy outside the tones.
func TestLoudInputsNoClipNoWrap(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault},
		newTone(t, 300, 0.9, 1), newTone(t, 700, 0.9, 2), newTone(t, 1500, 0.9, 3))
	var limited []int16
	for range 100 {
		f.step(t, nil)
		limited = append(limited, f.m.pcm...)
	}
	frames := decodeFrames(t, f.sink.pkts)
	pcm := join(frames[30:])
	run, longest, peak := 0, 0, 0
	for _, v := range pcm {
		a := int(v)
		if a < 0 {
			a = -a
		}
		peak = max(peak, a)
		if a >= 32767 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	t.Logf("decoded peak %d (%.2f dBFS), longest full-scale run %d", peak, dB(float64(peak)/32767), longest)
	if longest > 0 {
		t.Errorf("%d samples in a row at full scale: clipping", longest)
	}
	// notTones is the energy outside the three tones, relative to theirs, dB.
	notTones := func(win []int16) (float64, []float64) {
		var tones float64
		levels := make([]float64, 3)
		for i := range f.srcs {
			levels[i] = amplitude(win, f.tone(i).freq)
			tones += levels[i] * levels[i] / 2
		}
		r := rms(win)
		return 10 * math.Log10(max(r*r-tones, 1e-12)/tones), levels
	}
	var rmsAll []float64
	for w := 30 * FrameSamples; w+4800 <= len(limited); w += 4800 {
		if d, _ := notTones(limited[w : w+4800]); d > -25 {
			t.Errorf("limiter output, window at %d: %.1f dB of the energy is not the tones (clipping or wrap-around)", w, d)
		}
	}
	for w := 0; w+4800 <= len(pcm); w += 4800 {
		win := pcm[w : w+4800]
		_, levels := notTones(win)
		lo, hi := min(levels[0], levels[1], levels[2]), max(levels[0], levels[1], levels[2])
		if dB(hi/lo) > 2 {
			t.Errorf("window %d: tone levels %.3f, want level with each other (within 2 dB)", w/4800, levels)
		}
		rmsAll = append(rmsAll, rms(win))
	}
	for i, r := range rmsAll { // the envelope stays level: no inversion, no pumping
		if math.Abs(dB(r/rmsAll[0])) > 1.5 {
			t.Errorf("window %d: RMS %.3f vs %.3f in the first", i, r, rmsAll[0])
		}
	}
	if counterValue(t, f.met.FramesLimited) == 0 {
		t.Error("the limiter never acted on three full-scale inputs")
	}
}

// 5% random loss on one input: every lost frame is recovered (FEC) or
// concealed, and the mix has no gap: frame by frame, its level stays near
// that of the same mix without loss. The lossy input is voice-like (a
// steady sine is the worst case of libopus's concealment: the frame after
// a loss dips by 20 dB even in a plain decoder); the two others are quiet
// tones, so a gap in the voice would show as a drop of more than 15 dB.
func TestLossIsConcealed(t *testing.T) {
	run := func(loss float64) (*fixture, [][]int16, int) {
		f := newFixture(t, Config{Complexity: ComplexityDefault},
			newVoice(t, 11), newTone(t, 700, 0.03, 2), newTone(t, 1500, 0.03, 3))
		f.steps(t, 20)
		rng := rand.New(rand.NewPCG(5, 5))
		lost := 0
		for range 500 {
			f.step(t, func(i int) bool {
				if i == 0 && rng.Float64() < loss {
					lost++
					return false
				}
				return true
			})
		}
		return f, decodeFrames(t, f.sink.pkts), lost
	}
	_, clean, _ := run(0)
	f, lossy, lost := run(0.05)
	fec, concealed := counterValue(t, f.met.FramesFEC), counterValue(t, f.met.FramesConcealed)
	t.Logf("lost %d packets of 500; FEC-recovered %v, concealed %v, dropped as drift %v",
		lost, fec, concealed, counterValue(t, f.met.Dropped(DropDrift)))
	if lost < 10 {
		t.Fatalf("only %d packets lost: the test lost its point", lost)
	}
	if fec+concealed < float64(lost) {
		t.Errorf("%d packets lost but only %v frames recovered or concealed", lost, fec+concealed)
	}
	if fec == 0 {
		t.Error("no frame recovered by FEC, though the publisher sends it")
	}
	if st := f.ins[0].Stats(); float64(st.FEC) != fec || float64(st.Concealed) != concealed {
		t.Errorf("lossy input's stats %+v, want the totals (%v FEC, %v concealed): the others lost nothing", st, fec, concealed)
	}
	// The lossy run plays one frame later after its first loss (the jitter
	// buffer grew): compare each frame with the clean run's frames around it.
	worst := 0.0
	for i := 30; i < len(lossy)-1 && i < len(clean)-1; i++ {
		ref := max(rms(clean[i-1]), rms(clean[i]), rms(clean[i+1]))
		d := dB(rms(lossy[i]) / ref)
		worst = min(worst, d)
		if d < -15 {
			t.Errorf("output frame %d: %.1f dB below the loss-free mix, a gap", i, -d)
		}
	}
	t.Logf("worst frame: %.1f dB against the loss-free mix", worst)
}
