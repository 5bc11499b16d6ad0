// Command mixload loads a running relay with mixing rooms and reports the
// relay's own GC and mixer figures over a measured window, read from its
// /metrics: GC pauses (relay_gc_pause_seconds) and GC CPU share
// (relay_gc_cpu_seconds_total over relay_cpu_seconds_total), mixer tick
// lateness and duration, late ticks, and the relay's CPU
// (process_cpu_seconds_total). The peers run in this process, the relay
// in its own, so that the relay's GC figures are its own.
//
// Each room has one host and guests publishing opusgen voices (real Opus,
// pre-encoded 2 s loops, 10 ms frames, one pacer for all) and audience
// members listening to the mix. docs/performance.md ("The audience mix")
// has the commands and the figures:
//
//	go build -tags nolibopusfile -o bin/mixload ./internal/cmd/mixload
//	taskset -c 0 bin/relay -http 127.0.0.1:18080 -udp 127.0.0.1:18081 -loopback \
//	  -max-pending-per-ip -1 -join-rate-per-ip -1 -max-joined-per-ip -1 &
//	taskset -c 1 bin/mixload -url ws://127.0.0.1:18080/ws
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type config struct {
	url, metrics         string
	rooms, pubs, lis     int
	warmup, duration     time.Duration
	loopFrames, dialRate int
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "ws://127.0.0.1:18080/ws", "the relay's WebSocket URL")
	flag.StringVar(&c.metrics, "metrics", "", "the relay's metrics URL; empty: /metrics beside -url")
	flag.IntVar(&c.rooms, "rooms", 20, "mixing rooms")
	flag.IntVar(&c.pubs, "publishers", 3, "publishers per room (one host, the rest guests)")
	flag.IntVar(&c.lis, "listeners", 3, "mix listeners per room")
	flag.DurationVar(&c.warmup, "warmup", 10*time.Second, "load before the measured window")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "the measured window")
	flag.Parse()
	c.loopFrames = 200
	if c.metrics == "" {
		c.metrics = "http" + strings.TrimSuffix(strings.TrimPrefix(c.url, "ws"), "/ws") + "/metrics"
	}
	if c.rooms < 1 || c.pubs < 1 || c.lis < 1 {
		fmt.Fprintln(os.Stderr, "mixload: -rooms, -publishers and -listeners must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "mixload:", err)
		os.Exit(1)
	}
}

// publisher is one publishing client with its looped frames.
type publisher struct {
	pub    *client.Publisher
	pk     *opusgen.Packetizer
	frames [][]byte
}

func run(ctx context.Context, c config) error {
	// Voices, encoded once: one per publisher slot, shared by the rooms.
	voices := make([][][]byte, c.pubs)
	for i := range voices {
		src, err := opusgen.NewSource(int64(i+1), 1)
		if err != nil {
			return err
		}
		for range c.loopFrames {
			f, err := src.NextFrame()
			if err != nil {
				return err
			}
			voices[i] = append(voices[i], f)
		}
	}
	var received atomic.Uint64
	var readers sync.WaitGroup
	defer readers.Wait() // after the clients closed (deferred next, so run first): their tracks end then
	var clients []*client.Client
	defer func() {
		for _, cl := range clients {
			_ = cl.Close()
		}
	}()
	dial := func(room, name, role, listen string) (*client.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cl, err := client.Dial(dctx, client.Config{URL: c.url, Loopback: true, Room: room, Name: name, Role: role, Listen: listen})
		if err != nil {
			return nil, fmt.Errorf("%s joins %s: %w", name, room, err)
		}
		clients = append(clients, cl)
		return cl, nil
	}
	var pubs []*publisher
	for r := range c.rooms {
		room := fmt.Sprintf("mix%02d", r)
		for l := range c.lis {
			cl, err := dial(room, fmt.Sprintf("L%d", l), protocol.RoleAudience, protocol.ListenMix)
			if err != nil {
				return err
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				select {
				case rt := <-cl.Tracks():
					var p rtp.Packet
					buf := make([]byte, 1500)
					for {
						n, _, err := rt.Track.Read(buf)
						if err != nil {
							return
						}
						if p.Unmarshal(buf[:n]) == nil && len(p.Payload) > 0 {
							received.Add(1)
						}
					}
				case <-ctx.Done():
				}
			}()
		}
		for p := range c.pubs {
			role := protocol.RoleGuest
			if p == 0 {
				role = protocol.RoleHost
			}
			cl, err := dial(room, fmt.Sprintf("P%d", p), role, "")
			if err != nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			pub, err := cl.Publish(pctx)
			if err == nil {
				err = pub.Connected(pctx)
			}
			cancel()
			if err != nil {
				return fmt.Errorf("%s publishes in %s: %w", cl.ID(), room, err)
			}
			pubs = append(pubs, &publisher{pub: pub, pk: opusgen.NewPacketizer(111, rand.Uint32()), frames: voices[p]})
		}
	}
	fmt.Printf("%d rooms × (%d publishers + %d mix listeners) connected\n", c.rooms, c.pubs, c.lis)

	// One pacer for every publisher: 10 ms frames on an absolute schedule.
	pctx, cancelPacer := context.WithCancel(ctx)
	pacerDone := make(chan error, 1)
	go func() { pacerDone <- pace(pctx, pubs, c.loopFrames) }()
	defer func() { cancelPacer(); <-pacerDone }()

	select {
	case <-time.After(c.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	before, err := scrape(c.metrics)
	if err != nil {
		return err
	}
	r0, t0 := received.Load(), time.Now()
	select {
	case <-time.After(c.duration):
	case <-ctx.Done():
		return ctx.Err()
	case err := <-pacerDone:
		return fmt.Errorf("the pacer stopped: %w", err)
	}
	after, err := scrape(c.metrics)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	report(before, after, secs, float64(received.Load()-r0)/secs/float64(c.rooms*c.lis))
	return nil
}

// pace writes one frame per publisher every 10 ms until ctx ends.
func pace(ctx context.Context, pubs []*publisher, loop int) error {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		for _, p := range pubs {
			if err := p.pub.WriteRTP(p.pk.Packet(p.frames[k%loop])); err != nil {
				return err
			}
		}
		timer.Reset(time.Until(start.Add(time.Duration(k+1) * 10 * time.Millisecond)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

type families map[string]*dto.MetricFamily

func scrape(url string) (families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape the relay's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	f, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return f, nil
}

// value is the first sample of a counter or gauge; 0 if absent.
func (f families) value(name string) float64 {
	mf, ok := f[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return 0
	}
	m := mf.GetMetric()[0]
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// buckets is a histogram's cumulative bucket counts by upper bound.
func (f families) buckets(name string) ([]float64, []uint64, error) {
	mf, ok := f[name]
	if !ok || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetHistogram() == nil {
		return nil, nil, errors.New("no histogram " + name)
	}
	var bounds []float64
	var counts []uint64
	for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, b.GetCumulativeCount())
	}
	return bounds, counts, nil
}

// quantiles of the histogram's growth between two scrapes: the bucket
// bound at or under which q of the new samples fall (+Inf past the last
// bound), the number of samples, and the largest bound any reached.
func quantile(before, after families, name string, qs ...float64) (out []float64, n uint64, err error) {
	bounds, c0, err := before.buckets(name)
	if err != nil {
		return nil, 0, err
	}
	_, c1, err := after.buckets(name)
	if err != nil {
		return nil, 0, err
	}
	total := after[name].GetMetric()[0].GetHistogram().GetSampleCount() - before[name].GetMetric()[0].GetHistogram().GetSampleCount()
	for _, q := range qs {
		v := math.Inf(1) // past every bound the exposition has
		for i := range bounds {
			if float64(c1[i]-c0[i]) >= q*float64(total) {
				v = bounds[i]
				break
			}
		}
		out = append(out, v)
	}
	return out, total, nil
}

func ms(v float64) string {
	if math.IsInf(v, 1) {
		return "> the last bucket"
	}
	return fmt.Sprintf("≤ %g ms", v*1000)
}

func report(before, after families, secs, perListener float64) {
	d := func(name string) float64 { return after.value(name) - before.value(name) }
	fmt.Printf("measured %.1f s; relay_mix_rooms %v, relay_mix_inputs %v; each mix listener received %.1f packets/s\n",
		secs, after.value("relay_mix_rooms"), after.value("relay_mix_inputs"), perListener)
	fmt.Printf("relay CPU: %.1f%% of one core (process_cpu_seconds_total)\n", d("process_cpu_seconds_total")/secs*100)
	gc, cpu := d("relay_gc_cpu_seconds_total"), d("relay_cpu_seconds_total")
	fmt.Printf("GC CPU: %.3f%% of the available CPU (relay_gc_cpu_seconds_total / relay_cpu_seconds_total); GOGC %v, GOMEMLIMIT %v; live heap %.1f MiB\n",
		100*gc/cpu, after.value("relay_gogc"), after.value("relay_gomemlimit_bytes"), after.value("relay_gc_heap_live_bytes")/(1<<20))
	if q, n, err := quantile(before, after, "relay_gc_pause_seconds", 0.5, 0.99, 1); err == nil {
		fmt.Printf("GC pauses: %d; p50 %s, p99 %s, max %s\n", n, ms(q[0]), ms(q[1]), ms(q[2]))
	} else {
		fmt.Println("GC pauses:", err)
	}
	if q, n, err := quantile(before, after, "relay_mix_tick_lateness_seconds", 0.5, 0.99, 1); err == nil {
		fmt.Printf("tick lateness: %d ticks; p50 %s, p99 %s, max %s; late ticks (> 1 ms) %v\n", n, ms(q[0]), ms(q[1]), ms(q[2]), d("relay_mix_ticks_late_total"))
	} else {
		fmt.Println("tick lateness:", err)
	}
	if q, n, err := quantile(before, after, "relay_mix_tick_duration_seconds", 0.5, 0.99); err == nil {
		fmt.Printf("tick duration: %d ticks; p50 %s, p99 %s\n", n, ms(q[0]), ms(q[1]))
	}
	fmt.Printf("mixer frames: %v decoded, %v FEC, %v concealed; packets out %v\n",
		d("relay_mix_frames_decoded_total"), d("relay_mix_frames_fec_recovered_total"), d("relay_mix_frames_concealed_total"), d("relay_mix_packets_out_total"))
}
