package opusgen

import (
	"fmt"
	"math"

	"github.com/hraban/opus"
)

// Tone is a steady sine encoded as 10 ms mono Opus frames at 48 kHz, for
// tests that look for a publisher in a mix by its frequency (Goertzel) and
// for latency measurements (SetAmplitude switches it on and off at a frame
// boundary). It encodes as a browser sends: 48 kb/s, in-band FEC on,
// expecting 10% loss, so that a receiver can recover single losses.
//
// A Tone is not safe for concurrent use.
type Tone struct {
	enc   *opus.Encoder
	freq  float64 // Hz
	amp   float64 // peak, fraction of full scale
	phase float64 // radians
	pcm   []int16 // one frame; reused
	out   []byte  // encoder output; reused, copied out
}

// NewTone returns a tone of freq Hz (0 < freq < 24000) and peak amplitude
// amp (0..1 of full scale; 0 sends silence until SetAmplitude).
func NewTone(freq, amp float64) (*Tone, error) {
	if freq <= 0 || freq >= SampleRate/2 {
		return nil, fmt.Errorf("opusgen: tone frequency %v Hz is outside (0, %d)", freq, SampleRate/2)
	}
	if err := checkAmplitude(amp); err != nil {
		return nil, err
	}
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opusgen: new encoder: %w", err)
	}
	for _, set := range []struct {
		what string
		err  error
	}{
		{"bitrate", enc.SetBitrate(48000)},
		{"in-band FEC", enc.SetInBandFEC(true)},
		{"packet loss", enc.SetPacketLossPerc(10)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("opusgen: set the tone encoder's %s: %w", set.what, set.err)
		}
	}
	return &Tone{enc: enc, freq: freq, amp: amp, pcm: make([]int16, FrameSamples), out: make([]byte, maxPacket)}, nil
}

func checkAmplitude(amp float64) error {
	if amp < 0 || amp > 1 || math.IsNaN(amp) {
		return fmt.Errorf("opusgen: tone amplitude %v is outside 0..1 (a fraction of full scale)", amp)
	}
	return nil
}

// Freq is the tone's frequency in Hz.
func (t *Tone) Freq() float64 { return t.freq }

// Amplitude is the tone's peak amplitude, a fraction of full scale.
func (t *Tone) Amplitude() float64 { return t.amp }

// SetAmplitude changes the amplitude from the next frame on (0: silence);
// the phase runs on, so the sine continues where it was.
func (t *Tone) SetAmplitude(amp float64) error {
	if err := checkAmplitude(amp); err != nil {
		return err
	}
	t.amp = amp
	return nil
}

// NextFrame synthesizes the next 10 ms and returns it as one Opus payload,
// new on every call and the caller's.
func (t *Tone) NextFrame() ([]byte, error) {
	step := 2 * math.Pi * t.freq / SampleRate
	for i := range t.pcm {
		t.pcm[i] = int16(math.Round(t.amp * math.MaxInt16 * math.Sin(t.phase)))
		t.phase += step
	}
	t.phase = math.Mod(t.phase, 2*math.Pi)
	n, err := t.enc.Encode(t.pcm, t.out)
	if err != nil {
		return nil, fmt.Errorf("opusgen: encode: %w", err)
	}
	return append([]byte(nil), t.out[:n]...), nil
}

// Amplitude at freq in mono pcm (48 kHz), as a fraction of full scale, by
// the Goertzel algorithm: what a receiver measures to find a Tone. Pick
// windows holding a whole number of periods of every tone present (10 ms
// holds whole periods of any multiple of 100 Hz), so that tones do not
// leak into each other.
func Amplitude(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v)/math.MaxInt16 + c*s1 - s2
		s2, s1 = s1, s0
	}
	re := s1 - s2*math.Cos(w)
	im := s2 * math.Sin(w)
	return 2 * math.Hypot(re, im) / float64(len(pcm))
}
