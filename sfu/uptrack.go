package sfu

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/webrtc/v4"
)

// upTrack is one published track: a reader goroutine fans its packets out
// to every subscriber's down track.
type upTrack struct {
	id    string
	kind  string
	owner *Participant
	hist  history

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

// readLoop reads the publisher's packets until the track ends, and hands
// each to every subscriber's queue. It never blocks on a subscriber.
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

// forward hands the packet just read into pkt (n bytes) to every
// subscriber's queue and keeps it in the history. It takes over the
// caller's reference.
func (t *upTrack) forward(pkt *bufpool.Packet, n int, m *Metrics) {
	if n < 12 {
		pkt.Release()
		m.dropMalformed.Inc()
		return
	}
	pkt.SetLen(n)
	pkt.ReadAt = nanotime()
	m.PacketsIn.Inc()
	m.BytesIn.Add(float64(n))
	if t.muted.Load() {
		pkt.Release()
		return
	}
	if t.levelExt != 0 {
		if lv, ok := audioLevel(pkt.Bytes(), t.levelExt); ok {
			t.meter.update(lv, pkt.ReadAt)
		}
	}
	t.hist.put(binary.BigEndian.Uint16(pkt.Bytes()[2:]), pkt)
	for _, d := range *t.subs.Load() {
		d.sub.enqueue(queued{pkt: pkt, dt: d, rtxSeq: -1})
	}
	pkt.Release()
}
