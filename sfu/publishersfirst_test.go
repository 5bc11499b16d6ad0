package sfu

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// orderLog records, across participants, what happened in which order.
type orderLog struct {
	mu      sync.Mutex
	entries []string
}

func (l *orderLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, s)
}

// first is the index of the first entry with prefix, or -1.
func (l *orderLog) first(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.entries {
		if strings.HasPrefix(e, prefix) {
			return i
		}
	}
	return -1
}

// loggingSink is a participant's sink that logs every sub offer carrying
// stream (the guest's id, once known) before handing it on.
type loggingSink struct {
	*eventSink
	who    string
	log    *orderLog
	stream func() string
}

func (s *loggingSink) Send(ev Event) {
	if d, ok := ev.(DescriptionEvent); ok && d.PC == Sub && d.Type == webrtc.SDPTypeOffer {
		if id := s.stream(); id != "" && strings.Contains(d.SDP, "msid:"+id+" ") {
			s.log.add(s.who + " offered")
		}
	}
	s.eventSink.Send(ev)
}

// TestPublishersFirst: a new guest's track is offered to the host's sub
// connection first; the audience's offer follows only after the host has
// answered (the first packet reaches the host before the audience's
// renegotiation starts). A host that never answers holds the audience up
// for a moment only: the audience still gets the track.
func TestPublishersFirst(t *testing.T) {
	for _, hostAnswers := range []bool{true, false} {
		name := map[bool]string{true: "host answers", false: "host never answers"}[hostAnswers]
		t.Run(name, func(t *testing.T) {
			s := newLoopbackSFU(t, 10*time.Second)
			ctx, serving, done := servingContext()
			defer done()
			api := loopbackAPI(t)
			log := &orderLog{}
			var guestID string
			var idMu sync.Mutex
			stream := func() string {
				idMu.Lock()
				defer idMu.Unlock()
				return guestID
			}
			join := func(who string, role Role, serve bool) *testPeer {
				tp := newTestPeer(t, api)
				sink := &loggingSink{eventSink: newEventSink(), who: who, log: log, stream: stream}
				p, err := s.Join(JoinParams{Room: "first", Name: who, Role: role, Sink: sink})
				if err != nil {
					t.Fatal(err)
				}
				tp.p = p
				answer := func(sdp string) bool {
					if serve && stream() != "" && strings.Contains(sdp, "msid:"+stream()+" ") {
						log.add(who + " answering")
					}
					return serve
				}
				serving.Go(func() { tp.serveEvents(ctx, sink.events, sink, answer, nil) })
				return tp
			}
			join("host", RoleHost, hostAnswers)
			aud := join("audience", RoleAudience, true)
			guest := join("guest", RoleGuest, true)
			idMu.Lock()
			guestID = guest.p.ID()
			idMu.Unlock()

			track, err := webrtc.NewTrackLocalStaticRTP(media.Opus.RTPCodecCapability, "audio", "g")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := guest.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
			guest.offerPub(guest.p.sink.current(), false)
			defer sendPackets(ctx, track)()

			select {
			case <-aud.tracks:
			case <-ctx.Done():
				t.Fatal("the audience never got the guest's track")
			}
			if !hostAnswers {
				return // the host's first offer is still outstanding: it never gets the track
			}
			h, a := log.first("host offered"), log.first("audience offered")
			if h < 0 || a < 0 {
				t.Fatalf("offers logged: host %d, audience %d; want both", h, a)
			}
			if h > a {
				t.Errorf("the audience was offered the track before the host")
			}
			{
				if ans := log.first("host answering"); ans < 0 || ans > a {
					t.Errorf("the audience's offer (entry %d) came before the host's answer (entry %d): the audience did not wait", a, ans)
				}
			}
		})
	}
}
