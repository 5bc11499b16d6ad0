package sfu

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/webrtc/v4"
)

// upTrack is one published track: a reader goroutine writes its packets
// to every subscriber's down track.
type upTrack struct {
	id    string
	kind  string
	owner *Participant
	hist  history

	batch    *udpBatch   // the relay's UDP write batching, nil without
	muted    atomic.Bool // set under room.mu; the reader drops everything while set
	levelExt uint8       // the audio level extension's id on pub, 0 if not negotiated
	meter    levelMeter

	// subs is the fan-out list, replaced whole (copy on write) under mu so
	// that the reader takes it with one atomic load per packet.
	subs   atomic.Pointer[[]*downTrack]
	mu     sync.Mutex
	closed bool // guarded by mu; no subscriber is added after close
}

func newUpTrack(owner *Participant, kind string) *upTrack {
	t := &upTrack{id: newID("t_"), kind: kind, owner: owner}
	if owner.sfu != nil {
		t.batch = batchOf(owner.sfu.cfg.ICE.UDPMux)
	}
	t.subs.Store(&[]*downTrack{})
	return t
}

func (t *upTrack) info() TrackInfo { return TrackInfo{ID: t.id, Kind: t.kind} }

// addSubscriber adds d to the fan-out; false if the track has ended.
func (t *upTrack) addSubscriber(d *downTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	subs := append(slices.Clone(*t.subs.Load()), d)
	t.subs.Store(&subs)
	return true
}

// removeSubscriber takes d out of the fan-out at once.
func (t *upTrack) removeSubscriber(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.subs.Load()
	i := slices.Index(old, d)
	if i < 0 {
		return
	}
	subs := slices.Delete(slices.Clone(old), i, i+1)
	t.subs.Store(&subs)
}

// close stops the fan-out; packets already queued still go out.
func (t *upTrack) close() {
	t.mu.Lock()
	t.closed = true
	t.subs.Store(&[]*downTrack{})
	t.mu.Unlock()
}

// readLoop reads the publisher's packets until the track ends, and writes
// each to every subscriber.
func (t *upTrack) readLoop(remote *webrtc.TrackRemote, m *Metrics) {
	defer t.hist.clear()
	for {
		pkt := bufpool.Get()
		n, _, err := remote.Read(pkt.Buf())
		if err != nil {
			pkt.Release()
			return
		}
		t.forward(pkt, n, m)
	}
}

// forward writes the packet just read into pkt (n bytes) to every
// subscriber and keeps it in the history. It takes over the caller's
// reference.
//
// The writes are inline, one after the other, rather than handed to a
// writer goroutine per subscriber: a write to a UDP peer does not block on
// that peer (every peer shares the one UDP socket), and the hand-off cost
// more than the write (a goroutine wake-up per packet per subscriber;
// docs/performance.md has the figures).
func (t *upTrack) forward(pkt *bufpool.Packet, n int, m *Metrics) {
	if n < 12 {
		pkt.Release()
		m.dropMalformed.Inc()
		return
	}
	pkt.SetLen(n)
	now := nanotime()
	pkt.ReadAt = now
	m.PacketsIn.Inc()
	m.BytesIn.Add(float64(n))
	if t.muted.Load() {
		pkt.Release()
		return
	}
	if t.levelExt != 0 {
		if lv, ok := audioLevel(pkt.Bytes(), t.levelExt); ok {
			t.meter.update(lv, now)
		}
	}
	t.hist.put(binary.BigEndian.Uint16(pkt.Bytes()[2:]), pkt)
	out, bytes := t.writeAll(*t.subs.Load(), pkt, now)
	// Counted once per packet, not per subscriber: the counters are
	// atomics every reader shares.
	if out > 0 {
		m.PacketsOut.Add(float64(out))
		m.BytesOut.Add(float64(bytes))
	}
	pkt.Release()
}

// writeAll writes pkt to every one of subs, and returns how many packets
// and payload bytes went out. With more than one subscriber the writes
// leave in one sendmmsg (udpbatch.go) rather than a sendto each.
func (t *upTrack) writeAll(subs []*downTrack, pkt *bufpool.Packet, now int64) (out, bytes int) {
	if t.batch != nil && len(subs) > 1 {
		t.batch.begin()
		defer t.batch.end()
	}
	for _, d := range subs {
		if b := d.writeLive(pkt, now); b >= 0 {
			out++
			bytes += b
		}
	}
	return out, bytes
}
