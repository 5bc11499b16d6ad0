package sfu

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/lianmai/relay/media"
)

// pkMirror shows each linked room's publishers in the other room as
// remote publishers (remote.go), with the source room's own tracks. A
// room records every change of its publishers under its own lock
// (mirrorLocked: non-blocking), and the mirror's goroutine applies them
// in order to the other room under that room's lock alone: no room lock
// is ever held while another is taken.
type pkMirror struct {
	log   *slog.Logger
	rooms [2]*Room // the linked rooms; set once

	mu    sync.Mutex // guards queue and stopped; a leaf, taken under Room.mu
	queue []mirrorOp
	wake  chan struct{} // one pending wake-up; never closed

	// Owned by run.
	remotes map[*Room]map[string]*Remote // by target room, then participant id
	done    chan struct{}                // closed when run returns
}

// opKind is what changed of a publisher.
type opKind int

const (
	opJoin      opKind = iota // a publisher came (joined, or an audience member went on the mic)
	opLeave                   // it went (left, or back to the audience)
	opPublish                 // it published track
	opUnpublish               // track ended
	opMute                    // its mute state changed
	opStop                    // the link ended: take every remote publisher out, and return
)

// mirrorOp is one change of a publisher of room from.
type mirrorOp struct {
	kind   opKind
	from   *Room
	id     string
	name   string         // opJoin
	muted  bool           // opJoin, opMute
	track  *media.UpTrack // opPublish, opUnpublish
	reason Reason         // opLeave
}

func newPKMirror(log *slog.Logger, a, b *Room) *pkMirror {
	return &pkMirror{log: log, rooms: [2]*Room{a, b}, wake: make(chan struct{}, 1),
		remotes: map[*Room]map[string]*Remote{a: {}, b: {}}, done: make(chan struct{})}
}

// mirrorLocked records a change of one of r's publishers for the room r
// is linked with, if any.
func (r *Room) mirrorLocked(op mirrorOp) {
	if r.mirror == nil {
		return
	}
	op.from = r
	r.mirror.push(op)
}

func (m *pkMirror) push(op mirrorOp) {
	m.mu.Lock()
	m.queue = append(m.queue, op)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// stop ends the mirror after what is queued: every remote publisher it
// made leaves with reason pk_ended.
func (m *pkMirror) stop() { m.push(mirrorOp{kind: opStop}) }

// run applies the queued changes until stop.
func (m *pkMirror) run() {
	defer close(m.done)
	for range m.wake {
		m.mu.Lock()
		ops := m.queue
		m.queue = nil
		m.mu.Unlock()
		for _, op := range ops {
			if op.kind == opStop {
				m.removeAll()
				return
			}
			m.apply(op)
		}
	}
}

// apply makes op's change in the other room. A target room that has ended
// is no error: the link's end follows.
func (m *pkMirror) apply(op mirrorOp) {
	target := m.rooms[0]
	if op.from == target {
		target = m.rooms[1]
	}
	remotes := m.remotes[target]
	x := remotes[op.id]
	var err error
	switch op.kind {
	case opJoin:
		if x != nil {
			return
		}
		x, err = target.AddRemote(RemoteParams{ID: op.id, Name: op.name, Role: RoleRemote, Room: op.from.name, Muted: op.muted})
		if err == nil {
			remotes[op.id] = x
		}
	case opLeave:
		if x != nil {
			x.Remove(op.reason)
			delete(remotes, op.id)
		}
	case opPublish:
		if x != nil {
			err = x.Publish(op.track)
		}
	case opUnpublish:
		if x != nil {
			x.Unpublish(op.track)
		}
	case opMute:
		if x != nil {
			x.SetMuted(op.muted)
		}
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		m.log.Error("mirror a linked room's publisher", "participant", op.id, "err", err)
	}
}

// removeAll takes every remote publisher the mirror made out of its room.
func (m *pkMirror) removeAll() {
	for _, remotes := range m.remotes {
		for _, x := range remotes {
			x.Remove(ReasonPKEnded)
		}
	}
	clear(m.remotes)
}
