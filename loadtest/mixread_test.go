package loadtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/peerpair"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestReadTakesTheMix sends a receiver two tracks over real pion peers on
// loopback, as the relay's sub connection would: the room's mix (stream
// id "mix", the mixer's own sequence numbers and timestamps, real Opus)
// and a track of a publisher this run did not start. The reader must
// measure the first as the mix, decoding it for the stutter sample, and
// drain the second as foreign: the foreign-track branch must not swallow
// the mix.
func TestReadTakesTheMix(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()

	r, err := newRunner(Scenario{Rooms: 1, Hosts: 1, Audience: 1}.WithDefaults(), Config{URL: "ws://127.0.0.1:1/ws"})
	if err != nil {
		t.Fatal(err)
	}
	r.win = newWindow(0, never)
	p := &participant{r: r, name: "a1", role: roleAudience, listen: ListenMix, decode: true, own: newWindow(0, never)}

	sender, receiver := loopbackPeer(t), loopbackPeer(t)
	defer func() { _ = sender.Close() }()
	defer func() { _ = receiver.Close() }()
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	mix, err := webrtc.NewTrackLocalStaticRTP(opus, "mix-track", mixStreamID)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := webrtc.NewTrackLocalStaticRTP(opus, "t1", "p_stranger")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{mix, foreign} {
		if _, err := sender.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	receiver.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		p.wg.Add(1)
		go p.read(&client.RemoteTrack{Track: tr, Receiver: rcv, StreamID: tr.StreamID(), TrackID: tr.ID()})
	})
	if err := peerpair.Connect(ctx, sender, receiver); err != nil {
		t.Fatal(err)
	}

	const frames = 60
	src, err := opusgen.NewSource(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	mixPk, foreignPk := opusgen.NewPacketizer(111, 1), opusgen.NewPacketizer(111, 2)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range frames {
		f, err := src.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		if err := mix.WriteRTP(mixPk.Packet(f)); err != nil {
			t.Fatal(err)
		}
		if err := foreign.WriteRTP(foreignPk.Packet(f)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("sending: deadline")
		}
	}
	// Loopback loses nothing: wait for every mix packet (only the mix's
	// reader counts live packets; the foreign drain does not) and for the
	// foreign track's reader, so that no reader starts after the wait.
	for r.live.packets.Load() < frames || r.foreignTracks.Load() < 1 {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%d of %d mix packets read before the deadline", r.live.packets.Load(), frames)
		}
	}
	_ = sender.Close()
	_ = receiver.Close()
	p.wg.Wait()

	streams, mixes := p.snapshotStreams()
	if len(mixes) != 1 || len(streams) != 0 || r.foreignTracks.Load() != 1 {
		t.Fatalf("%d mix streams, %d publisher streams, %d foreign tracks; want 1 0 1", len(mixes), len(streams), r.foreignTracks.Load())
	}
	m := mixes[0]
	last, _ := m.frameAt(frames - 1)
	r.win.end.Store(last) // the window ends with the last frame sent
	res := m.finish()
	if m.received != frames || res.lost != 0 || res.expectedPackets != frames || res.expectedFrames != frames || m.unknown != 0 || m.duplicates != 0 {
		t.Fatalf("received %d, lost %d of %d, %d frames expected, unknown %d, duplicates %d; want %d 0 %d %d 0 0",
			m.received, res.lost, res.expectedPackets, res.expectedFrames, m.unknown, m.duplicates, frames, frames, frames)
	}
	d := m.play
	if d == nil || d.decoded == 0 || d.errors != 0 || int64(d.decoded+d.concealed) != res.expectedFrames || int64(d.concealed) != res.stutter {
		t.Fatalf("decoded sample %+v against %d frames expected, stutter %d", d, res.expectedFrames, res.stutter)
	}
	t.Logf("%d frames expected, %d decoded, %d concealed, lateness max %.2f ms", res.expectedFrames, d.decoded, d.concealed, float64(m.lateness.Max())/1e6)
}

// loopbackPeer is a pion peer with Opus, on loopback UDP4 only.
func loopbackPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}
