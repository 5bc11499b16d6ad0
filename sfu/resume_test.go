package sfu

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// eventSink collects a participant's events for a test.
type eventSink struct {
	events chan Event
	closed chan Reason
}

func newEventSink() *eventSink {
	return &eventSink{events: make(chan Event, 256), closed: make(chan Reason, 1)}
}

func (s *eventSink) Send(ev Event) {
	select {
	case s.events <- ev:
	default:
		panic("eventSink full")
	}
}

func (s *eventSink) Close(r Reason) { s.closed <- r }

// sendPackets writes a 10 ms packet to track until the returned stop is
// called (which waits for the sender).
func sendPackets(ctx context.Context, track *webrtc.TrackLocalStaticRTP) (stop func()) {
	return sendEvery10ms(ctx, track, func(uint16) []byte { return []byte{0xfc, 1, 2, 3} })
}

// testPeer is a client's pion peer connections, driven by hand.
type testPeer struct {
	t        *testing.T
	p        *Participant
	sub, pub *webrtc.PeerConnection
	tracks   chan *webrtc.TrackRemote
	others   chan Event // if not nil, serve passes on the events it does not apply
}

func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(media.Opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

func newTestPeer(t *testing.T, api *webrtc.API) *testPeer {
	t.Helper()
	tp := &testPeer{t: t, tracks: make(chan *webrtc.TrackRemote, 8)}
	var err error
	if tp.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	tp.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { tp.tracks <- tr })
	if tp.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tp.sub.Close()
		_ = tp.pub.Close()
	})
	return tp
}

// serve applies the relay's events from sink to the peer connections until
// ctx ends: sub offers are answered, candidates added.
func (tp *testPeer) serve(ctx context.Context, sink *eventSink) {
	tp.serveEvents(ctx, sink.events, sink, nil, tp.others)
}

// serveEvents is serve for the events of session from arriving on events:
// a sub offer is answered unless answer (if set) says no, and every other
// event goes to others (if set; dropped when it is full).
func (tp *testPeer) serveEvents(ctx context.Context, events <-chan Event, from Sink, answer func(sdp string) bool, others chan<- Event) {
	for {
		select {
		case ev := <-events:
			switch e := ev.(type) {
			case DescriptionEvent:
				if e.PC == Sub {
					if answer == nil || answer(e.SDP) {
						tp.answerSub(from, e.SDP)
					}
				} else if err := tp.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: e.SDP}); err != nil {
					tp.t.Errorf("set pub answer: %v", err)
				}
			case CandidateEvent:
				if e.Candidate == nil {
					continue
				}
				pc := tp.sub
				if e.PC == Pub {
					pc = tp.pub
				}
				if pc.RemoteDescription() == nil && answer != nil {
					continue // an offer answer declined: nothing to add it to
				}
				if err := pc.AddICECandidate(*e.Candidate); err != nil {
					tp.t.Errorf("add relay candidate: %v", err)
				}
			default:
				if others != nil {
					select {
					case others <- ev:
					default:
					}
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (tp *testPeer) answerSub(from Sink, sdp string) {
	// Once the participant has left, the relay closes its side and pion
	// closes this one: an offer still on the way can no longer be answered.
	fail := func(format string, err error) {
		if !tp.p.isGone() {
			tp.t.Errorf(format, err)
		}
	}
	if err := tp.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		fail("set sub offer: %v", err)
		return
	}
	answer, err := tp.sub.CreateAnswer(nil)
	if err != nil {
		fail("sub answer: %v", err)
		return
	}
	if err := tp.sub.SetLocalDescription(answer); err != nil {
		fail("set sub answer: %v", err)
		return
	}
	<-webrtc.GatheringCompletePromise(tp.sub) // candidates in the answer: no trickle needed
	if err := tp.p.Answer(from, tp.sub.LocalDescription().SDP); err != nil && !errors.Is(err, ErrClosed) {
		tp.t.Errorf("relay refused the sub answer: %v", err)
	}
}

// offerPub offers pub (with an ICE restart if asked) with candidates
// inline and hands it to the relay from session from.
func (tp *testPeer) offerPub(from Sink, restart bool) {
	tp.t.Helper()
	var opts *webrtc.OfferOptions
	if restart {
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	offer, err := tp.pub.CreateOffer(opts)
	if err != nil {
		tp.t.Fatal(err)
	}
	if err := tp.pub.SetLocalDescription(offer); err != nil {
		tp.t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(tp.pub)
	if err := tp.p.Offer(from, "o", tp.pub.LocalDescription().SDP); err != nil {
		tp.t.Fatalf("relay refused the pub offer: %v", err)
	}
	// serve applies the answer.
	for tp.pub.SignalingState() != webrtc.SignalingStateStable {
		time.Sleep(5 * time.Millisecond)
	}
}

// sendEvery10ms writes a packet with payload(seq) to track every 10 ms
// until ctx ends or the returned stop is called (which waits for the
// sender to return).
func sendEvery10ms(ctx context.Context, track *webrtc.TrackLocalStaticRTP, payload func(seq uint16) []byte) (stop func()) {
	sendCtx, cancel := context.WithCancel(ctx)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 480}, Payload: payload(seq)})
			select {
			case <-tick.C:
			case <-sendCtx.Done():
				return
			}
		}
	}()
	return func() { cancel(); <-sent }
}

func iceUfrag(sdp string) string {
	for l := range strings.Lines(sdp) {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// TestResumeICERestart: a host publishes to a listener through a real
// SFU; the host's session is replaced by a resume with ice_restart. The
// relay offers sub again with new ICE credentials on the same connection,
// accepts the host's pub offer with new credentials on the same
// connection, and audio flows to the listener before and after, on the
// same track. With direct ingest the ICE restart returns the pub
// connection to pion's receive path (its selected pair changes) and the
// audio goes on.
func TestResumeICERestart(t *testing.T) {
	t.Run("pion", func(t *testing.T) { testResumeICERestart(t, false) })
	t.Run("direct ingest", func(t *testing.T) { testResumeICERestart(t, true) })
}

func testResumeICERestart(t *testing.T, direct bool) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the peers' cleanups
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var serving sync.WaitGroup // the serve goroutines, done before the peers close
	defer func() {
		cancel()
		serving.Wait()
	}()

	udp, err := media.ListenUDPWith("127.0.0.1:0", true, media.ListenOptions{Direct: direct})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ICE: ICEConfig{UDPMux: udp, Loopback: true}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hl := joinHostListener(ctx, t, s, &serving)
	host, listener, hostSink, listenerSink, track := hl.host, hl.listener, hl.hostSink, hl.listenerSink, hl.track
	pubUfrag := iceUfrag(host.pub.RemoteDescription().SDP)

	// Send 10 ms packets until the test ends.
	defer sendPackets(ctx, track)()

	var remote *webrtc.TrackRemote
	select {
	case remote = <-listener.tracks:
	case <-ctx.Done():
		t.Fatal("the listener got no track")
	}
	got := make(chan uint16, 4096)
	go func() {
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			select {
			case got <- pkt.SequenceNumber:
			default:
			}
		}
	}()
	packets := func(n int, what string) {
		t.Helper()
		for range n {
			select {
			case <-got:
			case <-ctx.Done():
				t.Fatalf("no audio at the listener %s", what)
			}
		}
	}
	packets(20, "before the resume")
	directBefore := media.DirectOf(udp).Stats().Packets // 0 without direct ingest (a nil Direct)
	if direct && directBefore == 0 {
		t.Error("the host's packets did not take the direct path before the restart")
	}
	subUfrag := iceUfrag(host.sub.RemoteDescription().SDP)

	// The host's WebSocket "drops"; it comes back with its token, keeping
	// its peer connections.
	host.p.Disconnected(hostSink)
	newSink := newEventSink()
	p, err := s.Resume(ResumeParams{Token: host.p.ResumeToken(), Room: "r", Sink: newSink, RestartICE: true})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if p != host.p {
		t.Fatal("resume returned another participant")
	}
	select {
	case r := <-hostSink.closed:
		if r != ReasonReplaced {
			t.Errorf("old session closed with %q, want replaced", r)
		}
	default:
		t.Error("old session not closed")
	}
	serving.Go(func() { host.serve(ctx, newSink) }) // the old one keeps the old sink, now silent

	// The relay's restart offer arrives on the new sink and is answered on
	// the same sub connection; the host restarts ICE on pub.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(ctx, t, what, cond)
	}
	waitFor("a sub offer with new ICE credentials", func() bool {
		rd := host.sub.RemoteDescription()
		return rd != nil && iceUfrag(rd.SDP) != subUfrag && host.sub.SignalingState() == webrtc.SignalingStateStable
	})
	host.offerPub(newSink, true)
	if u := iceUfrag(host.pub.RemoteDescription().SDP); u == pubUfrag {
		t.Errorf("the relay's pub answer kept ICE ufrag %q: no ICE restart", u)
	}
	waitFor("both host connections connected again", func() bool {
		return host.sub.ConnectionState() == webrtc.PeerConnectionStateConnected &&
			host.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	for len(got) > 0 { // what arrived before the restart
		<-got
	}
	packets(50, "after the ICE restart")
	if n := media.DirectOf(udp).Stats().Packets - directBefore; direct && n < 30 {
		t.Errorf("%d of the 50 packets after the restart took the direct path, want most: the registration did not follow the new pair", n)
	}
	select {
	case tr := <-listener.tracks:
		t.Errorf("the listener got a new track %s: the resume should keep the old one", tr.ID())
	default:
	}
	for {
		select {
		case ev := <-listenerSink.events:
			switch e := ev.(type) {
			case ParticipantLeftEvent, TrackUnpublishedEvent:
				t.Errorf("the listener was told %+v about a resumed host", e)
			}
			continue
		default:
		}
		break
	}
}
