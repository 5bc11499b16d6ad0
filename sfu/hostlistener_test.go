package sfu

import (
	"context"
	"sync"
	"testing"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// hostListener is a room "r" with a host publishing one Opus track and an
// audience listener, both stock pion peers served until ctx ends.
type hostListener struct {
	host, listener         *testPeer
	hostSink, listenerSink *eventSink
	track                  *webrtc.TrackLocalStaticRTP
}

// joinHostListener joins the host and the listener to s and offers the
// host's pub; the serve goroutines run on serving.
func joinHostListener(ctx context.Context, t *testing.T, s *SFU, serving *sync.WaitGroup) hostListener {
	t.Helper()
	api := loopbackAPI(t)
	join := func(name string, role Role, sink *eventSink) *testPeer {
		tp := newTestPeer(t, api)
		// Join queues joined and the first sub offer before it returns;
		// serve them once tp.p is set.
		p, err := s.Join(JoinParams{Room: "r", Name: name, Role: role, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		tp.p = p
		serving.Go(func() { tp.serve(ctx, sink) })
		return tp
	}
	hl := hostListener{hostSink: newEventSink(), listenerSink: newEventSink()}
	hl.host = join("host", RoleHost, hl.hostSink)
	hl.listener = join("listener", RoleAudience, hl.listenerSink)
	track, err := webrtc.NewTrackLocalStaticRTP(media.Opus.RTPCodecCapability, "audio", "host")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hl.host.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	hl.host.offerPub(hl.hostSink, false)
	hl.track = track
	return hl
}
