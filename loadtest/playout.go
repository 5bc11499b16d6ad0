package loadtest

import "github.com/lianmai/relay/internal/opusgen"

// frameDecoder is what the playout needs of an Opus decoder
// (*opusgen.Decoder); tests substitute a counter.
type frameDecoder interface {
	Decode(payload []byte) (int, error)
	Conceal() error
}

var _ frameDecoder = (*opusgen.Decoder)(nil)

const (
	playoutSlots = 32   // frames held ahead of the play point: 320 ms, far beyond the deadline
	maxPayload   = 1500 // bytes; an RTP payload never exceeds the MTU
)

// frameClock gives each frame of a stream its reference time: for a
// publisher's stream the time the publisher sent it (frameLog), for the
// audience mix the time it is due on the mix's own RTP clock (mixStats).
// A listener plays frame k at its reference time + playoutDeadline.
type frameClock interface {
	// frameAt returns frame k's reference time, ns since epoch; ok is
	// false for a frame not known (yet).
	frameAt(k int64) (ns int64, ok bool)
}

// playout plays one stream as a listener's jitter buffer would: frame k
// is played at its reference time (frameClock) + playoutDeadline, decoded
// if it arrived by then and concealed with the decoder's loss concealment
// if not. It is the stutter measurement for the sampled receivers, with
// real decoding; streamStats and mixStats count the same thing without
// decoding for everyone.
//
// Playing is driven by arrivals (no timer): when a packet arrives at t,
// every frame whose deadline passed before t is played first. The result
// depends only on arrival times, not on when the bookkeeping runs.
//
// Owned by the stream's reader goroutine.
type playout struct {
	clk frameClock
	dec frameDecoder
	run *window
	own *window

	next  int64 // the next frame to play; -1 before the first arrival
	first int64 // the first frame played
	slots [playoutSlots]slot

	decoded   uint64 // in-window frames played from a received payload
	concealed uint64 // in-window frames concealed: missing, late or dropped by the sender
	errors    uint64 // decoder failures (counted as concealed too)
}

type slot struct {
	k   int64 // frame held, -1 for none
	n   int
	buf [maxPayload]byte
}

func newPlayout(clk frameClock, dec frameDecoder, run, own *window) *playout {
	p := &playout{clk: clk, dec: dec, run: run, own: own, next: -1}
	for i := range p.slots {
		p.slots[i].k = -1
	}
	return p
}

// arrive takes frame k's payload, arrived at now.
func (p *playout) arrive(k, now int64, payload []byte) {
	if p.next < 0 {
		p.next, p.first = k, k
	}
	p.advance(now)
	if k < p.next || len(payload) > maxPayload {
		return // its deadline passed (late), or it was played already (duplicate)
	}
	if k-p.next >= playoutSlots {
		p.playThrough(k - playoutSlots)
	}
	s := &p.slots[k%playoutSlots]
	s.k, s.n = k, copy(s.buf[:], payload)
}

// advance plays every frame whose deadline is before now.
func (p *playout) advance(now int64) {
	for {
		at, ok := p.clk.frameAt(p.next)
		if !ok || at+playoutDeadline >= now {
			return
		}
		p.play(p.next)
		p.next++
	}
}

// playThrough plays every frame up to and including k, deadline or not.
func (p *playout) playThrough(k int64) {
	for p.next >= 0 && p.next <= k {
		p.play(p.next)
		p.next++
	}
}

// finish plays the rest of the window, through frame last.
func (p *playout) finish(last int64) { p.playThrough(last) }

func (p *playout) play(k int64) {
	s := &p.slots[k%playoutSlots]
	ok := s.k == k
	s.k = -1
	var err error
	if ok {
		_, err = p.dec.Decode(s.buf[:s.n])
	}
	if !ok || err != nil {
		if err != nil {
			p.errors++
		}
		if cerr := p.dec.Conceal(); cerr != nil {
			p.errors++
		}
		ok = false
	}
	at, known := p.clk.frameAt(k)
	if !known || !contains(at, p.run, p.own) {
		return
	}
	if ok {
		p.decoded++
	} else {
		p.concealed++
	}
}
