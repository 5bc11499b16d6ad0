package sfu

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// TestDirectSendResume: a listener's sub connection, which the relay
// offers, takes the direct send path (the relay derived its SRTP keys and
// its pair is UDP on the relay's port) and the listener's stock pion
// client decrypts the host's payloads; the listener then resumes with an
// ICE restart (its client gathers new sockets) and hears the host again,
// still on the direct path, now to its new address. With
// DisableDirectSend the same works on pion's path.
func TestDirectSendResume(t *testing.T) {
	for _, c := range []struct {
		name   string
		direct bool
		taken  bool // taken over from pion before the resume (takeover.go)
	}{{"direct", true, false}, {"taken", true, true}, {"pion", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the peers' cleanups
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			var serving sync.WaitGroup
			defer func() {
				cancel()
				serving.Wait()
			}()
			udp, err := media.ListenUDPWith("127.0.0.1:0", true, media.ListenOptions{Direct: c.taken})
			if err != nil {
				t.Fatal(err)
			}
			takeover := time.Hour // not within the test
			if c.taken {
				takeover = 100 * time.Millisecond
			}
			s, err := New(Config{ICE: ICEConfig{UDPMux: udp, Loopback: true}, Logger: slog.New(slog.DiscardHandler), DisableDirectSend: !c.direct,
				TakeoverAfter: takeover})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			hl := joinHostListener(ctx, t, s, &serving)
			listener, listenerSink, track := hl.listener, hl.listenerSink, hl.track
			payload := func(seq uint16) []byte { return []byte{0xfc, byte(seq), byte(seq >> 8), 7} }
			defer sendEvery10ms(ctx, track, payload)()

			var remote *webrtc.TrackRemote
			select {
			case remote = <-listener.tracks:
			case <-ctx.Done():
				t.Fatal("the listener got no track")
			}
			got := make(chan []byte, 4096)
			go func() {
				for {
					pkt, _, err := remote.ReadRTP()
					if err != nil {
						return
					}
					select {
					case got <- pkt.Payload:
					default:
					}
				}
			}()
			// hear checks that n payloads arrive, each one the host sent.
			hear := func(n int, what string) {
				t.Helper()
				for range n {
					select {
					case p := <-got:
						seq := uint16(p[1]) | uint16(p[2])<<8
						if !bytes.Equal(p, payload(seq)) {
							t.Fatalf("%s: payload % x, not one the host sent", what, p)
						}
					case <-ctx.Done():
						t.Fatalf("no audio at the listener %s", what)
					}
				}
			}
			direct := func() bool {
				listener.p.negMu.Lock()
				defer listener.p.negMu.Unlock()
				return listener.p.subConn.Direct()
			}
			hear(20, "before the resume")
			if direct() != c.direct {
				t.Fatalf("the listener's sub is direct: %v, want %v", direct(), c.direct)
			}
			if c.taken {
				waitUntil(ctx, t, "the listener's sub taken over", func() bool {
					listener.p.negMu.Lock()
					defer listener.p.negMu.Unlock()
					return listener.p.taken != nil
				})
				hear(20, "after the takeover")
			}
			subUfrag := iceUfrag(listener.sub.RemoteDescription().SDP)

			listener.p.Disconnected(listenerSink)
			newSink := newEventSink()
			if _, err := s.Resume(ResumeParams{Token: listener.p.ResumeToken(), Room: "r", Sink: newSink, RestartICE: true}); err != nil {
				t.Fatalf("resume: %v", err)
			}
			serving.Go(func() { listener.serve(ctx, newSink) })
			waitUntil(ctx, t, "the listener's sub restarted and connected", func() bool {
				rd := listener.sub.RemoteDescription()
				return rd != nil && iceUfrag(rd.SDP) != subUfrag && listener.sub.SignalingState() == webrtc.SignalingStateStable &&
					listener.sub.ConnectionState() == webrtc.PeerConnectionStateConnected
			})
			for len(got) > 0 { // what arrived before the restart
				<-got
			}
			hear(50, "after the ICE restart")
			if direct() != c.direct {
				t.Fatalf("after the restart the listener's sub is direct: %v, want %v", direct(), c.direct)
			}
			// Counted: the host's sub, the listener's, and the listener's
			// again after its restart; nothing with the direct path off.
			paths := s.cfg.Metrics.SendPaths
			wantDirect := 0.0
			if c.direct {
				wantDirect = 3
			}
			if c.taken {
				// The restart's pair is the relay's own: pion, closed, counts
				// nothing after the takeover.
				if n := testutil.ToFloat64(s.cfg.Metrics.Takeovers); n != 2 {
					t.Errorf("relay_sub_takeovers_total %v, want 2 (the host's sub and the listener's)", n)
				}
				return
			}
			if d, p := testutil.ToFloat64(paths.WithLabelValues(pathDirect)), testutil.ToFloat64(paths.WithLabelValues(pathPion)); d < wantDirect || (!c.direct && d != 0) || p != 0 {
				t.Errorf("relay_sub_send_path_total direct %v, pion %v; want direct at least %v, pion 0", d, p, wantDirect)
			}
		})
	}
}

// BenchmarkDirectSubAPI: what a sub connection's own pion API costs on
// top of the connection (directAPI.connAPI): a SettingEngine copy with
// the two DTLS hooks, and webrtc.NewAPI. Against the 2 ms of CPU per join.
func BenchmarkDirectSubAPI(b *testing.B) {
	a, err := newAPI(ICEConfig{Loopback: true}, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.direct.connAPI()
	}
}
