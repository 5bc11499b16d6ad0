package sfu

import (
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/lianmai/relay/media"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// slot is one sending audio m-section of a sub connection the client
// offered (SubAnswered). Such a connection is never renegotiated, so the
// room's tracks come and go inside the slot: the slot is the m-section's
// webrtc.TrackLocal, bound once by pion, and binds the down track it
// carries to that same binding (same SSRC and payload type). The
// subscriber's RTCP for the m-section is read once, by the slot, and
// handed to the down track it carries.
type slot struct {
	id  string
	log *slog.Logger

	mu    sync.Mutex
	bound webrtc.TrackLocalContext // set by Bind, nil after Unbind
	down  *media.DownTrack         // the track carried; nil while empty
	up    *media.UpTrack           // down's published track
	gate  *media.Gate              // down's gate (remote.go); nil for the room's own tracks
	feed  *rtcpFeed                // down's RTCP; nil while empty
	gen   *slotGen                 // down's writer; nil while empty
	clock slotClock                // the numbering across the tracks carried
	ended bool                     // the sender's RTCP ended: feeds end at once
}

// errNoOpus: the client's offer has no Opus in an audio m-section.
var errNoOpus = errors.New("the client did not accept Opus in this audio m-section")

func newSlot(id string, log *slog.Logger) *slot { return &slot{id: id, log: log} }

// ID, StreamID, RID and Kind implement webrtc.TrackLocal. The slot, not
// the tracks it carries, is what the client sees: one stream, "relay".
func (s *slot) ID() string                { return s.id }
func (s *slot) StreamID() string          { return "relay" }
func (s *slot) RID() string               { return "" }
func (s *slot) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// Bind implements webrtc.TrackLocal: the track carried, if any, is bound
// to the m-section now, and every later one when it comes.
func (s *slot) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var opus *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == media.Opus.MimeType {
			opus = &c
			break
		}
	}
	if opus == nil {
		return webrtc.RTPCodecParameters{}, errNoOpus
	}
	s.bound = ctx
	if s.down != nil {
		if _, err := s.bindLocked(); err != nil {
			return webrtc.RTPCodecParameters{}, err
		}
	}
	return *opus, nil
}

// Unbind implements webrtc.TrackLocal.
func (s *slot) Unbind(ctx webrtc.TrackLocalContext) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		_ = s.down.Unbind(ctx)
	}
	s.bound = nil
	return nil
}

// start reads the subscriber's RTCP from sender, the slot's m-section,
// in a goroutine that ends when the sender stops (its connection closed).
func (s *slot) start(sender *webrtc.RTPSender) {
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				s.mu.Lock()
				s.ended = true
				if s.feed != nil {
					s.feed.end()
				}
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			f, g := s.feed, s.gen
			s.mu.Unlock()
			if f != nil {
				g.rebaseNACKs(pkts)
				f.push(pkts)
			}
		}
	}()
}

// track is the published track the slot carries, with its gate; nil
// while empty.
func (s *slot) track() (*media.UpTrack, *media.Gate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.gate
}

// assign makes the slot carry up through gate (nil for none), in place
// of what it carried.
func (s *slot) assign(up *media.UpTrack, gate *media.Gate, onFirst func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	s.gate = gate
	d := media.NewDownTrack(up, media.DownTrackParams{OnFirstPacket: onFirst, Gate: gate})
	f := &rtcpFeed{ch: make(chan []rtcp.Packet, rtcpFeedDepth), done: make(chan struct{})}
	if s.ended {
		f.end()
	}
	s.down, s.up, s.feed, s.gen = d, up, f, &slotGen{clock: &s.clock}
	if s.bound != nil {
		if _, err := s.bindLocked(); err != nil {
			s.log.Error("bind a track to its slot", "slot", s.id, "track", up.ID(), "err", err)
		}
	}
	d.Subscribe(f) // false if up just ended: the sync that follows empties the slot
}

// clear empties the slot.
func (s *slot) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

func (s *slot) clearLocked() {
	if s.down == nil {
		return
	}
	s.down.Unsubscribe()
	if s.bound != nil {
		_ = s.down.Unbind(s.bound)
	}
	s.feed.end()
	s.down, s.up, s.gate, s.feed, s.gen = nil, nil, nil, nil, nil
}

// bindLocked binds the track carried to the slot's binding, through its
// slotGen. mu must be held, with bound and down set.
func (s *slot) bindLocked() (webrtc.RTPCodecParameters, error) {
	s.gen.w = s.bound.WriteStream()
	return s.down.Bind(genContext{TrackLocalContext: s.bound, gen: s.gen})
}

// rtcpFeedDepth is how many RTCP compounds wait for a slot's down track;
// more are dropped (the down track only serves NACKs from them, and the
// subscriber asks again).
const rtcpFeedDepth = 16

// rtcpFeed hands a slot's RTCP to the down track it carries
// (media.RTCPReader); ReadRTCP fails once the feed has ended, which ends
// the down track's RTCP reader.
type rtcpFeed struct {
	ch      chan []rtcp.Packet // written by the slot's reader, never closed
	done    chan struct{}      // closed by end
	endOnce sync.Once
}

func (f *rtcpFeed) push(pkts []rtcp.Packet) {
	select {
	case f.ch <- pkts:
	default:
	}
}

func (f *rtcpFeed) end() { f.endOnce.Do(func() { close(f.done) }) }

// ReadRTCP implements media.RTCPReader.
func (f *rtcpFeed) ReadRTCP() ([]rtcp.Packet, interceptor.Attributes, error) {
	select {
	case <-f.done:
		return nil, nil, io.EOF
	case pkts := <-f.ch:
		return pkts, nil, nil
	}
}
