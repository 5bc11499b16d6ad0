package browsertest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// toneLevels measures, in the page, the spectrum of the mix element's
// stream with a WebAudio AnalyserNode (8192-point FFT, Blackman window,
// no smoothing), averaged in power over 1.5 s: the level (dB, AnalyserNode
// scale) of the strongest bin within ±3 bins of each frequency asked.
const toneLevels = `(async (freqs) => {
  const audio = document.querySelector('#sinks audio[data-participant="mix"]');
  if (!audio || !audio.srcObject) throw new Error("no mix element with a stream");
  const ctx = new AudioContext();
  await ctx.resume();
  const an = ctx.createAnalyser();
  an.fftSize = 8192;
  an.smoothingTimeConstant = 0;
  const src = ctx.createMediaStreamSource(audio.srcObject);
  src.connect(an);
  const bins = new Float32Array(an.frequencyBinCount);
  const power = new Float64Array(an.frequencyBinCount);
  let n = 0;
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 100));
    an.getFloatFrequencyData(bins);
    for (let k = 0; k < bins.length; k++) power[k] += Math.pow(10, bins[k] / 10);
    n++;
  }
  src.disconnect();
  await ctx.close();
  const hz = ctx.sampleRate / an.fftSize;
  return freqs.map((f) => {
    const c = Math.round(f / hz);
    let best = -Infinity;
    for (let k = Math.max(0, c - 3); k <= c + 3; k++) best = Math.max(best, 10 * Math.log10(power[k] / n));
    return best;
  });
})(%s)`

// goTone publishes a steady tone from a Go client (real Opus, 10 ms
// frames) until stop.
func goTone(t *testing.T, ctx context.Context, c *client.Client, freq, amp float64, wg *sync.WaitGroup, stop <-chan struct{}) {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("%s publishes: %v", c.ID(), err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatal(err)
	}
	tone, err := opusgen.NewTone(freq, amp)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pk := opusgen.NewPacketizer(111, rand.Uint32())
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			f, err := tone.NextFrame()
			if err != nil {
				t.Error(err)
				return
			}
			if pub.WriteRTP(pk.Packet(f)) != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
}

// TestAudienceMixHearsBoth: an audience tab on the mix, with the REAL
// mixer (relaytest.Options.Mix), hears both the host and the guest: the
// publishers are Go peers sending two different tones (Chromium's fake
// microphone beeps alike in every tab), and the page's WebAudio analyser
// on the mix element's stream finds each tone at the level sent (within
// a few dB) and nothing between them; when the host mutes the guest, the
// guest's tone leaves what the tab hears and the host's stays.
func TestAudienceMixHearsBoth(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	relay := relaytest.Start(t, relaytest.Options{Mix: true})
	const room = "mixaudio"
	const (
		hostFreq, guestFreq, offFreq = 400.0, 1000.0, 700.0
		amp                          = 0.2
	)
	dial := func(name, role string) *client.Client {
		c, err := client.Dial(ctx, client.Config{URL: relay.URL, Loopback: true, Logger: relaytest.Logger(), Room: room, Name: name, Role: role})
		if err != nil {
			t.Fatalf("%s joins: %v", name, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	host, guest := dial("Mei", protocol.RoleHost), dial("Lan", protocol.RoleGuest)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); wg.Wait() }) // before the clients close
	goTone(t, ctx, host, hostFreq, amp, &wg, stop)
	goTone(t, ctx, guest, guestFreq, amp, &wg, stop)

	browser, _ := startBrowser(t, ctx)
	tab := newPage(t, browser, "mix listener")
	tab.join(relay.HTTPURL, room, "Jun", "audience")
	tab.waitFor("on the mix", `window.relayPage.client.listen === "mix"`, 10*time.Second)
	tab.waitFor("the mix plays", `!!document.querySelector('#sinks audio[data-participant="mix"]')`, 15*time.Second)
	tab.waitFor("samples arrive", `window.relayPage.stats().then(s => s && s.sub && s.sub.totalSamplesReceived > 48000)`, 15*time.Second)
	if n := eval[int](tab, `document.querySelectorAll("#sinks audio").length`); n != 1 {
		t.Errorf("the tab plays %d audio elements, want the mix alone", n)
	}

	// A sine of amplitude A shows in the analyser at 20·log10(A/2 × 0.42)
	// dB: half the amplitude in the positive-frequency bin, times the
	// Blackman window's coherent gain.
	want := 20 * math.Log10(amp/2*0.42)
	measure := func() (hostDB, guestDB, offDB float64) {
		t.Helper()
		v := eval[[]float64](tab, fmt.Sprintf(toneLevels, fmt.Sprintf("[%v, %v, %v]", hostFreq, guestFreq, offFreq)))
		if len(v) != 3 {
			t.Fatalf("analyser returned %v", v)
		}
		return v[0], v[1], v[2]
	}
	const tolerance = 4.0 // dB: the two Opus encodes and the browser's jitter buffer
	h, g, off := measure()
	t.Logf("the tab hears %v Hz at %.1f dB, %v Hz at %.1f dB (each sent for %.1f dB), %v Hz at %.1f dB (none sent)", hostFreq, h, guestFreq, g, want, offFreq, off)
	for _, c := range []struct {
		who     string
		freq, l float64
	}{{"the host", hostFreq, h}, {"the guest", guestFreq, g}} {
		if math.Abs(c.l-want) > tolerance {
			t.Errorf("%s's %v Hz tone at %.1f dB in the mix the tab hears, want %.1f ± %v", c.who, c.freq, c.l, want, tolerance)
		}
	}
	if off > want-30 {
		t.Errorf("%v Hz (no publisher) at %.1f dB, want at least 30 dB under the tones (%.1f)", offFreq, off, want)
	}

	t.Run("the guest muted", func(t *testing.T) {
		muted := true
		if err := host.Send(&protocol.Mute{Header: protocol.Header{Type: protocol.TypeMute, ID: "m1"}, Participant: guest.ID(), Muted: &muted}); err != nil {
			t.Fatal(err)
		}
		// The muted event follows the mixer's input change.
	wait:
		for {
			select {
			case ev := <-host.Events():
				if e, ok := ev.(*protocol.Muted); ok && e.Participant == guest.ID() && e.Muted {
					break wait
				}
				if e, ok := ev.(*protocol.Error); ok {
					t.Fatalf("mute: %s: %s", e.Code, e.Message)
				}
			case <-ctx.Done():
				t.Fatal("no muted event before the deadline")
			}
		}
		time.Sleep(300 * time.Millisecond) // the browser's jitter buffer plays out
		h, g, _ := measure()
		t.Logf("after the mute: %v Hz at %.1f dB, %v Hz at %.1f dB", hostFreq, h, guestFreq, g)
		if g > want-30 {
			t.Errorf("the muted guest's tone at %.1f dB, want at least 30 dB under %.1f", g, want)
		}
		if math.Abs(h-want) > tolerance {
			t.Errorf("the host's tone at %.1f dB after the guest's mute, want %.1f ± %v", h, want, tolerance)
		}
	})
}
