package mix

// The per-input jitter buffer. It orders packets by RTP sequence number and
// hands the mixer one action per tick: play a packet, recover a lost one
// from the next packet's FEC, conceal, or contribute nothing.
//
// Depth is counted in packets (10 ms frames: the relay negotiates
// ptime 10) from the next one to play to the newest buffered. It adapts
// between 1 and maxDepth:
//   - it grows by itself: when a tick finds the buffer empty (the packet is
//     late), the frame is concealed and the packet is not given up; it
//     plays one tick later, so the buffer now holds one frame more;
//   - it shrinks when it was at least 2 at every tick of a window of
//     shrinkWindow ticks: one frame is dropped (DropDrift);
//   - it never exceeds maxDepth: the oldest frames are dropped
//     (DropOverflow).
//
// The same two rules absorb clock drift: a publisher slower than the
// mixer's clock runs the buffer empty now and then (one concealed frame
// each time), a faster one fills it (one frame dropped per window).
//
// After plcTail empty ticks in a row the input is idle: it contributes
// nothing and costs no decode until a packet arrives; then play resumes
// at the oldest packet buffered.
//
// Not safe for concurrent use; Input guards it with its mutex.

const (
	ringSize     = 8 // slots; a power of two above maxDepth, for reordering
	ringMask     = ringSize - 1
	maxDepth     = 4   // frames, 40 ms
	shrinkWindow = 100 // ticks (1 s) of depth >= 2 before one frame is dropped
	plcTail      = 3   // concealed frames after the last packet before silence
	// resyncBehind: a packet this far behind the play position is not late
	// but a new sequence (a restarted sender): the buffer starts over on it.
	resyncBehind = 64
	// maxPayload is a slot's size: an RTP payload in a 1500-byte datagram.
	maxPayload = 1500 - 12
)

// action is what the mixer does for an input in one tick.
type action uint8

const (
	actNothing action = iota // no packet for a while (or never): contributes nothing
	actPlay                  // decode the payload
	actFEC                   // the frame is lost; the payload is the next packet: decode its FEC
	actConceal               // the frame is missing: packet loss concealment
)

type slot struct {
	seq   uint16
	valid bool
	n     int
	buf   [maxPayload]byte
}

type jitterBuffer struct {
	slots   [ringSize]slot
	started bool   // a packet arrived since the start or the last reset
	next    uint16 // sequence number to play next
	newest  uint16 // newest sequence number buffered (or played)
	empty   int    // ticks in a row that found nothing to play
	winMin  int    // smallest depth in the current shrink window
	winLen  int    // ticks in the current shrink window
	dropped uint64 // packets dropped, for Input.Stats
	m       *Metrics
}

// drop counts one packet dropped for reason r.
func (j *jitterBuffer) drop(r DropReason) {
	j.dropped++
	j.m.drops[r].Inc()
}

func newJitterBuffer(m *Metrics) *jitterBuffer {
	j := &jitterBuffer{m: m}
	j.reset()
	return j
}

// reset forgets every packet: the next push starts a new sequence.
func (j *jitterBuffer) reset() {
	for i := range j.slots {
		j.slots[i].valid = false
	}
	j.started = false
	j.empty = plcTail // idle: nothing to conceal after a reset
	j.winMin, j.winLen = maxDepth, 0
}

// idle reports whether the input has had nothing to play for longer than
// the concealment tail.
func (j *jitterBuffer) idle() bool { return j.empty >= plcTail }

// depth is how many frames are buffered from next to the newest, holes
// included.
func (j *jitterBuffer) depth() int {
	if !j.started {
		return 0
	}
	d := int(int16(j.newest-j.next)) + 1
	return max(d, 0)
}

// push buffers one payload (copied). Empty payloads (RTP padding) are
// ignored.
func (j *jitterBuffer) push(seq uint16, payload []byte) {
	if len(payload) == 0 {
		return
	}
	if len(payload) > maxPayload {
		j.drop(DropTooLarge)
		return
	}
	if !j.started {
		j.start(seq)
	} else {
		switch d := int(int16(seq - j.next)); {
		case d < -resyncBehind:
			j.restart(seq)
		case d < 0:
			j.drop(DropLate)
			return
		case d >= ringSize:
			// Far ahead: a burst lost or a sequence jump. Start over here.
			j.restart(seq)
		}
	}
	s := &j.slots[seq&ringMask]
	if s.valid {
		if s.seq == seq {
			j.drop(DropDuplicate)
			return
		}
		// An older frame still in the slot is outside the window now.
		j.drop(DropOverflow)
	}
	s.seq, s.valid, s.n = seq, true, copy(s.buf[:], payload)
	if int16(seq-j.newest) > 0 {
		j.newest = seq
	}
}

func (j *jitterBuffer) start(seq uint16) {
	j.started = true
	j.next, j.newest = seq, seq
}

// restart drops what is buffered (counted as overflow) and starts at seq.
func (j *jitterBuffer) restart(seq uint16) {
	for i := range j.slots {
		if j.slots[i].valid {
			j.slots[i].valid = false
			j.drop(DropOverflow)
		}
	}
	j.start(seq)
}

// dropNext gives up the frame at next (played or not) and moves on.
func (j *jitterBuffer) dropNext(r DropReason) {
	s := &j.slots[j.next&ringMask]
	if s.valid && s.seq == j.next {
		s.valid = false
		j.drop(r)
	}
	j.next++
}

// at returns the slot holding seq, or nil.
func (j *jitterBuffer) at(seq uint16) *slot {
	s := &j.slots[seq&ringMask]
	if s.valid && s.seq == seq {
		return s
	}
	return nil
}

// pop decides this tick's action. For actPlay and actFEC it copies the
// payload to decode into dst and returns its length.
func (j *jitterBuffer) pop(dst []byte) (action, int) {
	d := j.depth()
	if d == 0 {
		// Nothing to play: the packet is late or the publisher paused.
		// Keep next: a late packet still plays.
		j.winMin, j.winLen = 0, j.winLen+1
		if j.winLen >= shrinkWindow {
			j.winMin, j.winLen = maxDepth, 0
		}
		if j.idle() {
			return actNothing, 0
		}
		j.empty++
		return actConceal, 0
	}
	if j.idle() && j.at(j.next) == nil {
		// Back from silence with a hole first: start at the oldest packet
		// rather than conceal what nobody heard.
		for i := 0; i < ringSize && j.at(j.next) == nil; i++ {
			j.next++
		}
		d = j.depth()
	}
	for ; d > maxDepth; d-- {
		j.dropNext(DropOverflow)
	}
	j.winMin, j.winLen = min(j.winMin, d), j.winLen+1
	if j.winLen >= shrinkWindow {
		if j.winMin >= 2 && d >= 2 {
			j.dropNext(DropDrift)
			d--
		}
		j.winMin, j.winLen = maxDepth, 0
	}
	j.empty = 0
	if s := j.at(j.next); s != nil {
		s.valid = false
		j.next++
		return actPlay, copy(dst, s.buf[:s.n])
	}
	// Lost: later packets are here but not this one.
	j.next++
	if s := j.at(j.next); s != nil {
		return actFEC, copy(dst, s.buf[:s.n]) // stays buffered: it plays next tick
	}
	return actConceal, 0
}
