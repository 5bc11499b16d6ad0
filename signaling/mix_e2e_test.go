package signaling_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// The audience mix end to end with the REAL mixer (relaytest.Options.Mix:
// server.LibopusMixer, as the relay binary runs it): real pion peers,
// publishers sending steady tones as real Opus, a mix listener decoding
// what it receives and finding each publisher by its frequency (Goertzel
// on every 10 ms frame; 300 and 700 Hz both hold whole periods in 10 ms,
// so they do not leak into each other's measure).

const (
	hostFreq, hostAmp   = 300.0, 0.20
	guestFreq, guestAmp = 700.0, 0.15
	offFreq             = 1100.0 // no publisher there
	// levelTolerance is how far (dB) a tone in the mix may be from the
	// level it was sent at: the mixer's limiter is unity below its
	// threshold and these two sum far below it; what is left is the two
	// Opus encodes (publisher, mix at 32 kb/s).
	levelTolerance = 3.0
	// goneBelow is a tone that left the mix: this many dB under its level
	// over a window.
	goneBelow = 30.0
	// heardAbove is a tone still heard in one frame: within this many dB
	// of its level. A single 10 ms frame next to a concealed one (the
	// host's input late on a loaded machine) shows spectral splatter of
	// the other tone up to about 25 dB under it, never a tone.
	heardAbove = 10.0
	// muteFrames: a muted or released publisher's tone is gone from this
	// many frames after the relay's reply on: the reply follows the
	// mixer's input change, so only packets already in flight on
	// loopback, and the codecs' lookahead (6.5 ms at each encode) carry
	// it on.
	muteFrames = 5
	// window is the frames a level is measured over (300 ms).
	window = 30
)

// publishTone sends a steady tone from c, paced at 10 ms, until the test
// ends; what was sent is recorded as it goes.
func publishTone(ctx context.Context, t *testing.T, c *client.Client, freq, amp float64) *sentStream {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("%s publishes: %v", c.ID(), err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatalf("%s pub connected: %v", c.ID(), err)
	}
	tone, err := opusgen.NewTone(freq, amp)
	if err != nil {
		t.Fatal(err)
	}
	s := &sentStream{payloads: make(map[uint16][]byte)}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pk := opusgen.NewPacketizer(111, rand.Uint32())
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			frame, err := tone.NextFrame()
			if err != nil {
				t.Errorf("%s: %v", c.ID(), err)
				return
			}
			pkt := pk.Packet(frame)
			s.record(pkt.SequenceNumber, frame)
			if err := pub.WriteRTP(pkt); err != nil {
				return // the connection went
			}
			select {
			case <-tick.C:
			case <-pctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// mixEar is a mix listener that decodes the mix as it arrives, frame by
// frame (a missing sequence number concealed, as a player would).
type mixEar struct {
	mu      sync.Mutex
	streams []string  // stream id of every track received
	trackID string    // the first track's id
	frames  [][]int16 // decoded 10 ms frames, in order
	gaps    int       // sequence numbers missing in what arrived
	err     error     // a decode error, which ends the reading
}

// listenMix starts decoding c's tracks; the reader ends with its track.
func listenMix(ctx context.Context, t *testing.T, c *client.Client) *mixEar {
	t.Helper()
	e := &mixEar{}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case rt := <-c.Tracks():
				e.mu.Lock()
				e.streams = append(e.streams, rt.StreamID)
				first := len(e.streams) == 1
				if first {
					e.trackID = rt.TrackID
				}
				e.mu.Unlock()
				if first {
					wg.Add(1)
					go func() { defer wg.Done(); e.decode(rt) }()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); _ = c.Close(); wg.Wait() })
	return e
}

func (e *mixEar) decode(rt *client.RemoteTrack) {
	dec, err := opusgen.NewDecoder(1)
	if err != nil {
		e.fail(err)
		return
	}
	var last uint16
	started := false
	for {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return
		}
		if len(pkt.Payload) == 0 {
			continue // padding
		}
		if d := int16(pkt.SequenceNumber - last); started && d <= 0 {
			continue // duplicate or reordered late: a player would drop it
		} else if started && d > 1 {
			e.mu.Lock()
			e.gaps += int(d - 1)
			e.mu.Unlock()
			for range min(int(d-1), 5) {
				if err := dec.Conceal(); err != nil {
					e.fail(err)
					return
				}
				e.add(dec.Last())
			}
		}
		started, last = true, pkt.SequenceNumber
		if _, err := dec.Decode(pkt.Payload); err != nil {
			e.fail(err)
			return
		}
		e.add(dec.Last())
	}
}

func (e *mixEar) add(pcm []int16) {
	f := append([]int16(nil), pcm...)
	e.mu.Lock()
	e.frames = append(e.frames, f)
	e.mu.Unlock()
}

func (e *mixEar) fail(err error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
}

// count is the number of frames decoded so far.
func (e *mixEar) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.frames)
}

// span returns frames [from, to).
func (e *mixEar) span(from, to int) [][]int16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]int16(nil), e.frames[from:to]...)
}

// waitFrames waits until n frames have been decoded.
func (e *mixEar) waitFrames(ctx context.Context, t *testing.T, n int, what string) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%d decoded frames of the mix (%s)", n, what), func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.err != nil {
			t.Fatalf("decoding the mix: %v", e.err)
		}
		return len(e.frames) >= n
	})
}

// level is the amplitude at freq over frames, joined.
func level(frames [][]int16, freq float64) float64 {
	var pcm []int16
	for _, f := range frames {
		pcm = append(pcm, f...)
	}
	return opusgen.Amplitude(pcm, freq)
}

func dB(ratio float64) float64 { return 20 * math.Log10(max(ratio, 1e-9)) }

// levels describes the tones in frames, for failure messages.
func levels(frames [][]int16) string {
	return fmt.Sprintf("%v Hz %.4f (sent %.2f), %v Hz %.4f (sent %.2f), %v Hz %.4f (none sent)",
		hostFreq, level(frames, hostFreq), hostAmp, guestFreq, level(frames, guestFreq), guestAmp, offFreq, level(frames, offFreq))
}

// bothTones reports whether frames hold both tones at their levels.
func bothTones(frames [][]int16) bool {
	return math.Abs(dB(level(frames, hostFreq)/hostAmp)) <= levelTolerance &&
		math.Abs(dB(level(frames, guestFreq)/guestAmp)) <= levelTolerance &&
		level(frames, offFreq) < 0.01
}

// waitBoth waits until the last window of the mix holds both tones, each
// at its level; it fails with the levels it last measured if they never
// are.
func (e *mixEar) waitBoth(ctx context.Context, t *testing.T, what string) {
	t.Helper()
	e.waitFrames(ctx, t, window, what)
	deadline, _ := ctx.Deadline()
	wait := time.Until(deadline) / 2 // half the test's time, leaving the rest for its failure
	end := time.Now().Add(wait)
	for {
		n := e.count()
		frames := e.span(n-window, n)
		if bothTones(frames) {
			t.Logf("%s: %s", what, levels(frames))
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v; the last %d frames: %s", what, wait.Round(time.Second), window, levels(frames))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkGone checks that the guest's tone left the mix within muteFrames
// of frame at (the frame count when the relay replied) while the host's
// stayed, over the window that follows.
func (e *mixEar) checkGone(ctx context.Context, t *testing.T, at int, what string) {
	t.Helper()
	e.waitFrames(ctx, t, at+muteFrames+window, what)
	frames := e.span(at, at+muteFrames+window)
	first := -1
	for i, f := range frames {
		if dB(opusgen.Amplitude(f, guestFreq)/guestAmp) < -heardAbove {
			if first < 0 {
				first = i
			}
		} else {
			first = -1
		}
	}
	t.Logf("%s: the guest's tone is no longer heard from frame %d after the reply on (of %d looked at)", what, first, len(frames))
	for i, f := range frames[muteFrames:] {
		if got := opusgen.Amplitude(f, guestFreq); dB(got/guestAmp) >= -heardAbove {
			t.Errorf("%s: frame %d after the reply still has the guest's tone at %.4f (%.1f dB under its level)",
				what, muteFrames+i, got, -dB(got/guestAmp))
		}
	}
	after := frames[muteFrames:]
	if got := level(after, guestFreq); dB(got/guestAmp) >= -goneBelow {
		t.Errorf("%s: the guest's tone at %.5f over the %d frames from frame %d after the reply (%.1f dB under its level), want gone (%v dB under)",
			what, got, len(after), muteFrames, -dB(got/guestAmp), goneBelow)
	}
	// The host's tone stays: in most of those frames, not on average, so
	// that a few frames the jitter buffer had to conceal (the host's
	// packets late on a starved machine: once under two race suites at
	// once) do not count as the mute taking the wrong input out.
	held := 0
	for _, f := range after {
		if math.Abs(dB(opusgen.Amplitude(f, hostFreq)/hostAmp)) <= levelTolerance {
			held++
		}
	}
	if held*2 < len(after) {
		t.Errorf("%s: the host's tone at its level in %d of the %d frames afterwards (%.4f over them all), want most (%.2f within %v dB)",
			what, held, len(after), level(after, hostFreq), hostAmp, levelTolerance)
	}
}

// TestMixEndToEnd: an audience member on the mix receives exactly one
// track (stream id mix, the track announced for participant mix), and
// its decoded audio holds the host's and the guest's tones, each at the
// level it was sent at; the host mutes the guest and its tone leaves the
// mix within a few frames while the host's stays; unmuted it comes back;
// taken off the mic it leaves again.
func TestMixEndToEnd(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Mix: true})
	host := r.join(ctx, t, "e2e", "Host", protocol.RoleHost)
	guest := r.join(ctx, t, "e2e", "Guest", protocol.RoleGuest)
	lis := r.joinListen(ctx, t, "e2e", "L", protocol.RoleAudience, protocol.ListenMix)
	ear := listenMix(ctx, t, lis)
	publishTone(ctx, t, host, hostFreq, hostAmp)
	publishTone(ctx, t, guest, guestFreq, guestAmp)
	mp := waitEvent(ctx, t, lis, isMixPublished)

	ear.waitBoth(ctx, t, "both tones in the mix")
	ear.mu.Lock()
	streams, trackID := append([]string(nil), ear.streams...), ear.trackID
	ear.mu.Unlock()
	if len(streams) != 1 || streams[0] != protocol.ParticipantMix {
		t.Errorf("the mix listener received tracks of streams %v, want exactly one: mix", streams)
	}
	if trackID != mp.Track.ID {
		t.Errorf("the mix track's id %q, want %q of track_published", trackID, mp.Track.ID)
	}
	if n := r.counter(t, "relay_mix_rooms"); n != 1 {
		t.Errorf("relay_mix_rooms = %v, want 1", n)
	}

	t.Run("mute", func(t *testing.T) {
		mustOK(ctx, t, host, map[string]any{"type": "mute", "participant": guest.ID(), "muted": true})
		ear.checkGone(ctx, t, ear.count(), "muted")
	})
	t.Run("unmute", func(t *testing.T) {
		mustOK(ctx, t, host, map[string]any{"type": "mute", "participant": guest.ID(), "muted": false})
		ear.waitBoth(ctx, t, "the guest back after the unmute")
	})
	t.Run("off the mic", func(t *testing.T) {
		mustOK(ctx, t, host, micMsg("mic_release", guest.ID()))
		ear.checkGone(ctx, t, ear.count(), "released")
	})
	ear.mu.Lock()
	gaps := ear.gaps
	ear.mu.Unlock()
	if gaps != 0 {
		t.Logf("%d sequence numbers of the mix missing on loopback (concealed)", gaps)
	}
}

// dropSeqs is a SendInterceptor losing a random share of a publisher's
// packets on the wire, every transmission of each (so the relay's NACK
// cannot repair them: the mixer must recover or conceal).
type dropSeqs struct {
	share float64
	mu    sync.Mutex
	rng   *rand.Rand
	lost  map[uint16]bool // decided sequence numbers: true if lost
	count atomic.Int64    // original packets lost
}

func newDropSeqs(share float64, seed uint64) *dropSeqs {
	return &dropSeqs{share: share, rng: rand.New(rand.NewPCG(seed, seed)), lost: map[uint16]bool{}}
}

func (d *dropSeqs) drop(seq uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	lost, seen := d.lost[seq]
	if !seen {
		lost = d.rng.Float64() < d.share
		d.lost[seq] = lost
		if lost {
			d.count.Add(1)
		}
	}
	return lost
}

func (d *dropSeqs) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &dropSeqsInterceptor{d: d}, nil
}

type dropSeqsInterceptor struct {
	interceptor.NoOp
	d *dropSeqs
}

func (i *dropSeqsInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if i.d.drop(h.SequenceNumber) {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

// TestMixEndToEndLoss: 5% random loss on the guest's uplink (every
// transmission of a lost packet, so NACK cannot repair it). The mix keeps
// the guest's tone in every frame where the host's plays: no silent gap;
// the mixer recovered
// (FEC) or concealed at least as many frames as were lost, some by FEC.
func TestMixEndToEndLoss(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{Mix: true})
	loss := newDropSeqs(0.05, 12)
	host := r.join(ctx, t, "loss", "Host", protocol.RoleHost)
	guest := r.dial(ctx, t, client.Config{Room: "loss", Name: "Guest", Role: protocol.RoleGuest, SendInterceptor: loss})
	lis := r.joinListen(ctx, t, "loss", "L", protocol.RoleAudience, protocol.ListenMix)
	ear := listenMix(ctx, t, lis)
	publishTone(ctx, t, host, hostFreq, hostAmp)
	publishTone(ctx, t, guest, guestFreq, guestAmp)
	ear.waitBoth(ctx, t, "both tones in the mix")

	lost0 := loss.count.Load()
	fec0 := r.counter(t, "relay_mix_frames_fec_recovered_total")
	conc0 := r.counter(t, "relay_mix_frames_concealed_total")
	from := ear.count()
	const frames = 400 // 4 s
	ear.waitFrames(ctx, t, from+frames, "4 s under loss")
	lost := loss.count.Load() - lost0
	time.Sleep(100 * time.Millisecond) // the last losses reach the mixer's jitter buffer's play position
	fec := r.counter(t, "relay_mix_frames_fec_recovered_total") - fec0
	conc := r.counter(t, "relay_mix_frames_concealed_total") - conc0

	got := ear.span(from, from+frames)
	worst, worstAt := math.Inf(1), 0
	for i, f := range got {
		if d := dB(opusgen.Amplitude(f, guestFreq) / guestAmp); d < worst {
			worst, worstAt = d, i
		}
	}
	t.Logf("%d of the guest's packets lost in 4 s; the mixer recovered %v by FEC and concealed %v; the guest's tone in its weakest frame (%d): %.1f dB",
		lost, fec, conc, worstAt, worst)
	if lost < 8 {
		t.Fatalf("only %d packets lost in 4 s at 5%%: the test lost its point", lost)
	}
	if fec+conc < float64(lost) {
		t.Errorf("%d packets lost but only %v frames recovered by FEC or concealed", lost, fec+conc)
	}
	if fec == 0 {
		t.Error("no frame recovered by FEC, though the guest sends it")
	}
	// A gap is the guest's tone gone (as when muted) for gapFrames in a
	// row while the host's, on a loss-free uplink, plays on: what an
	// input left silent, or idle, would sound like. One or two frames
	// under it are libopus concealing a steady sine (its worst case: the
	// concealed frame dips by 20 to 45 dB; package mix's
	// TestLossIsConcealed checks every frame with a voice instead).
	const gapFrames = 3
	run, gaps := 0, 0
	for i, f := range got {
		a, h := opusgen.Amplitude(f, guestFreq), opusgen.Amplitude(f, hostFreq)
		if dB(a/guestAmp) < -goneBelow && dB(h/hostAmp) >= -6 {
			run++
		} else {
			run = 0
		}
		if run == gapFrames {
			gaps++
			t.Logf("frames %d..%d: the guest's tone gone (%.5f in the last) while the host's plays (%.4f)", i-gapFrames+1, i, a, h)
		}
	}
	// Packets that come late (a machine starving the relay or the guest's
	// client of CPU) are concealed too: beyond what was lost, the input
	// ran dry, and a gap is then the machine's, not the loss's.
	late := fec + conc - float64(lost)
	switch {
	case gaps > 0 && late > float64(lost):
		t.Logf("%d gaps, with %.0f frames concealed beyond the %d lost: late packets on a starved machine, not the loss", gaps, late, lost)
	case gaps > 0:
		t.Errorf("%d silent gaps of %d frames or more in the guest's tone under 5%% loss", gaps, gapFrames)
	}
	if a := level(got, hostFreq); math.Abs(dB(a/hostAmp)) > levelTolerance {
		t.Errorf("the host's tone at %.4f over the 4 s, want %.2f within %v dB", a, hostAmp, levelTolerance)
	}
}
