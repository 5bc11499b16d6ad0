//go:build cgo

package mix

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hraban/opus"
	"github.com/lianmai/relay/bufpool"
)

// Available reports whether this build can mix (it was built with cgo and
// libopus).
const Available = true

const (
	// silenceTail is how many frames of silence the mixer still encodes
	// after the last input stopped contributing, so that the encoder's
	// lookahead drains, before it skips ticks.
	silenceTail = 3
	// maxBehind: a run loop this many frames behind its schedule (the
	// process was stopped, the machine overloaded) skips the missed ticks
	// instead of running them back to back.
	maxBehind = 5
	// maxFrameSamples is the longest Opus packet, 120 ms.
	maxFrameSamples = SampleRate * 120 / 1000
	// lossPercent tells the encoder how much loss to protect against with
	// in-band FEC; 5% costs a few kb/s and recovers single losses.
	lossPercent = 5
)

// Mixer mixes its inputs into one Opus stream; see the package comment.
type Mixer struct {
	out func(pkt *bufpool.Packet, n int) // called from the mixer's goroutine only
	met *Metrics
	log *slog.Logger

	mu     sync.Mutex               // guards closed and the replacement of inputs
	inputs atomic.Pointer[[]*Input] // copy-on-write under mu; each tick loads it once
	closed bool

	quit      chan struct{} // closed by Close; never written
	done      chan struct{} // closed by run when it returns; nil until started
	slot      int           // its phase (phase.go), when started
	closeOnce sync.Once

	// Owned by the goroutine that ticks (run, or a test calling tick).
	enc     *opus.Encoder
	lim     limiter
	acc     []int32 // the sum of one frame, FrameSamples
	pcm     []int16 // the limited frame, FrameSamples
	payload []byte  // the input payload being decoded, maxPayload
	ssrc    uint32
	seq     uint16 // sequence number of the next packet
	ts0     uint32 // RTP timestamp of frame 0
	sent    bool   // a packet went out
	last    uint64 // frame of the last packet sent
	quiet   int    // ticks in a row where no input contributed
}

// Input is one published track feeding a Mixer.
type Input struct {
	m *Mixer

	mu      sync.Mutex    // guards jb, muted, removed
	jb      *jitterBuffer // nil only for an input that never joined a mixer
	muted   bool
	removed bool

	decoded, fec, concealed atomic.Uint64 // for Stats; written by the mixer's goroutine

	// Owned by the mixer's goroutine.
	dec     *opus.Decoder
	pcm     []int16 // decoded samples not yet mixed, from index 0
	pcmLen  int
	lastDur int // samples of the last decoded packet: what a lost one is worth
}

// New starts a mixer; see the package comment for what it emits. out
// receives every mixed packet with one reference (the caller releases
// it), from the mixer's goroutine only. Close stops it.
func New(cfg Config, out func(pkt *bufpool.Packet, n int)) (*Mixer, error) {
	m, err := newMixer(cfg, out)
	if err != nil {
		return nil, err
	}
	m.done = make(chan struct{})
	m.slot = takePhase()
	go m.run(phaseStart(time.Now(), m.slot))
	return m, nil
}

// newMixer makes a mixer that does not tick by itself (tests call tick).
func newMixer(cfg Config, out func(pkt *bufpool.Packet, n int)) (*Mixer, error) {
	if out == nil {
		return nil, ErrNoOutput
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("mix: new Opus encoder: %w", err)
	}
	for _, set := range []struct {
		what string
		err  error
	}{
		{"bitrate", enc.SetBitrate(cfg.Bitrate)},
		{"complexity", enc.SetComplexity(cfg.Complexity)},
		{"in-band FEC", enc.SetInBandFEC(true)},
		{"packet loss", enc.SetPacketLossPerc(lossPercent)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("mix: set the encoder's %s: %w", set.what, set.err)
		}
	}
	m := &Mixer{
		out:     out,
		met:     cfg.Metrics,
		log:     cfg.Logger,
		quit:    make(chan struct{}),
		enc:     enc,
		lim:     newLimiter(),
		acc:     make([]int32, FrameSamples),
		pcm:     make([]int16, FrameSamples),
		payload: make([]byte, maxPayload),
		ssrc:    rand.Uint32(),
		seq:     uint16(rand.Uint32()),
		ts0:     rand.Uint32(),
		quiet:   silenceTail, // nothing to drain before the first input
	}
	m.inputs.Store(new([]*Input))
	return m, nil
}

// run ticks on the absolute schedule start + k×10 ms until Close. A tick
// that starts late is counted and the schedule kept: the next one is due
// at its own time, so lateness never accumulates into drift.
func (m *Mixer) run(start time.Time) {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := uint64(1); ; k++ {
		due := start.Add(time.Duration(k) * FrameDuration)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-m.quit:
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-m.quit:
				return
			default:
			}
		}
		now := time.Now()
		late := now.Sub(due)
		m.met.TickLateness.Observe(late.Seconds())
		if late > LateAfter {
			m.met.TicksLate.Inc()
		}
		if behind := uint64(late / FrameDuration); behind >= maxBehind {
			// Skip the missed ticks; their timestamps stay unused.
			k += behind
			m.met.TicksLate.Add(float64(behind))
		}
		m.tick(k)
		m.met.TickDuration.Observe(time.Since(now).Seconds())
	}
}

// AddInput adds an input, mixed from the next tick on. On a closed mixer
// it returns an input that ignores what it is given.
func (m *Mixer) AddInput() *Input {
	in := &Input{m: m, lastDur: FrameSamples}
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		// Only bad arguments make libopus fail here; keep the relay up.
		m.log.Error("mix: new Opus decoder", "err", err)
		m.met.DecodeErrors.Inc()
		in.removed = true
		return in
	}
	in.dec = dec
	in.pcm = make([]int16, maxFrameSamples+FrameSamples)
	in.jb = newJitterBuffer(m.met)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		in.removed, in.dec = true, nil
		return in
	}
	old := *m.inputs.Load()
	ins := make([]*Input, len(old), len(old)+1)
	copy(ins, old)
	ins = append(ins, in)
	m.inputs.Store(&ins)
	m.met.Inputs.Inc()
	return in
}

// RemoveInput takes in out of the mix: the next tick no longer sees it
// (the tick running now may still play its current frame). Its WriteRTP
// does nothing from now on. Removing an input twice, or another mixer's,
// does nothing.
func (m *Mixer) RemoveInput(in *Input) {
	if in == nil || in.m != m {
		return
	}
	m.mu.Lock()
	old := *m.inputs.Load()
	ins := make([]*Input, 0, len(old))
	for _, o := range old {
		if o != in {
			ins = append(ins, o)
		}
	}
	found := len(ins) < len(old)
	if found {
		m.inputs.Store(&ins)
		m.met.Inputs.Dec()
	}
	m.mu.Unlock()
	// The decoder stays: a tick running now may still use it; the
	// garbage collector frees it with the input.
	in.mu.Lock()
	in.removed = true
	in.mu.Unlock()
}

// Inputs is the number of inputs being mixed.
func (m *Mixer) Inputs() int { return len(*m.inputs.Load()) }

// Close stops the ticker, waits for its goroutine and lets go of the
// decoders, the encoder and the PCM buffers (an input's jitter buffer goes
// with the Input itself). Later calls do nothing. Inputs may still be
// written to during and after Close; they ignore it.
func (m *Mixer) Close() {
	m.closeOnce.Do(func() {
		close(m.quit)
		if m.done != nil {
			<-m.done
			givePhase(m.slot)
		}
		m.mu.Lock()
		m.closed = true
		ins := *m.inputs.Load()
		m.inputs.Store(new([]*Input))
		m.mu.Unlock()
		for _, in := range ins {
			in.mu.Lock()
			in.removed = true
			in.mu.Unlock()
			in.dec, in.pcm = nil, nil // the ticker has stopped: nothing uses them
		}
		m.met.Inputs.Sub(float64(len(ins)))
		m.enc, m.acc, m.pcm, m.payload = nil, nil, nil, nil
	})
}

// InputStats counts what became of one input's frames since AddInput.
type InputStats struct {
	Decoded   uint64 // frames decoded from their own packet
	FEC       uint64 // lost frames recovered from the next packet's FEC
	Concealed uint64 // frames synthesized by packet loss concealment
	Dropped   uint64 // packets the jitter buffer dropped (late, duplicate, overflow, drift, too large)
}

// Stats returns the input's counts; safe from any goroutine, also after
// RemoveInput and Close.
func (in *Input) Stats() InputStats {
	st := InputStats{Decoded: in.decoded.Load(), FEC: in.fec.Load(), Concealed: in.concealed.Load()}
	in.mu.Lock()
	if in.jb != nil {
		st.Dropped = in.jb.dropped
	}
	in.mu.Unlock()
	return st
}

// WriteRTP buffers one packet of the input's track: seq is its RTP
// sequence number, payload its Opus payload without padding (copied; the
// caller keeps it). The jitter buffer orders by seq; ts is not needed for
// 10 ms frames. It takes the input's lock for a copy, never waits for a
// decode, and allocates nothing.
func (in *Input) WriteRTP(seq uint16, ts uint32, payload []byte) {
	_ = ts
	in.mu.Lock()
	if !in.removed && !in.muted {
		in.jb.push(seq, payload)
	}
	in.mu.Unlock()
}

// SetMuted takes the input out of the mix from the next tick on (no
// concealment tail) or puts it back. Packets written while muted are
// dropped; after unmuting, the first packet starts the input afresh.
func (in *Input) SetMuted(muted bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.removed || in.muted == muted {
		return
	}
	in.muted = muted
	if muted {
		in.jb.reset()
	}
}
