//go:build cgo

package mix

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"go.uber.org/goleak"
)

func TestNewBadConfig(t *testing.T) {
	out := func(p *bufpool.Packet, n int) { p.Release() }
	tests := []struct {
		name string
		cfg  Config
		out  func(*bufpool.Packet, int)
		want error
	}{
		{"bitrate too low", Config{Bitrate: 100}, out, ErrBadConfig},
		{"bitrate too high", Config{Bitrate: 1 << 20}, out, ErrBadConfig},
		{"complexity 11", Config{Complexity: 11}, out, ErrBadConfig},
		{"complexity -2", Config{Complexity: -2}, out, ErrBadConfig},
		{"no out", Config{}, nil, ErrNoOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg, tt.out)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("New = %v, %v; want nil, %v", m, err, tt.want)
			}
		})
	}
	if !Available {
		t.Fatal("Available is false in a cgo build")
	}
}

// The steady state of a tick allocates nothing: three inputs fed real
// packets, decoded, mixed, limited, encoded into a pooled packet.
func TestTickZeroAllocs(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault},
		newTone(t, 300, 0.25, 1), newTone(t, 700, 0.2, 2), newTone(t, 1500, 0.15, 3))
	f.sink = nil
	f.m.out = func(p *bufpool.Packet, n int) { p.Release() }
	const n = 64
	seqs := make([][]uint16, len(f.srcs))
	payloads := make([][][]byte, len(f.srcs))
	for i := range f.srcs {
		seqs[i], payloads[i] = f.tone(i).frames(t, n)
	}
	k := 0
	feed := func() {
		for i, in := range f.ins {
			// The same frames again, renumbered so the sequence goes on.
			in.WriteRTP(seqs[i][k%n]+uint16(k/n*n), 0, payloads[i][k%n])
		}
		k++
		f.frame++
		f.m.tick(f.frame)
	}
	for range 200 {
		feed()
	}
	decoded := counterValue(t, f.met.FramesDecoded)
	if allocs := testing.AllocsPerRun(500, feed); allocs != 0 {
		t.Fatalf("a tick with 3 inputs allocates %.1f times, want 0", allocs)
	}
	if got := counterValue(t, f.met.FramesDecoded) - decoded; got < 3*500 {
		t.Fatalf("only %v frames decoded during the measured ticks: the test did not exercise decoding", got)
	}
}

// The output's RTP headers: version 2, PT 111, one SSRC, sequence +1 per
// packet, timestamp +480 per tick of the mixer's clock, marker on the
// first packet and after a gap (skipped ticks, or silence).
func TestOutputRTPContinuity(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault}, newTone(t, 440, 0.2, 9))
	f.steps(t, 10)
	f.frame += 7 // seven ticks skipped (the loop fell behind)
	f.steps(t, 10)
	// The publisher stops: plcTail concealed frames, silenceTail frames of
	// silence, then nothing until it comes back.
	for range 20 {
		f.step(t, func(int) bool { return false })
	}
	f.steps(t, 5)
	pkts := f.sink.pkts
	if want := 10 + 10 + plcTail + silenceTail + 5; len(pkts) != want {
		t.Fatalf("%d packets, want %d", len(pkts), want)
	}
	gapAt := map[int]bool{0: true, 10: true, 20 + plcTail + silenceTail: true}
	for i, p := range pkts {
		if p.Version != 2 || p.PayloadType != PayloadType || p.SSRC != pkts[0].SSRC || p.Padding || p.Extension || len(p.CSRC) != 0 {
			t.Fatalf("packet %d: bad header %+v", i, p.Header)
		}
		if len(p.Payload) == 0 {
			t.Fatalf("packet %d: empty payload", i)
		}
		if p.Marker != gapAt[i] {
			t.Errorf("packet %d: marker %v, want %v", i, p.Marker, gapAt[i])
		}
		if i == 0 {
			continue
		}
		if p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if d := p.Timestamp - pkts[i-1].Timestamp; d%FrameSamples != 0 || (d != FrameSamples) != gapAt[i] {
			t.Errorf("packet %d: timestamp +%d", i, d)
		}
	}
	if d := pkts[10].Timestamp - pkts[9].Timestamp; d != 8*FrameSamples {
		t.Errorf("timestamp across 7 skipped ticks +%d, want %d", d, 8*FrameSamples)
	}
}

// A corrupt payload is counted as a decode error and concealed; the mix
// goes on.
func TestCorruptPayloadConcealed(t *testing.T) {
	f := newFixture(t, Config{Complexity: ComplexityDefault}, newTone(t, 440, 0.2, 9))
	f.steps(t, 5)
	seq, ts, _ := f.tone(0).next(t)
	f.ins[0].WriteRTP(seq, ts, []byte{0xff, 0xff, 0xff}) // code 3, an invalid frame count
	f.frame++
	f.m.tick(f.frame)
	f.steps(t, 5)
	if got := counterValue(t, f.met.DecodeErrors); got != 1 {
		t.Errorf("decode errors = %v, want 1", got)
	}
	if got := counterValue(t, f.met.FramesConcealed); got != 1 {
		t.Errorf("concealed = %v, want 1", got)
	}
	if st := f.ins[0].Stats(); st != (InputStats{Decoded: 10, Concealed: 1}) {
		t.Errorf("input stats %+v, want 10 decoded, 1 concealed", st)
	}
	if len(f.sink.pkts) != 11 {
		t.Errorf("%d packets for 11 ticks", len(f.sink.pkts))
	}
}

func TestInputsAndGauges(t *testing.T) {
	met, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMixer(Config{Metrics: met}, func(p *bufpool.Packet, n int) { p.Release() })
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.AddInput(), m.AddInput()
	if m.Inputs() != 2 || gaugeValue(t, met.Inputs) != 2 {
		t.Fatalf("inputs %d, gauge %v", m.Inputs(), gaugeValue(t, met.Inputs))
	}
	m.RemoveInput(a)
	m.RemoveInput(a) // twice: nothing
	a.WriteRTP(1, 0, []byte{1})
	if m.Inputs() != 1 || gaugeValue(t, met.Inputs) != 1 {
		t.Fatalf("after remove: inputs %d, gauge %v", m.Inputs(), gaugeValue(t, met.Inputs))
	}
	m.Close()
	m.Close()
	if gaugeValue(t, met.Inputs) != 0 {
		t.Fatalf("after close: inputs gauge %v", gaugeValue(t, met.Inputs))
	}
	b.WriteRTP(1, 0, []byte{1})
	b.SetMuted(true)
	late := m.AddInput()
	late.WriteRTP(1, 0, []byte{1})
	if m.Inputs() != 0 || gaugeValue(t, met.Inputs) != 0 {
		t.Fatalf("AddInput after Close counted: inputs %d, gauge %v", m.Inputs(), gaugeValue(t, met.Inputs))
	}
}

// The real ticker: packets arrive while publishers write; Close stops the
// goroutine. Concurrent WriteRTP, SetMuted and RemoveInput during the run
// and during Close are race-free (run with -race). No timing is asserted.
func TestRealTickerLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	var got atomic.Int64
	m, err := New(Config{Complexity: ComplexityDefault}, func(p *bufpool.Packet, n int) {
		got.Add(1)
		p.Release()
	})
	if err != nil {
		t.Fatal(err)
	}
	const pubs = 3
	frames := make([][][]byte, pubs)
	for i := range frames {
		_, frames[i] = newTone(t, 300*float64(i+1), 0.2, 1).frames(t, 50)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ins := make([]*Input, pubs)
	for i := range ins {
		ins[i] = m.AddInput()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(FrameDuration)
			defer tk.Stop()
			for seq := uint16(0); ; seq++ {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				ins[i].WriteRTP(seq, uint32(seq)*FrameSamples, frames[i][int(seq)%len(frames[i])])
				if seq%7 == 0 {
					ins[i].SetMuted(seq%14 == 0)
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d packets from the running mixer in 10 s", got.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.RemoveInput(ins[0]) // while its writer still writes
	time.Sleep(30 * time.Millisecond)
	m.Close() // while the others still write
	m.Close()
	close(stop)
	wg.Wait()
	n := got.Load()
	time.Sleep(30 * time.Millisecond)
	if got.Load() != n {
		t.Fatal("packets after Close")
	}
}
