package opusgen

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestSourceFramesDecode(t *testing.T) {
	for _, channels := range []int{1, 2} {
		t.Run(map[int]string{1: "mono", 2: "stereo"}[channels], func(t *testing.T) {
			src, err := NewSource(1, channels)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewDecoder(channels)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				frame, err := src.NextFrame()
				if err != nil {
					t.Fatal(err)
				}
				if len(frame) == 0 {
					t.Fatalf("frame %d is empty", i)
				}
				n, err := dec.Decode(frame)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if n != FrameSamples {
					t.Fatalf("frame %d decoded to %d samples, want %d", i, n, FrameSamples)
				}
			}
			if err := dec.Conceal(); err != nil {
				t.Fatalf("conceal: %v", err)
			}
			if _, err := dec.Decode(nil); err == nil {
				t.Fatal("decoding an empty payload succeeded")
			}
		})
	}
}

func TestSeedsDiffer(t *testing.T) {
	a, err := NewSource(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSource(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	same, err := NewSource(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := 0; i < 20; i++ {
		fa, errA := a.NextFrame()
		fb, errB := b.NextFrame()
		fs, errS := same.NextFrame()
		if err := errors.Join(errA, errB, errS); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fa, fb) {
			differ++
		}
		if !bytes.Equal(fa, fs) {
			t.Fatalf("frame %d: two sources with seed 1 differ", i)
		}
	}
	if differ < 18 {
		t.Fatalf("seeds 1 and 2 gave %d different frames out of 20", differ)
	}
}

func TestPacketizer(t *testing.T) {
	p := NewPacketizer(111, 0xdeadbeef)
	payload := []byte{1, 2, 3}
	first := p.Packet(payload)
	if !first.Marker {
		t.Fatal("first packet has no marker")
	}
	if first.Version != 2 || first.PayloadType != 111 || first.SSRC != 0xdeadbeef {
		t.Fatalf("bad header %+v", first.Header)
	}
	prev := first
	for i := 0; i < 70000; i++ { // wraps the sequence number at least once
		pkt := p.Packet(payload)
		if pkt.Marker {
			t.Fatalf("packet %d has the marker", i+1)
		}
		if pkt.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("seq %d after %d", pkt.SequenceNumber, prev.SequenceNumber)
		}
		if pkt.Timestamp != prev.Timestamp+FrameSamples {
			t.Fatalf("timestamp %d after %d", pkt.Timestamp, prev.Timestamp)
		}
		prev = pkt
	}
	raw, err := first.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 12+len(payload) {
		t.Fatalf("marshalled %d bytes", len(raw))
	}
}

func TestPacketizerRandomStart(t *testing.T) {
	a, b := NewPacketizer(111, 1).Packet(nil), NewPacketizer(111, 1).Packet(nil)
	if a.SequenceNumber == b.SequenceNumber && a.Timestamp == b.Timestamp {
		t.Fatal("two packetizers start at the same sequence number and timestamp")
	}
}

func TestLevels(t *testing.T) {
	silent, err := NewSilentSource(1)
	if err != nil {
		t.Fatal(err)
	}
	voice, err := NewSource(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if silent.LastLevel() != 127 || voice.LastLevel() != 127 {
		t.Fatal("level before the first frame is not 127")
	}
	dec, err := NewDecoder(1)
	if err != nil {
		t.Fatal(err)
	}
	maxVoice, sumVoice := uint8(0), 0
	const frames = 100 // 1 s: several syllables
	for i := 0; i < frames; i++ {
		f, err := silent.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		if l := silent.LastLevel(); l != 127 {
			t.Fatalf("silent level %d, want 127", l)
		}
		if _, err := dec.Decode(f); err != nil {
			t.Fatal(err)
		}
		if _, err := voice.NextFrame(); err != nil {
			t.Fatal(err)
		}
		l := voice.LastLevel()
		maxVoice = max(maxVoice, l)
		sumVoice += int(l)
	}
	// The decoder's output for digital silence is near, not exactly, zero.
	if dec.LastLevel() < 90 {
		t.Fatalf("decoded silence has level %d, want >= 90", dec.LastLevel())
	}
	if maxVoice > 60 {
		t.Fatalf("quietest voice frame has level %d, want <= 60", maxVoice)
	}
	if avg := sumVoice / frames; avg > 40 {
		t.Fatalf("average voice level %d, want <= 40", avg)
	}
	t.Logf("voice levels: average %d, quietest %d", sumVoice/frames, maxVoice)
}

func TestLevel(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
		want uint8
	}{
		{"empty", nil, 127},
		{"zeros", make([]int16, 480), 127},
		{"full scale", []int16{32767, -32767}, 0},
		{"-20 dB", []int16{3277, -3277}, 20},
		{"tiny", []int16{1, 0, 0, 0}, 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Level(tt.pcm); got != tt.want {
				t.Fatalf("Level = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBadChannels(t *testing.T) {
	if _, err := NewSource(1, 3); err == nil {
		t.Fatal("NewSource accepted 3 channels")
	}
	if _, err := NewDecoder(0); err == nil {
		t.Fatal("NewDecoder accepted 0 channels")
	}
}

// A tone decodes to its own frequency at its own level, nothing at
// another; SetAmplitude switches it; bad parameters are refused.
func TestTone(t *testing.T) {
	tone, err := NewTone(700, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(1)
	if err != nil {
		t.Fatal(err)
	}
	level := func(freq float64) float64 {
		t.Helper()
		var pcm []int16
		for range 10 { // 100 ms; the level of the last 50 ms
			f, err := tone.NextFrame()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.Decode(f); err != nil {
				t.Fatal(err)
			}
			pcm = append(pcm, dec.Last()...)
		}
		return Amplitude(pcm[len(pcm)/2:], freq)
	}
	if got := level(700); math.Abs(20*math.Log10(got/0.2)) > 2 {
		t.Errorf("700 Hz at %.4f, want 0.2 within 2 dB", got)
	}
	if got := level(1100); got > 0.005 {
		t.Errorf("1100 Hz (no tone there) at %.4f", got)
	}
	if err := tone.SetAmplitude(0); err != nil {
		t.Fatal(err)
	}
	if got := level(700); got > 0.002 {
		t.Errorf("700 Hz at %.4f after SetAmplitude(0)", got)
	}
	for _, bad := range []struct{ freq, amp float64 }{{0, 0.1}, {24000, 0.1}, {700, -0.1}, {700, 1.5}, {700, math.NaN()}} {
		if _, err := NewTone(bad.freq, bad.amp); err == nil {
			t.Errorf("NewTone(%v, %v) accepted", bad.freq, bad.amp)
		}
	}
	if err := tone.SetAmplitude(2); err == nil {
		t.Error("SetAmplitude(2) accepted")
	}
}

func TestAmplitudeEmpty(t *testing.T) {
	if got := Amplitude(nil, 700); got != 0 {
		t.Fatalf("Amplitude of nothing = %v", got)
	}
}
