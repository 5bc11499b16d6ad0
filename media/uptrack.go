package media

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/interceptor"
)

// UpTrack is one published track: its reader writes every packet to each
// subscriber's DownTrack and keeps it in the history for NACKs.
type UpTrack struct {
	id, kind, streamID string
	m                  *Metrics
	batch              *Batch // the relay's UDP write batching, nil without
	levelExt           uint8  // the audio level extension's id, 0 if not negotiated

	local bool // packets made by the relay (the mix), fed by Forward

	// The relay's RTCP toward the publisher (feedback.go), all nil
	// without: rx is updated by the reader with every packet; the
	// feedback loop reads it and alone uses lastReport.
	fb         *Feedback
	rtcp       RTCPWriter
	rx         *receiveStats
	lastReport int64
	nack       bool // the publisher negotiated NACK

	// ingestMu makes Ingest's calls one at a time: a publisher's
	// packets may come from pion's track (ReadLoop) and from the relay's
	// own socket reader (direct ingest) while one hands over to the
	// other. Uncontended otherwise.
	ingestMu sync.Mutex
	ended    bool // guarded by ingestMu: ReadLoop returned; Ingest drops
	hist     history
	meter    levelMeter
	muted    atomic.Bool // the reader drops everything while set
	// taps are where the reader copies every payload (the audience
	// mixes' inputs: a track heard in several rooms feeds each room's
	// mix), replaced whole under mu like subs.
	taps atomic.Pointer[[]Tap]

	// subs is the fan-out list, replaced whole (copy on write) under mu so
	// that the reader takes it with one atomic load per packet.
	subs   atomic.Pointer[[]*DownTrack]
	mu     sync.Mutex
	closed bool     // guarded by mu; no subscriber is added after close
	fan    fanState // who writes which subscriber past FanoutThreshold (fanout.go)
}

// UpTrackParams are what a published track needs from the room layer.
type UpTrackParams struct {
	ID   string // the track id in track_published
	Kind string // "audio"
	// StreamID is the MediaStream id subscribers see: the publisher's
	// participant id.
	StreamID string
	// Batch is the relay's UDP write batching (BatchOf), nil to write
	// every packet at once.
	Batch *Batch
	// LevelExt is the RFC 6464 audio level extension's id on the
	// publisher's connection, 0 if not negotiated.
	LevelExt uint8
	// Local marks a track whose packets the relay makes itself (the
	// audience mix) and hands to Forward: they are not counted as
	// received (relay_packets_in_total counts publishers' packets).
	Local   bool
	Metrics *Metrics
	// Feedback, if set with RTCP, makes the relay's NACKs and receiver
	// reports for the track (feedback.go) while ReadLoop runs, written
	// to RTCP (the publisher's connection). Without, the publisher gets
	// none from the track (a cluster link keeps pion's interceptors).
	Feedback *Feedback
	RTCP     RTCPWriter
	// NACK: the publisher negotiated NACK (rtcp-fb nack), so Feedback
	// asks it for lost packets; without, only receiver reports go.
	NACK bool
	// ClockRate is the RTP clock rate, for the jitter in receiver
	// reports; 0 means Opus's 48000.
	ClockRate uint32
}

// Tap receives a copy of every payload a published track forwards: the
// audience mix's input for that track. The track's reader calls it, so it
// must not block, must not keep payload (the reader reuses the buffer:
// copy it), and should not allocate.
type Tap interface {
	// WriteRTP gets the packet's sequence number, timestamp and payload
	// without header extensions and padding; payload may be empty (a
	// padding-only packet).
	WriteRTP(seq uint16, ts uint32, payload []byte)
}

// NewUpTrack creates a published track with no subscriber.
func NewUpTrack(p UpTrackParams) *UpTrack {
	t := &UpTrack{id: p.ID, kind: p.Kind, streamID: p.StreamID, m: p.Metrics, batch: p.Batch, levelExt: p.LevelExt, local: p.Local}
	t.subs.Store(&[]*DownTrack{})
	t.taps.Store(&[]Tap{})
	if p.Feedback != nil && p.RTCP != nil && !p.Local {
		clock := p.ClockRate
		if clock == 0 {
			clock = 48000
		}
		t.fb, t.rtcp, t.rx, t.nack = p.Feedback, p.RTCP, newReceiveStats(clock), p.NACK
	}
	return t
}

// ID is the track's id.
func (t *UpTrack) ID() string { return t.id }

// Kind is the track's kind ("audio").
func (t *UpTrack) Kind() string { return t.kind }

// SetMuted stops (true) or resumes forwarding at the next packet.
func (t *UpTrack) SetMuted(muted bool) { t.muted.Store(muted) }

// Muted reports whether forwarding is stopped.
func (t *UpTrack) Muted() bool { return t.muted.Load() }

// AddTap makes tap receive every payload forwarded from the next packet
// on, besides the taps the track already has (each room that hears the
// track may mix it). Adding a tap twice is a no-op.
func (t *UpTrack) AddTap(tap Tap) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.taps.Load()
	if slices.Contains(old, tap) {
		return
	}
	taps := append(slices.Clone(old), tap)
	t.taps.Store(&taps)
}

// RemoveTap stops tap from receiving payloads; a packet being forwarded
// when it changes may still reach it. Removing a tap the track does not
// have is a no-op.
func (t *UpTrack) RemoveTap(tap Tap) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.taps.Load()
	i := slices.Index(old, tap)
	if i < 0 {
		return
	}
	taps := slices.Delete(slices.Clone(old), i, i+1)
	t.taps.Store(&taps)
}

// Level is the publisher's smoothed audio level, 0 (silent) to 1, or 0
// when no level arrived within stale ns of now (Now's clock): a publisher
// in DTX silence sends nothing.
func (t *UpTrack) Level(now, stale int64) float64 { return t.meter.level(now, stale) }

// addSubscriber adds d to the fan-out; false if the track has ended.
func (t *UpTrack) addSubscriber(d *DownTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	subs := append(slices.Clone(*t.subs.Load()), d)
	t.subs.Store(&subs)
	t.placeLocked(d, subs)
	return true
}

// removeSubscriber takes d out of the fan-out at once.
func (t *UpTrack) removeSubscriber(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.subs.Load()
	i := slices.Index(old, d)
	if i < 0 {
		return
	}
	subs := slices.Delete(slices.Clone(old), i, i+1)
	t.subs.Store(&subs)
	t.forgetLocked(d, subs)
}

// Close stops the fan-out; a packet being written still goes out.
func (t *UpTrack) Close() {
	t.mu.Lock()
	t.closed = true
	t.subs.Store(&[]*DownTrack{})
	if t.fan.groups.Load() != nil {
		t.fan.shardOf = nil
		t.regroupLocked(nil)
	}
	t.mu.Unlock()
}

// RTPReader is where a track's packets come from: pion's
// *webrtc.TrackRemote.
type RTPReader interface {
	Read(b []byte) (int, interceptor.Attributes, error)
}

// ReadLoop reads the publisher's packets until r fails (the track ended)
// and hands each to Ingest. It releases the history when it returns.
func (t *UpTrack) ReadLoop(r RTPReader) {
	defer t.end()
	if t.fb != nil {
		t.fb.add(t)
		defer t.fb.remove(t)
	}
	for {
		pkt := bufpool.Get()
		n, _, err := r.Read(pkt.Buf())
		if err != nil {
			pkt.Release()
			return
		}
		t.Ingest(pkt, n)
	}
}

// Ingest is a publisher's packet, decrypted, into the track: pkt holds a
// complete RTP packet of n bytes, and Ingest takes over the caller's
// reference. It does all the track's per-packet work (loss and reception
// statistics for the relay's RTCP, the audio level, the taps, the mute
// gate, the history, the fan-out, the counters) on the caller's
// goroutine. Any goroutine may call it, ReadLoop or the relay's socket
// reader; calls are serialized. A packet given after ReadLoop returned
// is released and dropped.
func (t *UpTrack) Ingest(pkt *bufpool.Packet, n int) {
	t.ingestMu.Lock()
	if t.ended {
		t.ingestMu.Unlock()
		pkt.Release() // a socket reader's packet after the track ended
		return
	}
	t.forward(pkt, n)
	t.ingestMu.Unlock()
}

// end stops Ingest and releases the history, when ReadLoop returns.
func (t *UpTrack) end() {
	t.ingestMu.Lock()
	t.ended = true
	t.ingestMu.Unlock()
	t.hist.clear()
}

// SenderReport records the publisher's RTCP sender report for stream
// ssrc with NTP time ntp, just read, for the LSR and DLSR of the relay's
// next receiver report. A track without Feedback ignores it.
func (t *UpTrack) SenderReport(ssrc uint32, ntp uint64) {
	if t.rx != nil {
		t.rx.senderReport(ssrc, ntp, Now())
	}
}

// Forward writes a packet the relay made itself (the audience mix: pkt
// holds a complete RTP packet of n bytes) to every subscriber and keeps
// it in the history for NACKs, as the reader does with a publisher's
// packets; it takes over the caller's reference. Calls must not overlap
// (one producer per track), and the producer calls ReleaseHistory after
// its last Forward.
func (t *UpTrack) Forward(pkt *bufpool.Packet, n int) { t.forward(pkt, n) }

// ReleaseHistory releases the packets kept for NACKs, for a track fed by
// Forward once its producer has stopped (ReadLoop does it itself).
func (t *UpTrack) ReleaseHistory() { t.hist.clear() }

// forward writes the packet just read into pkt (n bytes) to every
// subscriber and keeps it in the history. It takes over the caller's
// reference. The header is parsed here, once, and the fields handed to
// every subscriber's write.
//
// The writes are inline, one after the other, rather than handed to a
// writer goroutine per subscriber: a write to a UDP peer does not block on
// that peer (every peer shares the one UDP socket), and the hand-off cost
// more than the write (a goroutine wake-up per packet per subscriber;
// docs/performance.md has the figures).
func (t *UpTrack) forward(pkt *bufpool.Packet, n int) {
	m := t.m
	pkt.SetLen(n)
	raw := pkt.Bytes()
	f, ok := parseRTP(raw)
	if !ok {
		pkt.Release()
		m.drop(DropMalformed)
		return
	}
	now := Now()
	pkt.ReadAt = now
	if t.rx != nil && t.rx.packet(f.ssrc, f.seq, f.ts, now) && t.nack {
		t.fb.wake() // a packet went missing: the loop NACKs it at its next tick
	}
	if !t.local {
		m.PacketsIn.Inc()
		m.BytesIn.Add(float64(n))
	}
	if t.muted.Load() {
		pkt.Release()
		return
	}
	if taps := *t.taps.Load(); len(taps) > 0 {
		payload := f.payload(raw)
		for _, tap := range taps {
			tap.WriteRTP(f.seq, f.ts, payload)
		}
	}
	if t.levelExt != 0 {
		if lv, ok := audioLevel(raw, &f, t.levelExt); ok {
			t.meter.update(lv, now)
		}
	}
	t.hist.put(f.seq, pkt)
	t.fanOut(pkt, &f, now)
	pkt.Release()
}

// writeAll writes pkt (parsed as f) to every one of subs, and returns how
// many packets and payload bytes went out. With more than one subscriber
// the writes leave in one sendmmsg (udpbatch.go) rather than a sendto
// each.
func (t *UpTrack) writeAll(subs []*DownTrack, pkt *bufpool.Packet, f *rtpFields, now int64) (out, bytes int) {
	if t.batch != nil && len(subs) > 1 {
		t.batch.begin()
		defer t.batch.end()
	}
	for _, d := range subs {
		if b := d.writeLive(pkt, f, now); b >= 0 {
			out++
			bytes += b
		}
	}
	return out, bytes
}
