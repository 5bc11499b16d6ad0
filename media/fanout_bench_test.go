package media

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkFanout: one track's packets, one every 10 ms as a publisher
// sends them, fanned out to S subscribers that each encrypt (SRTP
// AES-128-GCM, a context per subscriber) and write to a loopback UDP
// socket through the relay's batched socket (sendmmsg): the relay's write
// path without pion's interceptors and ICE plumbing. Each S runs written
// inline by the reader (mode=inline) and sharded (mode=sharded, the
// threshold S/GOMAXPROCS: the reader and the track's workers, one per P
// but one, get equal parts).
//
// Per packet it reports the process's CPU (user + system, every thread:
// cpu-µs/pkt), its voluntary context switches (wakes/pkt: a thread that
// slept and was woken), and the fan-out delay, read to the last copy
// handed to the kernel (relay_fanout_seconds, exact here: p50-µs, p99-µs).
// Run with -cpu 2 and -benchtime 100x or more; ns/op is the 10 ms pacing.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{100, 250, 500, 1000, 2000} {
		for _, mode := range []string{"inline", "sharded"} {
			b.Run(fmt.Sprintf("subs=%d,mode=%s", subs, mode), func(b *testing.B) {
				benchFanout(b, subs, mode == "sharded")
			})
		}
	}
}

// machineBusy is the CPU time every core of the machine has spent not
// idle since boot (/proc/stat), or -1 where that cannot be read.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * (time.Second / 100) // USER_HZ
}

// udpWriter is a subscriber's write path in the benchmark: header, SRTP,
// and the batched socket, as pion does it but in a buffer of its own.
type udpWriter struct {
	ctx        *srtp.Context
	conn       *batchConn
	to         netip.AddrPort
	plain, enc []byte
}

func (w *udpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.plain)
	if err != nil {
		return 0, err
	}
	n += copy(w.plain[n:], payload)
	out, err := w.ctx.EncryptRTP(w.enc[:0], w.plain[:n], h)
	if err != nil {
		return 0, err
	}
	return w.conn.WriteToAddrPort(out, w.to)
}

func (w *udpWriter) Write(b []byte) (int, error) { return len(b), nil }

// delayLog is a histogram that also keeps every observation, for exact
// percentiles.
type delayLog struct {
	prometheus.Histogram
	mu   sync.Mutex
	vals []float64
}

func (d *delayLog) Observe(v float64) {
	d.mu.Lock()
	d.vals = append(d.vals, v) // preallocated: no allocation in the loop
	d.mu.Unlock()
}

func benchFanout(b *testing.B, subs int, sharded bool) {
	g := &Batch{}
	g.fan.threshold = 1 << 30
	if sharded {
		g.fan.threshold = subs / runtime.GOMAXPROCS(0)
	}
	defer g.fan.close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	bc := newBatchConn(c, g)
	defer bc.Close()
	// Receivers: 16 sockets nobody reads (what arrives past their buffer
	// is dropped by the kernel, after the sender's work is done).
	var dst []netip.AddrPort
	for range 16 {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		dst = append(dst, rx.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	m, err := NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	log := &delayLog{Histogram: m.FanoutDelay, vals: make([]float64, 0, 1<<16)}
	m.FanoutDelay = log
	up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m, Batch: g})
	defer up.hist.clear()
	for i := range subs {
		ctx, err := srtp.CreateContext(bytes.Repeat([]byte{byte(i)}, 16), bytes.Repeat([]byte{2}, 12), srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			b.Fatal(err)
		}
		w := &udpWriter{ctx: ctx, conn: bc, to: dst[i%len(dst)], plain: make([]byte, 1500), enc: make([]byte, 0, 1500)}
		d := NewDownTrack(up, DownTrackParams{})
		d.bound.Store(&binding{ssrc: uint32(i), pt: testOutPT, w: webrtc.TrackLocalWriter(w)})
		up.addSubscriber(d)
	}
	if g := up.fan.groups.Load(); sharded != (g != nil && g.sharded > 0) && runtime.GOMAXPROCS(0) > 1 {
		b.Fatalf("sharded %v, but the track's groups are %v", sharded, g)
	}
	next := packetSource(b)
	send := func() { up.forward(next()) }
	for range 20 { // first writes, workers started, pool stocked
		send()
		time.Sleep(10 * time.Millisecond)
	}
	log.vals = log.vals[:0]
	var before, after syscall.Rusage
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	busy0, start := machineBusy(), time.Now()
	for b.Loop() {
		<-tick.C
		send()
	}
	// The last packet's shards (on a loaded machine they may take more
	// than a frame).
	<-tick.C
	for deadline := time.Now().Add(5 * time.Second); g.fan.queued.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d shards still queued 5 s after the last packet", g.fan.queued.Load())
		}
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	busy, wall := machineBusy()-busy0, time.Since(start)
	b.StopTimer()
	cpu := time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
		syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
	n := float64(b.N)
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/pkt")
	b.ReportMetric(float64(after.Nvcsw-before.Nvcsw)/n, "wakes/pkt")
	if busy >= 0 {
		// The load: what the rest of the machine ran meanwhile, in cores.
		b.ReportMetric(max(0, (busy-cpu).Seconds()/wall.Seconds()), "others-cores")
	}
	log.mu.Lock()
	vals := slices.Clone(log.vals)
	log.mu.Unlock()
	if len(vals) == 0 {
		b.Fatal("no fan-out delay observed")
	}
	slices.Sort(vals)
	b.ReportMetric(vals[len(vals)/2]*1e6, "p50-µs")
	b.ReportMetric(vals[len(vals)*99/100]*1e6, "p99-µs")
	if drops := counterValue(b, m.Dropped(DropFanoutBusy)) + counterValue(b, m.Dropped(DropWriteFailed)); drops != 0 {
		b.Fatalf("%v copies dropped", drops)
	}
}

// BenchmarkWakeLatency: how late a goroutine woken for another P starts
// (start-p50-µs, start-p90-µs) while its waker keeps its own P busy for
// 2 ms, as a track's reader does after queuing a shard and writing its
// own part, the woken one then busy for 2 ms too, as a worker writing its
// shard (mode=spin); or with the waker yielding its P first (mode=yield:
// then the waker may be the one that waits, wait-p50-µs). Once every 10
// ms, as packets come. Run with -cpu 2; docs/performance.md ("Why not
// half") has this VM's figures.
func BenchmarkWakeLatency(b *testing.B) {
	for _, mode := range []string{"spin", "yield"} {
		b.Run("mode="+mode, func(b *testing.B) {
			wake := make(chan int64, 1)
			started := make(chan int64, 1)
			spin := func() {
				for end := Now() + 2e6; Now() < end; {
				}
			}
			go func() { // the worker: starts, then writes its 2 ms part
				for at := range wake {
					late := Now() - at
					spin()
					started <- late
				}
			}()
			defer close(wake)
			var late, waited []float64
			for b.Loop() {
				time.Sleep(10 * time.Millisecond)
				t0 := Now()
				wake <- t0
				if mode == "yield" {
					runtime.Gosched()
				}
				waited = append(waited, float64(Now()-t0)/1e3)
				spin() // the reader's own part
				late = append(late, float64(<-started)/1e3)
			}
			slices.Sort(late)
			slices.Sort(waited)
			b.ReportMetric(late[len(late)/2], "start-p50-µs")
			b.ReportMetric(late[len(late)*9/10], "start-p90-µs")
			b.ReportMetric(waited[len(waited)/2], "wait-p50-µs")
		})
	}
}
