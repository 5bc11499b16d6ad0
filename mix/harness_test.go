//go:build cgo

package mix

import (
	"math"
	"testing"

	"github.com/hraban/opus"
	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/pion/rtp"
)

// tone is a publisher sending a steady sine as real 10 ms Opus frames.
type tone struct {
	freq, amp float64 // Hz, fraction of full scale

	enc   *opus.Encoder
	phase float64
	seq   uint16
	ts    uint32
	pcm   []int16
	out   []byte
}

func newTone(tb testing.TB, freq, amp float64, seq uint16) *tone {
	tb.Helper()
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		tb.Fatal(err)
	}
	// As a browser sends: FEC on, so the mixer can recover single losses.
	for _, err := range []error{enc.SetBitrate(48000), enc.SetInBandFEC(true), enc.SetPacketLossPerc(10)} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return &tone{freq: freq, amp: amp, enc: enc, seq: seq, ts: uint32(seq) * 7,
		pcm: make([]int16, FrameSamples), out: make([]byte, 1500)}
}

// next encodes the next 10 ms; the payload is valid until the next call.
func (s *tone) next(tb testing.TB) (seq uint16, ts uint32, payload []byte) {
	tb.Helper()
	for i := range s.pcm {
		s.pcm[i] = int16(math.Round(s.amp * 32767 * math.Sin(s.phase)))
		s.phase += 2 * math.Pi * s.freq / SampleRate
	}
	s.phase = math.Mod(s.phase, 2*math.Pi)
	n, err := s.enc.Encode(s.pcm, s.out)
	if err != nil {
		tb.Fatal(err)
	}
	seq, ts = s.seq, s.ts
	s.seq++
	s.ts += FrameSamples
	return seq, ts, s.out[:n]
}

// frames encodes count frames ahead of time (each payload its own copy).
func (s *tone) frames(tb testing.TB, count int) (seqs []uint16, payloads [][]byte) {
	for range count {
		seq, _, p := s.next(tb)
		seqs = append(seqs, seq)
		payloads = append(payloads, append([]byte(nil), p...))
	}
	return seqs, payloads
}

// source is a publisher: real Opus frames with their RTP numbers.
type source interface {
	next(tb testing.TB) (seq uint16, ts uint32, payload []byte)
}

// voice is a publisher sending opusgen's voice-like signal.
type voice struct {
	src *opusgen.Source
	seq uint16
	ts  uint32
}

func newVoice(tb testing.TB, seed int64) *voice {
	tb.Helper()
	src, err := opusgen.NewSource(seed, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return &voice{src: src, seq: uint16(seed * 1000)}
}

func (v *voice) next(tb testing.TB) (uint16, uint32, []byte) {
	tb.Helper()
	p, err := v.src.NextFrame()
	if err != nil {
		tb.Fatal(err)
	}
	seq, ts := v.seq, v.ts
	v.seq++
	v.ts += FrameSamples
	return seq, ts, p
}

// sink keeps the mixer's packets, parsed, and releases the buffers.
type sink struct {
	pkts []*rtp.Packet
	tb   testing.TB
}

func (s *sink) out(pkt *bufpool.Packet, n int) {
	if n != len(pkt.Bytes()) {
		s.tb.Errorf("out got n=%d for a packet of %d bytes", n, len(pkt.Bytes()))
	}
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), pkt.Bytes()...)); err != nil {
		s.tb.Errorf("mixer emitted a packet pion cannot parse: %v", err)
	}
	pkt.Release()
	s.pkts = append(s.pkts, &p)
}

// decodeFrames decodes every packet from the first on, one 480-sample
// frame each, with one decoder as a listener would.
func decodeFrames(tb testing.TB, pkts []*rtp.Packet) [][]int16 {
	tb.Helper()
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		tb.Fatal(err)
	}
	frames := make([][]int16, 0, len(pkts))
	for i, p := range pkts {
		pcm := make([]int16, maxFrameSamples)
		n, err := dec.Decode(p.Payload, pcm)
		if err != nil {
			tb.Fatalf("packet %d: %v", i, err)
		}
		if n != FrameSamples {
			tb.Fatalf("packet %d decoded to %d samples, want %d", i, n, FrameSamples)
		}
		frames = append(frames, pcm[:n])
	}
	return frames
}

func join(frames [][]int16) []int16 {
	var all []int16
	for _, f := range frames {
		all = append(all, f...)
	}
	return all
}

// amplitude is the amplitude (fraction of full scale) of the component at
// freq in pcm, by the Goertzel algorithm. Pick windows holding a whole
// number of periods of every tone present, so that they do not leak into
// each other.
func amplitude(pcm []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v)/32767 + c*s1 - s2
		s2, s1 = s1, s0
	}
	re := s1 - s2*math.Cos(w)
	im := s2 * math.Sin(w)
	return 2 * math.Hypot(re, im) / float64(len(pcm))
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		x := float64(v) / 32767
		sum += x * x
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

func dB(ratio float64) float64 { return 20 * math.Log10(ratio) }

// fixture is a mixer driven by hand (no goroutine) with one tone per input.
type fixture struct {
	m     *Mixer
	met   *Metrics
	sink  *sink
	srcs  []source
	ins   []*Input
	frame uint64
}

func newFixture(tb testing.TB, cfg Config, srcs ...source) *fixture {
	tb.Helper()
	f := &fixture{sink: &sink{tb: tb}, srcs: srcs}
	if cfg.Metrics == nil {
		var err error
		if cfg.Metrics, err = NewMetrics(nil); err != nil {
			tb.Fatal(err)
		}
	}
	f.met = cfg.Metrics
	m, err := newMixer(cfg, f.sink.out)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	f.m = m
	for range srcs {
		f.ins = append(f.ins, m.AddInput())
	}
	return f
}

// tone returns source i as a tone.
func (f *fixture) tone(i int) *tone { return f.srcs[i].(*tone) }

// step sends one frame from every source whose send returns true (nil: all)
// and ticks once.
func (f *fixture) step(tb testing.TB, send func(i int) bool) {
	for i, s := range f.srcs {
		seq, ts, p := s.next(tb)
		if send == nil || send(i) {
			f.ins[i].WriteRTP(seq, ts, p)
		}
	}
	f.frame++
	f.m.tick(f.frame)
}

func (f *fixture) steps(tb testing.TB, n int) {
	for range n {
		f.step(tb, nil)
	}
}
