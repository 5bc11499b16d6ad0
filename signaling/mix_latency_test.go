package signaling_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// onsetEar decodes one received track and keeps, for every frame, when it
// arrived and how loud it was.
type onsetEar struct {
	mu     sync.Mutex
	arrive []time.Time
	rms    []float64
}

func (e *onsetEar) run(rt *client.RemoteTrack) error {
	dec, err := opusgen.NewDecoder(1)
	if err != nil {
		return err
	}
	for {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return nil // the track ended
		}
		at := time.Now()
		if len(pkt.Payload) == 0 {
			continue
		}
		if _, err := dec.Decode(pkt.Payload); err != nil {
			return err
		}
		var sum float64
		pcm := dec.Last()
		for _, v := range pcm {
			x := float64(v) / math.MaxInt16
			sum += x * x
		}
		e.mu.Lock()
		e.arrive = append(e.arrive, at)
		e.rms = append(e.rms, math.Sqrt(sum/float64(len(pcm))))
		e.mu.Unlock()
	}
}

// onset is when the first frame at or after sent, louder than threshold,
// arrived; false if none did.
func (e *onsetEar) onset(sent time.Time, threshold float64) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, _ := slices.BinarySearchFunc(e.arrive, sent, func(a, s time.Time) int { return a.Compare(s) })
	for ; i < len(e.arrive); i++ {
		if e.rms[i] > threshold {
			return e.arrive[i], true
		}
	}
	return time.Time{}, false
}

// BenchmarkMixLatency: the latency the audience mix adds over the direct
// track, publisher send → listener receive, on loopback with the real
// mixer. One publisher sends 10 ms Opus frames paced in real time: 120 ms
// of silence, then a 300 Hz tone for 80 ms (one onset per op). One
// audience member listens to the tracks, one to the mix; each decodes
// what arrives and notes the arrival of the first frame louder than
// -26 dBFS after each onset was sent. mix-p50-ms and mix-p99-ms are the
// percentiles of (mix arrival − track arrival) over the onsets (b.N of
// them; run with -benchtime 100x); track-p50-ms and mix-abs-p50-ms are
// each path's own send → arrival. The decode happens in both ears alike;
// the difference holds the mixer's jitter buffer, its tick phase, its
// decode and encode (and the encoder's 6.5 ms lookahead, which delays the
// energy by that much).
func BenchmarkMixLatency(b *testing.B) {
	ignore := goleak.IgnoreCurrent()                   // the benchmark runner's own goroutines
	b.Cleanup(func() { goleak.VerifyNone(b, ignore) }) // registered first: runs after every other cleanup
	const (
		silence = 12 // frames before each onset
		tone    = 8  // frames of tone
		amp     = 0.3
		thresh  = 0.05 // RMS, -26 dBFS; the tone's frames have 0.21
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+time.Duration(b.N)*(silence+tone)*20*time.Millisecond)
	defer cancel()
	r := relaytest.Start(b, relaytest.Options{Mix: true})
	dial := func(name, role, listen string) *client.Client {
		c, err := client.Dial(ctx, client.Config{URL: r.URL, Loopback: true, Logger: relaytest.Logger(),
			Room: "latency", Name: name, Role: role, Listen: listen})
		if err != nil {
			b.Fatalf("%s joins: %v", name, err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	host := dial("Host", protocol.RoleHost, "")
	ears := map[string]*onsetEar{}
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // after every client closed (cleanups run last first)
	errs := make(chan error, 2)
	for _, listen := range []string{protocol.ListenTracks, protocol.ListenMix} {
		c := dial("L-"+listen, protocol.RoleAudience, listen)
		e := &onsetEar{}
		ears[listen] = e
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case rt := <-c.Tracks():
				if err := e.run(rt); err != nil {
					errs <- err
				}
			case <-ctx.Done():
			}
		}()
	}
	pub, err := host.Publish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Connected(ctx); err != nil {
		b.Fatal(err)
	}
	src, err := opusgen.NewTone(300, 0)
	if err != nil {
		b.Fatal(err)
	}
	pk := opusgen.NewPacketizer(111, rand.Uint32())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	send := func(frames int, a float64) (first time.Time) {
		if err := src.SetAmplitude(a); err != nil {
			b.Fatal(err)
		}
		for i := range frames {
			f, err := src.NextFrame()
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				first = time.Now()
			}
			if err := pub.WriteRTP(pk.Packet(f)); err != nil {
				b.Fatal(err)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				b.Fatal("deadline")
			}
		}
		return first
	}
	// Warm up until both listeners decode (the mix starts with the first
	// published track), with tones so that both have onsets to find.
	for range 100 {
		send(silence, 0)
		sent := send(tone, amp)
		_, t1 := ears[protocol.ListenTracks].onset(sent, thresh)
		_, t2 := ears[protocol.ListenMix].onset(sent, thresh)
		if t1 && t2 {
			break
		}
	}
	sent := make([]time.Time, 0, b.N)
	b.ResetTimer()
	for range b.N {
		send(silence, 0)
		sent = append(sent, send(tone, amp))
	}
	b.StopTimer()
	// The last onsets arrive (a stalled machine may hold them a while).
	for range 100 {
		send(1, 0)
		_, t1 := ears[protocol.ListenTracks].onset(sent[len(sent)-1], thresh)
		_, t2 := ears[protocol.ListenMix].onset(sent[len(sent)-1], thresh)
		if t1 && t2 {
			break
		}
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	var diff, direct, mixed []float64
	missing := 0
	for _, s := range sent {
		t1, ok1 := ears[protocol.ListenTracks].onset(s, thresh)
		t2, ok2 := ears[protocol.ListenMix].onset(s, thresh)
		if !ok1 || !ok2 {
			missing++
			continue
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		diff = append(diff, ms(t2.Sub(t1)))
		direct = append(direct, ms(t1.Sub(s)))
		mixed = append(mixed, ms(t2.Sub(s)))
	}
	if missing > 0 {
		b.Fatalf("%d of %d onsets not found on both listeners", missing, len(sent))
	}
	b.Logf("%d onsets; mix − track, ms: p10 %.1f, p50 %.1f, p90 %.1f, p99 %.1f, max %.1f", len(diff),
		percentile(diff, 10), percentile(diff, 50), percentile(diff, 90), percentile(diff, 99), percentile(diff, 100))
	b.ReportMetric(percentile(diff, 50), "mix-p50-ms")
	b.ReportMetric(percentile(diff, 99), "mix-p99-ms")
	b.ReportMetric(percentile(direct, 50), "track-p50-ms")
	b.ReportMetric(percentile(mixed, 50), "mix-abs-p50-ms")
}

// percentile is the p-th percentile (nearest rank) of v, which it sorts.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	i := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(i, 0)]
}
