package sfu

import (
	"sync"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// slotClock keeps a slot's stream continuous across the tracks it
// carries. Each down track numbers its packets after its publisher's
// stream, so a new track in the slot would jump by thousands of sequence
// numbers on the same SSRC: the player's SRTP context guesses the wrong
// rollover counter and drops every packet as unauthentic (seen in
// TestWHEPTracks). So each track's packets continue where the last one
// stopped: sequence + 1, timestamp + the time elapsed.
type slotClock struct {
	mu      sync.Mutex
	started bool // guarded by mu, as the rest
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
}

// slotGen is one track's time in a slot: the writer its down track is
// bound to, adding the offsets from its numbering to the slot's. Its
// down track's reader (live packets) and RTCP reader (retransmissions)
// both write through it.
type slotGen struct {
	clock   *slotClock
	w       webrtc.TrackLocalWriter // pion's, of the slot's m-section; set before the down track is bound
	started bool                    // guarded by clock.mu, as the offsets
	seqOff  uint16
	tsOff   uint32
}

// minGapTicks is the least the timestamps of the next track advance: one
// 2.5 ms Opus frame, so that its first packet never repeats the last one's
// timestamp.
const minGapTicks = 120

// WriteRTP implements webrtc.TrackLocalWriter. h is the caller's (the
// down track's) and rewritten in place.
func (g *slotGen) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	c := g.clock
	now := time.Now()
	c.mu.Lock()
	if !g.started {
		g.started = true
		if c.started {
			g.seqOff = c.lastSeq + 1 - h.SequenceNumber
			elapsed := max(uint32(now.Sub(c.lastAt).Seconds()*float64(media.Opus.ClockRate)), minGapTicks)
			g.tsOff = c.lastTS + elapsed - h.Timestamp
		}
	}
	h.SequenceNumber += g.seqOff
	h.Timestamp += g.tsOff
	if !c.started || h.SequenceNumber-c.lastSeq < 0x8000 { // a retransmission of an older one does not move it
		c.started, c.lastSeq, c.lastTS, c.lastAt = true, h.SequenceNumber, h.Timestamp, now
	}
	c.mu.Unlock()
	return g.w.WriteRTP(h, payload)
}

// Write implements webrtc.TrackLocalWriter; down tracks write headers
// and payloads (WriteRTP) only.
func (g *slotGen) Write(b []byte) (int, error) { return g.w.Write(b) }

// rebaseNACKs turns the player's NACKs, in the slot's numbering, into
// the down track's.
func (g *slotGen) rebaseNACKs(pkts []rtcp.Packet) {
	g.clock.mu.Lock()
	off := g.seqOff
	g.clock.mu.Unlock()
	for _, p := range pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok {
			for i := range n.Nacks {
				n.Nacks[i].PacketID -= off
			}
		}
	}
}

// genContext is the slot's binding as one track's down track sees it:
// the same SSRC and codecs, written through the track's slotGen.
type genContext struct {
	webrtc.TrackLocalContext
	gen *slotGen
}

func (c genContext) WriteStream() webrtc.TrackLocalWriter { return c.gen }
