package media

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/peerpair"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// sdpValue is the value of the first "a=name:" line of sdp.
func sdpValue(t *testing.T, sdp, name string) string {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a="+name+":"); ok {
			return v
		}
	}
	t.Fatalf("no a=%s in\n%s", name, sdp)
	return ""
}

// TestTakeOverPion: a stock pion listener on the direct path, its
// connection taken over by the relay and the relay's pion connection
// closed: the listener keeps hearing every frame byte for byte, its ICE
// checks are answered by the relay (its pair's responses keep counting,
// past its failure timeout), its connection stays up, and the relay's
// sender reports reach it through the relay's own SRTCP.
func TestTakeOverPion(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()

	mux, batch, m := shardedPortWith(t, ListenOptions{Direct: true, Readers: 1})
	defer mux.Close()
	var readers sync.WaitGroup
	defer readers.Wait()
	src, up, closePub := startPublisher(ctx, t, pionAPI(t, mux, false), batch, m, &readers)
	defer closePub()

	client, err := pionAPIWith(t, nil, true, func(se *webrtc.SettingEngine) {
		// Checks every 200 ms, failed after 2 s without an answer.
		se.SetICETimeouts(time.Second, 2*time.Second, 200*time.Millisecond)
	}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	relay, capture := relayWithCapture(t, mux)
	defer relay.Close()
	reports := NewReporter()
	defer reports.Close()
	sc := NewSubConn(SubConnParams{Batch: batch, Reports: reports, RTCP: relay})
	defer sc.Stop()
	d := NewDownTrack(up, DownTrackParams{Sub: sc})
	sender, err := relay.AddTrack(d)
	if err != nil {
		t.Fatal(err)
	}
	h := &heard{seen: map[uint16][]byte{}}
	var srs srLog
	client.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		readers.Go(func() { h.readFrom(tr) })
		readers.Go(func() { srs.readFrom(recv) })
	})
	if err := peerpair.Connect(ctx, relay, client); err != nil {
		t.Fatal(err)
	}
	useDirect(t, relay, capture, sc)
	d.Subscribe(sender)
	defer d.Unsubscribe()

	source, err := opusgen.NewSource(7, 2)
	if err != nil {
		t.Fatal(err)
	}
	pz := opusgen.NewPacketizer(111, 0x1234)
	before := sendFrames(ctx, t, src, source, pz, 50)
	waitHeard(ctx, t, []*heard{h}, len(before), func() string { return "before the takeover" })

	creds := ICECreds{
		LocalUfrag:  sdpValue(t, relay.LocalDescription().SDP, "ice-ufrag"),
		LocalPwd:    sdpValue(t, relay.LocalDescription().SDP, "ice-pwd"),
		RemoteUfrag: sdpValue(t, relay.RemoteDescription().SDP, "ice-ufrag"),
	}
	if err := sc.TakeOver(creds); err != nil {
		t.Fatal(err)
	}
	takenAt := Now()
	if err := relay.Close(); err != nil {
		t.Fatal(err)
	}
	after := sendFrames(ctx, t, src, source, pz, 300) // 3 s: past the listener's 2 s failure timeout
	waitHeard(ctx, t, []*heard{h}, len(before)+len(after), func() string { return "after the takeover" })
	checkHeard(t, []*heard{h}, append(before, after...), -1)
	if st := client.ICEConnectionState(); st != webrtc.ICEConnectionStateConnected {
		t.Errorf("the listener's ICE is %s after the takeover, want connected", st)
	}
	if st := client.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Errorf("the listener's connection is %s after the takeover, want connected", st)
	}
	if n := sc.checksAnswered(); n < 5 {
		t.Errorf("the relay answered %d of the listener's ICE checks in 3 s (one every 200 ms), want many", n)
	}
	if sc.LastHeard() <= takenAt {
		t.Error("the listener was not heard from after the takeover")
	}
	// Sender reports go on, through the relay's SRTCP: two that count
	// every packet, which only the relay could send (pion's connection
	// closed after 50).
	total := uint32(len(before) + len(after))
	a, b := srs.lastTwo(ctx, t, total)
	if b.NTPTime <= a.NTPTime {
		t.Errorf("sender reports' NTP times %d then %d: not advancing", a.NTPTime, b.NTPTime)
	}
}
