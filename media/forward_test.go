package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The forward path without pion peer connections: an UpTrack fanning out
// to down tracks whose binding writes to a test writer.

// written is one packet as a test writer received it.
type written struct {
	hdr     rtp.Header
	payload []byte
}

// recordWriter is a webrtc.TrackLocalWriter that keeps a copy of what it
// is given.
type recordWriter struct {
	mu   sync.Mutex
	pkts []written
	err  error // returned by WriteRTP when set
}

func (w *recordWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.pkts = append(w.pkts, written{hdr: h.Clone(), payload: bytes.Clone(payload)})
	return h.MarshalSize() + len(payload), nil
}

func (w *recordWriter) Write([]byte) (int, error) {
	return 0, errors.New("recordWriter: the relay writes headers and payloads, not whole packets")
}

func (w *recordWriter) take() []written {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pkts
	w.pkts = nil
	return p
}

// discardWriter accepts everything, allocating nothing.
type discardWriter struct{}

func (discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return 12 + len(payload), nil
}
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

var (
	_ webrtc.TrackLocalWriter = (*recordWriter)(nil)
	_ webrtc.TrackLocalWriter = discardWriter{}
)

// Negotiated values on the subscribers' side, different from the
// publisher's so that the rewrite shows.
const (
	testOutPT   = 96
	testOutSSRC = 0x50b0000
	testInPT    = 111
	testInSSRC  = 0xaaaa0001
	testFrameTS = 480 // 10 ms at 48 kHz
)

// forwardFixture is one published track and its down tracks, each with a
// subscriber of its own, built directly from the structs.
type forwardFixture struct {
	m     *Metrics
	up    *UpTrack
	downs []*DownTrack
	first []int // per subscriber: how many times OnFirstPacket was called
}

func newForwardFixture(tb testing.TB, subs int, writer func(i int) webrtc.TrackLocalWriter) *forwardFixture {
	tb.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	f := &forwardFixture{m: m, up: NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m}),
		first: make([]int, subs)}
	for i := range subs {
		d := NewDownTrack(f.up, DownTrackParams{OnFirstPacket: func() { f.first[i]++ }})
		d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: writer(i)})
		if !f.up.addSubscriber(d) {
			tb.Fatal("addSubscriber refused on a live track")
		}
		f.downs = append(f.downs, d)
	}
	tb.Cleanup(f.up.hist.clear)
	return f
}

// forward is UpTrack.forward.
func (f *forwardFixture) forward(pkt *bufpool.Packet, n int) {
	f.up.forward(pkt, n)
}

// send forwards raw as if read from the publisher; the writes are done
// when it returns.
func (f *forwardFixture) send(raw []byte) {
	pkt := bufpool.Get()
	n := copy(pkt.Buf(), raw)
	f.forward(pkt, n)
}

// sendHeld is send keeping a reference for the test, so that the packet
// does not go back to the pool and can be checked by checkReleased.
func (f *forwardFixture) sendHeld(raw []byte) *bufpool.Packet {
	pkt := bufpool.Get()
	pkt.Retain()
	n := copy(pkt.Buf(), raw)
	f.forward(pkt, n)
	return pkt
}

// checkReleased clears the history, then checks that the test's reference
// to each of held was the last one.
func (f *forwardFixture) checkReleased(tb testing.TB, held []*bufpool.Packet) {
	tb.Helper()
	f.up.hist.clear()
	for i, p := range held {
		p.Release()
		assertFreed(tb, p, fmt.Sprintf("packet %d", i))
	}
}

// inPacket is a publisher packet: Opus-like payload with a one-byte
// header extension (audio level), as browsers send.
func inPacket(tb testing.TB, ssrc uint32, seq uint16, ts uint32, mutate ...func(*rtp.Packet)) []byte {
	tb.Helper()
	p := &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: testInPT, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
		Payload: bytes.Repeat([]byte{byte(seq), byte(seq >> 8), 0xfc}, 27),
	}
	if err := p.Header.SetExtension(1, []byte{0x80 | 30}); err != nil {
		tb.Fatal(err)
	}
	for _, f := range mutate {
		f(p)
	}
	b, err := p.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// counterValue reads a counter (testutil.ToFloat64 would need a module
// the relay's go.sum does not list).
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestDownTrackHeaderRewrite(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*rtp.Packet)
	}{
		{name: "extension stripped", mutate: func(*rtp.Packet) {}},
		{name: "no extension", mutate: func(p *rtp.Packet) { p.Extension, p.Extensions = false, nil }},
		{name: "marker", mutate: func(p *rtp.Packet) { p.Marker = true }},
		{name: "CSRCs stripped", mutate: func(p *rtp.Packet) { p.CSRC = []uint32{7, 8} }},
		// The payload goes without its padding, and the header says how
		// much padding pion is to write (it writes the bytes itself).
		{name: "padding", mutate: func(p *rtp.Packet) { p.Padding, p.Header.PaddingSize = true, 4 }},
		{name: "padding only", mutate: func(p *rtp.Packet) { p.Padding, p.Header.PaddingSize, p.Payload = true, 4, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const subs = 3
			ws := make([]*recordWriter, subs)
			f := newForwardFixture(t, subs, func(i int) webrtc.TrackLocalWriter {
				ws[i] = &recordWriter{}
				return ws[i]
			})
			const firstSeq, firstTS = 0xfffe, 0xffffff00 // both wrap
			var sent []*rtp.Packet
			var held []*bufpool.Packet
			for i := range 4 {
				raw := inPacket(t, testInSSRC, firstSeq+uint16(i), firstTS+uint32(i*testFrameTS), tt.mutate)
				var p rtp.Packet
				if err := p.Unmarshal(raw); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, &p)
				held = append(held, f.sendHeld(raw))
			}
			f.checkReleased(t, held)
			for i, w := range ws {
				got := w.take()
				if len(got) != len(sent) {
					t.Fatalf("subscriber %d got %d packets, want %d", i, len(got), len(sent))
				}
				for j, g := range got {
					in := sent[j]
					h := g.hdr
					if h.Version != 2 || h.SSRC != testOutSSRC+uint32(i) || h.PayloadType != testOutPT {
						t.Errorf("sub %d pkt %d: version %d ssrc %#x pt %d, want 2 %#x %d",
							i, j, h.Version, h.SSRC, h.PayloadType, testOutSSRC+uint32(i), testOutPT)
					}
					if h.Extension || len(h.Extensions) != 0 || len(h.CSRC) != 0 {
						t.Errorf("sub %d pkt %d: extension %v %v, CSRC %v; want none", i, j, h.Extension, h.Extensions, h.CSRC)
					}
					if h.Marker != in.Marker || h.Padding != in.Padding || h.PaddingSize != in.Header.PaddingSize {
						t.Errorf("sub %d pkt %d: marker %v padding %v (%d bytes), want %v %v (%d)", i, j,
							h.Marker, h.Padding, h.PaddingSize, in.Marker, in.Padding, in.Header.PaddingSize)
					}
					if want := got[0].hdr.SequenceNumber + uint16(j); h.SequenceNumber != want {
						t.Errorf("sub %d pkt %d: seq %d, want %d", i, j, h.SequenceNumber, want)
					}
					if want := got[0].hdr.Timestamp + uint32(j*testFrameTS); h.Timestamp != want {
						t.Errorf("sub %d pkt %d: ts %d, want %d", i, j, h.Timestamp, want)
					}
					if !bytes.Equal(g.payload, in.Payload) {
						t.Errorf("sub %d pkt %d: payload % x, want % x", i, j, g.payload, in.Payload)
					}
				}
			}
			if got, want := counterValue(t, f.m.PacketsOut), float64(subs*len(sent)); got != want {
				t.Errorf("PacketsOut = %v, want %v", got, want)
			}
		})
	}
}

// TestDownTrackNotNegotiated: a down track not (or no longer) bound drops
// and counts, and holds no reference.
func TestDownTrackNotNegotiated(t *testing.T) {
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
	f.downs[0].bound.Store(nil)
	f.send(inPacket(t, testInSSRC, 1, 1))
	if got := counterValue(t, f.m.Dropped(DropNotNegotiated)); got != 1 {
		t.Errorf("dropNotNegotiated = %v, want 1", got)
	}
	if got := counterValue(t, f.m.PacketsOut); got != 0 {
		t.Errorf("PacketsOut = %v, want 0", got)
	}
}

// TestDownTrackWriteFailed: a failing write is counted and does not move
// the subscriber's numbering.
func TestDownTrackWriteFailed(t *testing.T) {
	w := &recordWriter{}
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return w })
	f.send(inPacket(t, testInSSRC, 10, 4800))
	w.err = errors.New("closed")
	f.send(inPacket(t, testInSSRC, 11, 4800+testFrameTS))
	w.err = nil
	f.send(inPacket(t, testInSSRC, 12, 4800+2*testFrameTS))
	got := w.take()
	if len(got) != 2 || got[1].hdr.SequenceNumber != got[0].hdr.SequenceNumber+2 {
		t.Errorf("got %d packets %v, want seq 10 and 12 (the loss of 11 visible)", len(got), got)
	}
	if v := counterValue(t, f.m.Dropped(DropWriteFailed)); v != 1 {
		t.Errorf("dropWriteFailed = %v, want 1", v)
	}
}

func TestDownTrackSSRCChange(t *testing.T) {
	tests := []struct {
		name    string
		elapsed int64 // ns between the last packet of the old stream and the first of the new
		newSeq  uint16
		newTS   uint32
	}{
		{name: "reconnect after 20ms", elapsed: 20e6, newSeq: 5000, newTS: 900000},
		{name: "reconnect after 2s, seq below", elapsed: 2e9, newSeq: 3, newTS: 17},
		{name: "reconnect after 500ms, wrapping", elapsed: 500e6, newSeq: 0xffff, newTS: 0xffffffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordWriter{}
			f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return w })
			d := f.downs[0]
			for i := range 3 {
				f.send(inPacket(t, testInSSRC, 100+uint16(i), 96000+uint32(i*testFrameTS)))
			}
			d.mung.lastWrite -= tt.elapsed
			for i := range 3 {
				f.send(inPacket(t, testInSSRC+1, tt.newSeq+uint16(i), tt.newTS+uint32(i*testFrameTS)))
			}
			got := w.take()
			if len(got) != 6 {
				t.Fatalf("got %d packets, want 6", len(got))
			}
			for i := 1; i < len(got); i++ {
				if got[i].hdr.SequenceNumber != got[i-1].hdr.SequenceNumber+1 {
					t.Errorf("pkt %d: seq %d after %d, want continuous", i, got[i].hdr.SequenceNumber, got[i-1].hdr.SequenceNumber)
				}
				if got[i].hdr.SSRC != testOutSSRC {
					t.Errorf("pkt %d: ssrc %#x, want %#x", i, got[i].hdr.SSRC, testOutSSRC)
				}
			}
			// Across the switch the timestamp advances by at least the
			// time elapsed (the test moved the last write back by that).
			last, first := got[2].hdr.Timestamp, got[3].hdr.Timestamp
			if minAdv := uint32(tt.elapsed * 48000 / 1e9); first-last < minAdv || first-last >= 0x80000000 {
				t.Errorf("ts across the switch: %d → %d (+%d), want at least +%d", last, first, first-last, minAdv)
			}
			for i := 4; i < 6; i++ {
				if d := got[i].hdr.Timestamp - got[i-1].hdr.Timestamp; d != testFrameTS {
					t.Errorf("pkt %d: ts +%d, want +%d as the publisher's", i, d, testFrameTS)
				}
			}
		})
	}
}

func TestDownTrackResume(t *testing.T) {
	const lastSeq, lastTS = 102, 96000 + 2*testFrameTS
	tests := []struct {
		name    string
		pause   int64 // ns; negative: the last write is in the future (no time passed)
		nextSeq uint16
		wantSeq uint16 // of the next packet, out (the offset is 0 before)
	}{
		{name: "long pause with gap rebased", pause: 300e6, nextSeq: 150, wantSeq: lastSeq + 1},
		{name: "long pause with big gap rebased", pause: 10e9, nextSeq: lastSeq + 0x7000, wantSeq: lastSeq + 1},
		{name: "long pause no gap", pause: 300e6, nextSeq: lastSeq + 1, wantSeq: lastSeq + 1},
		{name: "short pause with gap shows loss", pause: -1e9, nextSeq: 150, wantSeq: 150},
		{name: "long pause then late packet kept", pause: 300e6, nextSeq: lastSeq - 1, wantSeq: lastSeq - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordWriter{}
			f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return w })
			d := f.downs[0]
			for i := range 3 {
				f.send(inPacket(t, testInSSRC, 100+uint16(i), 96000+uint32(i*testFrameTS)))
			}
			d.mung.lastWrite -= tt.pause
			// The publisher's timestamps keep the real time elapsed.
			nextTS := uint32(lastTS + 48000)
			f.send(inPacket(t, testInSSRC, tt.nextSeq, nextTS))
			f.send(inPacket(t, testInSSRC, tt.nextSeq+1, nextTS+testFrameTS))
			got := w.take()
			if len(got) != 5 {
				t.Fatalf("got %d packets, want 5", len(got))
			}
			if s := got[2].hdr.SequenceNumber; s != lastSeq {
				t.Fatalf("last seq before the pause = %d, want %d", s, lastSeq)
			}
			if s := got[3].hdr.SequenceNumber; s != tt.wantSeq {
				t.Errorf("seq after the pause = %d, want %d", s, tt.wantSeq)
			}
			if s := got[4].hdr.SequenceNumber; s != tt.wantSeq+1 {
				t.Errorf("seq of the packet after = %d, want %d", s, tt.wantSeq+1)
			}
			if ts := got[3].hdr.Timestamp; ts != nextTS {
				t.Errorf("ts after the pause = %d, want the publisher's %d", ts, nextTS)
			}
		})
	}
}

func TestServeNACK(t *testing.T) {
	tests := []struct {
		name string
		// nack is the output seq asked for, relative to the first output
		// seq of the second stream.
		nack       int
		wantServed bool
	}{
		{name: "latest", nack: 9, wantServed: true},
		{name: "oldest still kept", nack: 10 - historySize, wantServed: true},
		{name: "evicted", nack: 9 - historySize, wantServed: false},
		{name: "not sent yet", nack: 10, wantServed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordWriter{}
			f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return w })
			d := f.downs[0]
			// A first stream, then a second with other numbers, so that
			// the subscriber's numbering differs from the publisher's.
			var held []*bufpool.Packet
			for i := range 5 {
				held = append(held, f.sendHeld(inPacket(t, testInSSRC, 60000+uint16(i), uint32(i*testFrameTS))))
			}
			d.mung.lastWrite -= 20e6
			const in0 = 1000
			for i := range 50 {
				held = append(held, f.sendHeld(inPacket(t, testInSSRC+1, in0+uint16(i), 5000+uint32(i*testFrameTS))))
			}
			live := w.take()[5:]
			if d.mung.seqOffset.Load() == 0 {
				t.Fatal("seqOffset is 0: the test wants numbering that differs")
			}
			// The tail of the second stream: 10 packets, so that the
			// history holds historySize of the 50.
			base := live[40].hdr.SequenceNumber
			tail := live[40:]
			seq := base + uint16(tt.nack)

			d.serveNACK(seq)
			// A live packet afterwards continues the live numbering.
			held = append(held, f.sendHeld(inPacket(t, testInSSRC+1, in0+50, 5000+50*testFrameTS)))
			got := w.take()
			f.checkReleased(t, held)

			served := counterValue(t, f.m.NACKsServed)
			missed := counterValue(t, f.m.NACKsMissed)
			if got, want := counterValue(t, f.m.NACKsReceived), 1.0; got != want {
				t.Errorf("NACKsReceived = %v, want %v", got, want)
			}
			if !tt.wantServed {
				if served != 0 || missed != 1 {
					t.Errorf("NACKsServed %v NACKsMissed %v, want 0 1", served, missed)
				}
				if len(got) != 1 {
					t.Errorf("got %d packets, want only the live one", len(got))
				}
			} else {
				if served != 1 || missed != 0 {
					t.Errorf("NACKsServed %v NACKsMissed %v, want 1 0", served, missed)
				}
				if len(got) != 2 {
					t.Fatalf("got %d packets, want the retransmission and the live one", len(got))
				}
				rtx := got[0]
				var orig *written
				for i := range live {
					if live[i].hdr.SequenceNumber == seq {
						orig = &live[i]
					}
				}
				if orig == nil {
					t.Fatalf("seq %d never went out live", seq)
				}
				if rtx.hdr.SequenceNumber != seq || rtx.hdr.Timestamp != orig.hdr.Timestamp || rtx.hdr.SSRC != orig.hdr.SSRC {
					t.Errorf("retransmission seq %d ts %d ssrc %#x, want %d %d %#x",
						rtx.hdr.SequenceNumber, rtx.hdr.Timestamp, rtx.hdr.SSRC, seq, orig.hdr.Timestamp, orig.hdr.SSRC)
				}
				if !bytes.Equal(rtx.payload, orig.payload) {
					t.Errorf("retransmitted payload % x, want the original % x", rtx.payload, orig.payload)
				}
			}
			liveNext := got[len(got)-1].hdr.SequenceNumber
			if want := tail[len(tail)-1].hdr.SequenceNumber + 1; liveNext != want {
				t.Errorf("live seq after the NACK = %d, want %d", liveNext, want)
			}
		})
	}
}

// forwardAllocs measures the forward path for one packet written to subs
// down tracks (and to every tap): from the pool, through the fan-out and
// each write, and back to the pool.
func forwardAllocs(tb testing.TB, subs int, taps ...Tap) float64 {
	f := newForwardFixture(tb, subs, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
	for _, tap := range taps {
		f.up.AddTap(tap)
	}
	return fixtureAllocs(tb, f, subs)
}

// fixtureAllocs is forwardAllocs on a fixture of subs subscribers, which
// may shard (fanout_test.go): the workers' allocations during the runs
// count too, and every packet's fan-out is waited for before the count
// of packets written is checked.
func fixtureAllocs(tb testing.TB, f *forwardFixture, subs int) float64 {
	const runs = 1000
	allocs := stepAllocs(tb, f.up, runs)
	// AllocsPerRun runs step once more to warm up.
	f.waitIdle(tb)
	if got, want := counterValue(tb, f.m.PacketsOut), float64((2*historySize+runs+1)*subs); got != want {
		tb.Fatalf("PacketsOut = %v, want %v: not every packet was written", got, want)
	}
	return allocs
}

// packetSource returns a function that makes the publisher's next packet
// (sequence number and timestamp advancing by one 10 ms frame) in a
// pooled buffer, with its length.
func packetSource(tb testing.TB) func() (*bufpool.Packet, int) {
	raw := inPacket(tb, testInSSRC, 0, 0)
	seq, ts := uint16(0), uint32(0)
	return func() (*bufpool.Packet, int) {
		pkt := bufpool.Get()
		buf := pkt.Buf()
		n := copy(buf, raw)
		binary.BigEndian.PutUint16(buf[2:], seq)
		binary.BigEndian.PutUint32(buf[4:], ts)
		seq, ts = seq+1, ts+testFrameTS
		return pkt, n
	}
}

// stepAllocs forwards 2*historySize packets through up to warm up
// (first writes, history full, pool stocked), then measures the
// allocations per packet over runs more (and AllocsPerRun's one more).
func stepAllocs(tb testing.TB, up *UpTrack, runs int) float64 {
	next := packetSource(tb)
	step := func() {
		up.Ingest(next())
		// Sharded: let the workers write before the next packet, so that
		// none is dropped for a full queue (Gosched: a timed wait would
		// allocate).
		for up.batch != nil && up.batch.fan.queued.Load() != 0 {
			runtime.Gosched()
		}
	}
	for range 2 * historySize {
		step()
	}
	return testing.AllocsPerRun(runs, step)
}

func TestForwardZeroAllocs(t *testing.T) {
	// Under -race sync.Pool drops a quarter of what is put back, so about
	// one run in four allocates a packet; AllocsPerRun's integer average
	// still reads 0 then.
	for _, subs := range []int{1, 4, 50} {
		t.Run(fmt.Sprintf("subs=%d", subs), func(t *testing.T) {
			if allocs := forwardAllocs(t, subs); allocs != 0 {
				t.Errorf("forward path: %v allocations per packet, want 0", allocs)
			}
		})
	}
	// With a tap (the audience mix's input) copying every payload.
	t.Run("subs=4,tap", func(t *testing.T) {
		tap := &copyTap{}
		if allocs := forwardAllocs(t, 4, tap); allocs != 0 {
			t.Errorf("forward path with a tap: %v allocations per packet, want 0", allocs)
		}
		if tap.calls == 0 {
			t.Error("the tap was never called")
		}
	})
	// With the relay's loss and reception statistics (feedback.go), as
	// on a publisher's track.
	t.Run("subs=4,feedback", func(t *testing.T) {
		f := newForwardFixture(t, 4, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
		f.up.rx = newReceiveStats(48000)
		if allocs := fixtureAllocs(t, f, 4); allocs != 0 {
			t.Errorf("forward path with loss tracking: %v allocations per packet, want 0", allocs)
		}
		if f.up.rx.received == 0 {
			t.Error("the statistics never saw a packet")
		}
	})
	// A track heard in two rooms: two mixes tap it.
	t.Run("subs=4,two taps", func(t *testing.T) {
		a, b := &copyTap{}, &copyTap{}
		if allocs := forwardAllocs(t, 4, a, b); allocs != 0 {
			t.Errorf("forward path with two taps: %v allocations per packet, want 0", allocs)
		}
		if a.calls == 0 || a.calls != b.calls {
			t.Errorf("taps called %d and %d times, want the same, above 0", a.calls, b.calls)
		}
	})
}

// TestForwardMalformed: a packet that is not RTP is dropped once, by the
// reader, before any subscriber or the history sees it.
func TestForwardMalformed(t *testing.T) {
	ws := make([]*recordWriter, 3)
	f := newForwardFixture(t, 3, func(i int) webrtc.TrackLocalWriter {
		ws[i] = &recordWriter{}
		return ws[i]
	})
	bad := inPacket(t, testInSSRC, 7, 0)
	bad[0] = 0x40 // version 1
	held := f.sendHeld(bad)
	f.send(inPacket(t, testInSSRC, 7, 0)[:11]) // shorter than a header
	f.checkReleased(t, []*bufpool.Packet{held})
	if got := counterValue(t, f.m.Dropped(DropMalformed)); got != 2 {
		t.Errorf("malformed drops = %v, want 2 (once per packet, not per subscriber)", got)
	}
	if got := counterValue(t, f.m.PacketsIn); got != 0 {
		t.Errorf("PacketsIn = %v, want 0", got)
	}
	for i, w := range ws {
		if got := w.take(); len(got) != 0 {
			t.Errorf("subscriber %d got %d packets, want none", i, len(got))
		}
	}
}

// TestFirstPacketCallback: OnFirstPacket runs once per down track, at its
// first packet written, and not for a track not yet negotiated.
func TestFirstPacketCallback(t *testing.T) {
	f := newForwardFixture(t, 3, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
	f.downs[2].bound.Store(nil)
	for i := range 5 {
		f.send(inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
	}
	if want := []int{1, 1, 0}; !slices.Equal(f.first, want) {
		t.Errorf("OnFirstPacket calls per subscriber = %v, want %v", f.first, want)
	}
}
