package media

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// The sharded fan-out without pion: a track on a Batch of its own (no
// sockets) whose threshold is lowered so that a few subscribers shard.

// shardDeadline bounds every wait for the workers.
const shardDeadline = 20 * time.Second

// newShardedFixture is newForwardFixture on a Batch whose workers (procs
// of them) take the subscribers past threshold. The workers stop at the
// test's end.
func newShardedFixture(tb testing.TB, subs, threshold, procs int, writer func(i int) webrtc.TrackLocalWriter) *forwardFixture {
	tb.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	b := &Batch{}
	b.fan.threshold, b.fan.procs = threshold, procs
	tb.Cleanup(b.fan.close)
	f := &forwardFixture{m: m, up: NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m, Batch: b}),
		first: make([]int, subs)}
	for i := range subs {
		f.addDown(tb, writer(i))
	}
	tb.Cleanup(f.up.hist.clear)
	return f
}

// addDown adds a bound down track writing to w.
func (f *forwardFixture) addDown(tb testing.TB, w webrtc.TrackLocalWriter) *DownTrack {
	tb.Helper()
	i := len(f.downs)
	d := NewDownTrack(f.up, DownTrackParams{OnFirstPacket: func() { f.first[i]++ }})
	d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: w})
	if !f.up.addSubscriber(d) {
		tb.Fatal("addSubscriber refused on a live track")
	}
	f.downs = append(f.downs, d)
	return d
}

// histCount is how many observations h has.
func histCount(tb testing.TB, h prometheus.Histogram) uint64 {
	tb.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// waitIdle waits until the workers have written or dropped every shard
// queued so far.
func (f *forwardFixture) waitIdle(tb testing.TB) {
	tb.Helper()
	if f.up.batch == nil {
		return // no workers: forward wrote everything before it returned
	}
	deadline := time.Now().Add(shardDeadline)
	for f.up.batch.fan.queued.Load() != 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("%d shards still queued at the deadline", f.up.batch.fan.queued.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// placement is how many subscribers the reader writes and how many each
// worker does.
func (f *forwardFixture) placement() (inline int, shards []int) {
	g := f.up.fan.groups.Load()
	if g == nil {
		return len(*f.up.subs.Load()), nil
	}
	for _, s := range g.shards {
		shards = append(shards, len(s))
	}
	return len(g.inline), shards
}

// TestFanoutSharded: past the threshold every subscriber still gets every
// packet once, in order, with the publisher's payload; the packets go
// back to the pool exactly once (checkReleased); the counts are per
// subscriber as on the inline path.
func TestFanoutSharded(t *testing.T) {
	tests := []struct {
		name                  string
		subs, threshold       int
		procs                 int
		wantInline            int
		wantShards            []int
		packets               int
		wantSharded, wantSeen bool
	}{
		{name: "below the threshold", subs: 4, threshold: 4, procs: 2, wantInline: 4, packets: 20},
		// Past the threshold the reader and the track's workers (all but
		// one of the relay's) get equal parts, the reader on a tie.
		{name: "two workers", subs: 11, threshold: 3, procs: 2, wantInline: 6, wantShards: []int{5}, packets: 40},
		{name: "four workers", subs: 12, threshold: 2, procs: 4, wantInline: 3, wantShards: []int{3, 3, 3}, packets: 40},
		// One P: the writes would share the core anyway, so none shard.
		{name: "one P", subs: 12, threshold: 2, procs: 1, wantInline: 12, packets: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
			ws := make([]*recordWriter, tt.subs)
			f := newShardedFixture(t, tt.subs, tt.threshold, tt.procs, func(i int) webrtc.TrackLocalWriter {
				ws[i] = &recordWriter{}
				return ws[i]
			})
			inline, shards := f.placement()
			if inline != tt.wantInline || fmt.Sprint(shards) != fmt.Sprint(tt.wantShards) {
				t.Fatalf("placement: %d inline, shards %v; want %d, %v", inline, shards, tt.wantInline, tt.wantShards)
			}
			var sent []*rtp.Packet
			var held []*bufpool.Packet
			for i := range tt.packets {
				raw := inPacket(t, testInSSRC, uint16(100+i), uint32(i*testFrameTS))
				var p rtp.Packet
				if err := p.Unmarshal(raw); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, &p)
				held = append(held, f.sendHeld(raw))
			}
			f.waitIdle(t)
			if got := histCount(t, f.m.FanoutDelay); got != uint64(tt.packets) {
				t.Errorf("relay_fanout_seconds has %d observations, want one per packet (%d)", got, tt.packets)
			}
			f.checkReleased(t, held)
			for i, w := range ws {
				got := w.take()
				if len(got) != len(sent) {
					t.Fatalf("subscriber %d got %d packets, want %d", i, len(got), len(sent))
				}
				for j, g := range got {
					if want := got[0].hdr.SequenceNumber + uint16(j); g.hdr.SequenceNumber != want {
						t.Errorf("sub %d pkt %d: seq %d, want %d (out of order)", i, j, g.hdr.SequenceNumber, want)
					}
					if g.hdr.SSRC != testOutSSRC+uint32(i) {
						t.Errorf("sub %d pkt %d: ssrc %#x, want %#x", i, j, g.hdr.SSRC, testOutSSRC+uint32(i))
					}
					if !bytes.Equal(g.payload, sent[j].Payload) {
						t.Errorf("sub %d pkt %d: payload differs from the publisher's", i, j)
					}
				}
				if f.first[i] != 1 {
					t.Errorf("sub %d: OnFirstPacket called %d times, want 1", i, f.first[i])
				}
			}
			if got, want := counterValue(t, f.m.PacketsOut), float64(tt.subs*tt.packets); got != want {
				t.Errorf("PacketsOut = %v, want %v", got, want)
			}
			if got := counterValue(t, f.m.Dropped(DropFanoutBusy)); got != 0 {
				t.Errorf("fanout_busy drops = %v, want 0", got)
			}
		})
	}
}

// TestFanoutRegroup: subscribers leaving and joining a sharded track keep
// their writer (a shard's subscriber is never moved to another goroutine),
// the ones that left get nothing more, and new ones fill the least loaded
// worker.
func TestFanoutRegroup(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	ws := make([]*recordWriter, 0, 12)
	rec := func(int) webrtc.TrackLocalWriter {
		w := &recordWriter{}
		ws = append(ws, w)
		return w
	}
	f := newShardedFixture(t, 7, 3, 2, rec) // inline 0, 1, 2, 6; worker 0: 3, 4, 5
	if inline, shards := f.placement(); inline != 4 || fmt.Sprint(shards) != "[3]" {
		t.Fatalf("placement: %d inline, shards %v; want 4, [3]", inline, shards)
	}
	before := map[*DownTrack]int{}
	for d, w := range f.up.fan.shardOf {
		before[d] = w
	}
	gone := []int{0, 1, 3}
	for _, i := range gone {
		f.downs[i].Unsubscribe()
	}
	if inline, shards := f.placement(); inline != 2 || fmt.Sprint(shards) != "[2]" {
		t.Fatalf("after leaving: %d inline, shards %v; want 2, [2]", inline, shards)
	}
	for d, w := range f.up.fan.shardOf {
		if before[d] != w {
			t.Errorf("a subscriber moved from worker %d to %d", before[d], w)
		}
	}
	// The reader is below the threshold again: the next one is written
	// inline, the one after goes to the worker (fewer than the reader).
	f.first = append(f.first, 0, 0)
	f.addDown(t, rec(0))
	if inline, shards := f.placement(); inline != 3 || fmt.Sprint(shards) != "[2]" {
		t.Fatalf("after one joined: %d inline, shards %v; want 3, [2]", inline, shards)
	}
	f.addDown(t, rec(0))
	if inline, shards := f.placement(); inline != 3 || fmt.Sprint(shards) != "[3]" {
		t.Fatalf("after two joined: %d inline, shards %v; want 3, [3]", inline, shards)
	}
	const packets = 10
	for i := range packets {
		f.send(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
	}
	f.waitIdle(t)
	for i, w := range ws {
		left := false
		for _, g := range gone {
			left = left || g == i
		}
		want := packets
		if left {
			want = 0
		}
		if got := len(w.take()); got != want {
			t.Errorf("subscriber %d (left: %v) got %d packets, want %d", i, left, got, want)
		}
	}
	f.up.Close()
	if inline, shards := f.placement(); inline != 0 || len(shards) != 0 {
		t.Errorf("after Close: %d inline, shards %v; want none", inline, shards)
	}
}

// gateWriter blocks every write while its gate is held, then records.
type gateWriter struct {
	recordWriter
	gate sync.RWMutex
}

func (w *gateWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.gate.RLock()
	defer w.gate.RUnlock()
	return w.recordWriter.WriteRTP(h, payload)
}

// TestFanoutHoldsPacket: the packet stays the reader's until the last
// shard has written it. A worker is held inside a write while the reader
// and the history let the packet go, and the pool is drained and
// scribbled over: if the packet had gone back early it would be among the
// scribbled buffers, and the held worker would write the scribble.
func TestFanoutHoldsPacket(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	gate := &gateWriter{}
	f := newShardedFixture(t, 2, 1, 2, func(i int) webrtc.TrackLocalWriter {
		if i == 0 {
			return discardWriter{}
		}
		return gate
	})
	if _, shards := f.placement(); fmt.Sprint(shards) != "[1]" {
		t.Fatalf("shards %v, want the gated subscriber on worker 0", shards)
	}
	raw := inPacket(t, testInSSRC, 9, 0)
	gate.gate.Lock()
	f.send(raw)
	f.up.hist.clear() // the worker's reference is the last
	var scribbled []*bufpool.Packet
	for range 64 {
		p := bufpool.Get()
		for i := range p.Buf() {
			p.Buf()[i] = 0xee
		}
		scribbled = append(scribbled, p)
	}
	gate.gate.Unlock()
	f.waitIdle(t)
	for _, p := range scribbled {
		p.Release()
	}
	got := gate.take()
	var in rtp.Packet
	if err := in.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].payload, in.Payload) {
		t.Fatalf("the held shard wrote %v, want the one packet's payload", got)
	}
}

// TestFanoutBusy: a worker whose queue is full drops, counts each
// subscriber's packet once, holds no reference to what it dropped, and
// the reader never waits for it. Close drops what is still queued the
// same way.
func TestFanoutBusy(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	gate := &gateWriter{}
	f := newShardedFixture(t, 3, 1, 3, func(i int) webrtc.TrackLocalWriter {
		if i == 0 {
			return discardWriter{}
		}
		return gate
	})
	// Three workers, the track on two: worker 0 has subscriber 1 (gated),
	// worker 1 subscriber 2 (gated).
	if inline, shards := f.placement(); inline != 1 || fmt.Sprint(shards) != "[1 1]" {
		t.Fatalf("placement: %d inline, shards %v; want 1, [1 1]", inline, shards)
	}
	gate.gate.Lock()
	const packets = fanQueueLen + 10
	var held []*bufpool.Packet
	for i := range packets {
		held = append(held, f.sendHeld(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS))))
	}
	// Each worker took its first job and is held in it; fanQueueLen more
	// are queued; the rest were dropped.
	dropped := counterValue(t, f.m.Dropped(DropFanoutBusy))
	if want := float64(2 * (packets - 1 - fanQueueLen)); dropped < want || dropped > want+2 {
		// A worker may not yet have taken its first job when its queue
		// filled: then it dropped one more.
		t.Errorf("fanout_busy drops = %v, want %v (or up to 2 more)", dropped, want)
	}
	// Close while the workers are held: they finish the write they are in
	// and drop the rest.
	p := &f.up.batch.fan
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		p.close()
	}()
	for stopping := false; !stopping; {
		p.mu.Lock()
		stopping = p.closed
		p.mu.Unlock()
		runtime.Gosched()
	}
	gate.gate.Unlock()
	<-closed
	// Close returned: every worker stopped, every job was written or
	// dropped and its reference released.
	f.checkReleased(t, held)
	written := float64(len(gate.take()))
	total := counterValue(t, f.m.Dropped(DropFanoutBusy))
	if written+total != 2*packets {
		t.Errorf("gated subscribers: %v written + %v dropped, want %d in all", written, total, 2*packets)
	}
	if got := counterValue(t, f.m.PacketsOut); got != packets+written {
		t.Errorf("PacketsOut = %v, want %v", got, packets+written)
	}
	// After close a subscriber past the threshold is refused at push.
	before := counterValue(t, f.m.Dropped(DropFanoutBusy))
	f.send(inPacket(t, testInSSRC, packets, packets*testFrameTS))
	if got := counterValue(t, f.m.Dropped(DropFanoutBusy)) - before; got != 2 {
		t.Errorf("after close: %v drops, want 2", got)
	}
}

// TestFanoutMute: a muted sharded track writes nothing on any worker,
// and resumes on all of them.
func TestFanoutMute(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	ws := make([]*recordWriter, 6)
	f := newShardedFixture(t, 6, 2, 2, func(i int) webrtc.TrackLocalWriter {
		ws[i] = &recordWriter{}
		return ws[i]
	})
	f.up.SetMuted(true)
	for i := range 5 {
		f.send(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
	}
	f.up.SetMuted(false)
	for i := 5; i < 8; i++ {
		f.send(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
	}
	f.waitIdle(t)
	for i, w := range ws {
		if got := len(w.take()); got != 3 {
			t.Errorf("subscriber %d got %d packets, want the 3 after unmute", i, got)
		}
	}
}

// TestFanoutNACK: a subscriber written by a worker is served its NACK
// from the history, with the numbers and payload it got live.
func TestFanoutNACK(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	ws := make([]*recordWriter, 4)
	f := newShardedFixture(t, 4, 1, 2, func(i int) webrtc.TrackLocalWriter {
		ws[i] = &recordWriter{}
		return ws[i]
	})
	for i := range 10 {
		f.send(inPacket(t, testInSSRC, uint16(500+i), uint32(i*testFrameTS)))
	}
	f.waitIdle(t)
	d, w := f.downs[3], ws[3]
	if _, ok := f.up.fan.shardOf[d]; !ok {
		t.Fatal("subscriber 3 is not on a worker")
	}
	live := w.take()
	d.serveNACK(live[4].hdr.SequenceNumber)
	got := w.take()
	if len(got) != 1 || got[0].hdr.SequenceNumber != live[4].hdr.SequenceNumber ||
		got[0].hdr.Timestamp != live[4].hdr.Timestamp || !bytes.Equal(got[0].payload, live[4].payload) {
		t.Fatalf("retransmission %v, want a copy of %v", got, live[4])
	}
	if got := counterValue(t, f.m.NACKsServed); got != 1 {
		t.Errorf("NACKsServed = %v, want 1", got)
	}
}

// TestFanoutChurn: subscribers join and leave a sharded track while its
// reader forwards (the race detector checks who touches what); every
// packet's references come back.
func TestFanoutChurn(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	f := newShardedFixture(t, 8, 2, 2, func(int) webrtc.TrackLocalWriter { return &recordWriter{} })
	const packets = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range packets {
			f.send(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
		}
	}()
	for i := range 60 {
		d := NewDownTrack(f.up, DownTrackParams{})
		d.bound.Store(&binding{ssrc: uint32(i), pt: testOutPT, w: discardWriter{}})
		f.up.addSubscriber(d)
		if i%2 == 0 {
			d.Unsubscribe()
		}
	}
	<-done
	f.waitIdle(t)
}

func TestForwardZeroAllocsSharded(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups stop the workers
	for _, c := range []struct{ subs, threshold int }{{50, 8}, {300, 100}} {
		t.Run(fmt.Sprintf("subs=%d,threshold=%d", c.subs, c.threshold), func(t *testing.T) {
			f := newShardedFixture(t, c.subs, c.threshold, 2, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
			if inline, shards := f.placement(); inline != c.subs/2 || fmt.Sprint(shards) != fmt.Sprintf("[%d]", c.subs/2) {
				t.Fatalf("placement: %d inline, shards %v; want half and half", inline, shards)
			}
			if allocs := fixtureAllocs(t, f, c.subs); allocs != 0 {
				t.Errorf("sharded forward path: %v allocations per packet, want 0", allocs)
			}
		})
	}
}

// TestSetFanoutThreshold: the relay's -fanout-threshold, applied to the
// subscribers added after it is set.
func TestSetFanoutThreshold(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		subs       int
		wantInline int
	}{
		{name: "default", n: 0, subs: 20, wantInline: 20}, // below FanoutThreshold
		{name: "never", n: -1, subs: 20, wantInline: 20},
		{name: "four", n: 4, subs: 20, wantInline: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			f := newShardedFixture(t, 0, 0, 2, nil)
			f.up.batch.SetFanoutThreshold(tt.n)
			f.first = make([]int, tt.subs)
			for range tt.subs {
				f.addDown(t, discardWriter{})
			}
			if inline, _ := f.placement(); inline != tt.wantInline {
				t.Errorf("%d written by the reader, want %d", inline, tt.wantInline)
			}
		})
	}
}
