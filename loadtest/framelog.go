package loadtest

import (
	"sort"
	"sync/atomic"

	"github.com/lianmai/relay/internal/opusgen"
)

// frameLog is one publisher's record of what it sent, shared in-process
// with every receiver: the send time of each 10 ms frame, by frame index
// k (k = 0 for the first frame), and whether the sending side dropped it
// (injected loss). A receiver finds k from a packet's RTP timestamp,
// which the relay forwards unchanged: k = (ts - ts0) / 480.
//
// Written only by the publisher's pacer, in frame order; read by any
// receiver at any time, lock-free. stamps is preallocated for the whole
// run, so it never moves.
type frameLog struct {
	id   string // the publisher's participant id: the RTP stream id its subscribers see
	room int
	ts0  uint32 // RTP timestamp of frame 0
	seq0 uint16 // RTP sequence number of frame 0

	stamps []atomic.Int64 // frame k: send ns << 1 | dropped; 0 until stamped
	n      atomic.Int64   // frames stamped: 0..n-1 are valid
	first  atomic.Int64   // send ns of frame 0, 0 before
	stop   atomic.Int64   // ns at which the publisher stopped, 0 while it runs

	hostHeard   atomic.Int64 // ns at which a host of the room first read a packet of it, 0 before
	remoteHeard atomic.Int64 // ns at which a host of another room (a linked one, scenario pk) first read a packet of it, 0 before

	// upLost is a bitset by frame index: the first transmission was lost on
	// the uplink (loss_at "network"), so a copy that arrives was repaired.
	// Set by the uplink before the loss could be noticed; read by receivers.
	upLost []atomic.Uint64
}

func newFrameLog(id string, room int, ts0 uint32, seq0 uint16, maxFrames int) *frameLog {
	return &frameLog{id: id, room: room, ts0: ts0, seq0: seq0, stamps: make([]atomic.Int64, maxFrames),
		upLost: make([]atomic.Uint64, (maxFrames+63)/64)}
}

// markUplinkLost records that frame k's first transmission was lost on the
// uplink.
func (l *frameLog) markUplinkLost(k int64) {
	if k >= 0 && k < int64(len(l.stamps)) {
		l.upLost[k/64].Or(1 << (k % 64))
	}
}

// uplinkLost says whether frame k's first transmission was lost on the
// uplink.
func (l *frameLog) uplinkLost(k int64) bool {
	if k < 0 || k >= int64(len(l.stamps)) {
		return false
	}
	return l.upLost[k/64].Load()&(1<<(k%64)) != 0
}

// stamp records frame k (which must be n) as sent at ns, or dropped.
// False when the log is full.
func (l *frameLog) stamp(k int64, ns int64, dropped bool) bool {
	if k >= int64(len(l.stamps)) {
		return false
	}
	ns = max(ns, 1)
	v := ns << 1
	if dropped {
		v |= 1
	}
	l.stamps[k].Store(v)
	if k == 0 {
		l.first.Store(ns)
	}
	l.n.Store(k + 1)
	return true
}

// sent returns frame k's send time and whether the sender dropped it; ok
// is false if k has not been stamped (or is out of range).
func (l *frameLog) sent(k int64) (ns int64, dropped bool, ok bool) {
	if k < 0 || k >= int64(len(l.stamps)) {
		return 0, false, false
	}
	v := l.stamps[k].Load()
	if v == 0 {
		return 0, false, false
	}
	return v >> 1, v&1 == 1, true
}

// frameAt is frame k's send time (frameClock); a frame the sender
// dropped has one too.
func (l *frameLog) frameAt(k int64) (int64, bool) {
	ns, _, ok := l.sent(k)
	return ns, ok
}

// frameOf maps an RTP timestamp to a frame index. The relay may rebase
// sequence numbers (after a pause) but keeps timestamps, so the timestamp
// is the key; the sequence number is only checked (seqMatches).
func (l *frameLog) frameOf(ts uint32) int64 {
	return int64((ts - l.ts0) / opusgen.FrameSamples)
}

// seqMatches says whether seq is the sequence number frame k was sent
// with.
func (l *frameLog) seqMatches(k int64, seq uint16) bool {
	return seq == l.seq0+uint16(k)
}

// firstAtOrAfter returns the first stamped frame sent at or after ns, or
// n if none.
func (l *frameLog) firstAtOrAfter(ns int64) int64 {
	n := l.n.Load()
	return int64(sort.Search(int(n), func(i int) bool {
		t, _, _ := l.sent(int64(i))
		return t >= ns
	}))
}

// lastAtOrBefore returns the last stamped frame sent at or before ns, or
// -1 if none.
func (l *frameLog) lastAtOrBefore(ns int64) int64 {
	return l.firstAtOrAfter(ns+1) - 1
}

// droppedIn counts frames in [a, b] the sender dropped.
func (l *frameLog) droppedIn(a, b int64) int64 {
	var c int64
	for k := a; k <= b; k++ {
		if _, d, ok := l.sent(k); ok && d {
			c++
		}
	}
	return c
}
