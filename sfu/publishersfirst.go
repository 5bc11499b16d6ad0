package sfu

import (
	"sync"
	"time"

	"github.com/lianmai/relay/media"
)

// Publishers first: when a track is published, the room's other hosts and
// guests get it on their sub connections at once, and the audience once
// every one of them has received its first packet (or after
// publishersFirstWait). A renegotiation costs the relay about 0.3 ms of
// CPU; fifty listeners' at once kept the relay's only core busy for about
// 14 ms in the load generator's mic scenario, and the host's answer, then
// the track's next packet, waited behind them (Go polls the network when
// it has nothing else to run, or every 10 ms). A co-streamer who just went
// on the mic is heard first by those who talk with it; the audience a
// round trip later.

// publishersFirstWait bounds how long the audience waits for the
// publishers (a publisher that never answers, a muted track that sends
// nothing).
const publishersFirstWait = 100 * time.Millisecond

// syncWave holds the audience's renegotiation for a new track until the
// publishers have its first packet.
type syncWave struct {
	room *Room
	up   *media.UpTrack

	mu      sync.Mutex
	timer   *time.Timer               // the publishersFirstWait bound
	waiting map[*Participant]struct{} // publishers without the track's first packet yet
	later   []*Participant            // renegotiated on release; nil once released
}

// syncNewTrackLocked asks everyone but p to receive p's new track up:
// the publishers now, the others when the wave is released. room.mu must
// be held.
func (r *Room) syncNewTrackLocked(p *Participant, up *media.UpTrack) {
	var waiting map[*Participant]struct{}
	var later []*Participant
	for _, q := range r.participants {
		switch {
		case q == p:
		case q.role.publishes() && q.offersSub:
			if waiting == nil {
				waiting = make(map[*Participant]struct{})
			}
			waiting[q] = struct{}{}
			q.requestSync()
		default:
			later = append(later, q)
		}
	}
	if len(waiting) == 0 || len(later) == 0 {
		for _, q := range later {
			q.requestSync()
		}
		return
	}
	w := &syncWave{room: r, up: up, waiting: waiting, later: later}
	w.mu.Lock()
	w.timer = time.AfterFunc(publishersFirstWait, w.release)
	w.mu.Unlock()
	r.waves.Store(up, w)
}

// firstPacketHook is the OnFirstPacket of q's down track of up: the join
// latency, and the wave up may be waiting on.
func (q *Participant) firstPacketHook(up *media.UpTrack) func() {
	return func() {
		q.firstMediaWritten()
		if w, ok := q.room.waves.Load(up); ok {
			w.(*syncWave).heard(q)
		}
	}
}

// heard: publisher q has the track's first packet. Called by the track's
// reader: it must not block.
func (w *syncWave) heard(q *Participant) {
	w.mu.Lock()
	delete(w.waiting, q)
	done := len(w.waiting) == 0
	w.mu.Unlock()
	if done {
		go w.release() // not on the packet path: it starts a renegotiation per listener
	}
}

// release renegotiates the audience's sub connections; only the first
// call does anything.
func (w *syncWave) release() {
	w.mu.Lock()
	later, timer := w.later, w.timer
	w.later = nil
	w.mu.Unlock()
	if later == nil {
		return
	}
	timer.Stop()
	w.room.waves.CompareAndDelete(w.up, w)
	for _, q := range later {
		q.requestSync()
	}
}
