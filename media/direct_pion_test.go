package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/dtlskeys"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/peerpair"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestDirectSendPion: the direct send path between real pion peers on
// loopback, through the relay's own UDP port. The relay's side of each
// direct listener owns its SRTP keys through dtlskeys (the relay offers,
// so it is the DTLS server) and its pion writer refuses every packet, so
// everything a direct listener hears was encrypted by the relay into the
// send batch. Four stock pion listeners decrypt every frame byte for byte:
// two direct ones written by the track's reader, a lossy direct one on a
// fan-out worker (its losses repaired from the history through the same
// SRTP context), and one on pion's path. The relay's own sender reports
// reach a listener with the counts of what it received. Without direct
// ingest, the direct listeners' NACKs come through pion's RTCP reader
// per track; with it, the socket readers take the direct listeners'
// SRTCP themselves and no direct listener's track has a reader of its
// own, while the listener on pion's path keeps pion's.
func TestDirectSendPion(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("ingest=%v", direct), func(t *testing.T) { testDirectSendPion(t, direct) })
	}
}

func testDirectSendPion(t *testing.T, direct bool) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()

	mux, batch, m := shardedPortWith(t, ListenOptions{Direct: direct, Readers: 2})
	defer mux.Close()
	reports := NewReporter()
	defer reports.Close()
	var readers sync.WaitGroup
	defer readers.Wait()
	src, up, closePub := startPublisher(ctx, t, pionAPI(t, mux, false), batch, m, &readers)
	defer closePub()

	const listeners, lossy, viaPion = 4, 2, 3
	drop, lossyMux := newLossyMux(t)
	defer lossyMux.Close()
	got := make([]*heard, listeners)
	refused := make([]*refuseWriter, listeners)
	downs := make([]*DownTrack, listeners)
	var srs srLog
	for i := range listeners {
		var cmux ice.UDPMux
		if i == lossy {
			cmux = lossyMux
		}
		client, err := pionAPI(t, cmux, true).NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		relay, capture := relayWithCapture(t, mux)
		defer relay.Close()
		var sc *SubConn
		if i != viaPion {
			sc = NewSubConn(SubConnParams{Batch: batch, Reports: reports, RTCP: relay})
		}
		d := NewDownTrack(up, DownTrackParams{Sub: sc})
		downs[i] = d
		sender, err := relay.AddTrack(d)
		if err != nil {
			t.Fatal(err)
		}
		h := &heard{seen: map[uint16][]byte{}}
		got[i] = h
		client.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
			readers.Go(func() { h.readFrom(tr) })
			if i == 0 {
				readers.Go(func() { srs.readFrom(recv) })
			}
		})
		if err := peerpair.Connect(ctx, relay, client); err != nil {
			t.Fatal(err)
		}
		if sc != nil {
			useDirect(t, relay, capture, sc)
			b := d.bound.Load()
			refused[i] = &refuseWriter{}
			d.bound.Store(&binding{ssrc: b.ssrc, pt: b.pt, w: refused[i]})
		}
		d.Subscribe(sender)
	}
	if g := up.fan.groups.Load(); g == nil || len(g.inline) != 2 || g.sharded != 1 || len(g.shards[0]) != 2 {
		t.Fatalf("groups %+v, want 2 listeners inline and 2 on worker 0", g)
	}

	sent := publishFrames(ctx, t, src, 120)
	waitHeard(ctx, t, got, len(sent), func() string { return drop.describe(t, m) })
	checkHeard(t, got, sent, lossy)
	for i, w := range refused {
		if w != nil && w.calls.Load() != 0 {
			t.Errorf("listener %d: %d packets went through pion's writer, want all direct", i, w.calls.Load())
		}
	}
	if drop.count() == 0 {
		t.Error("the lossy listener lost nothing: the NACK path was not tried")
	}
	for i, d := range downs {
		// Pion's RTCP reader runs for the listener on pion's path, and for
		// every listener when the socket readers do not take RTCP.
		if want := i == viaPion || !direct; d.rtcpLoopOn.Load() != want {
			t.Errorf("listener %d: pion's RTCP reader started %v, want %v", i, d.rtcpLoopOn.Load(), want)
		}
	}
	if got := DirectOf(mux).Stats().SubRTCP; direct && got == 0 {
		t.Error("direct ingest on, and the socket readers served no subscriber RTCP")
	} else if !direct && got != 0 {
		t.Errorf("no direct ingest, and %d subscriber RTCP datagrams were served by socket readers", got)
	}
	if served := counterValue(t, m.NACKsServed); served < float64(drop.count()) {
		t.Errorf("NACKs served %v, want at least the %d packets lost", served, drop.count())
	}

	// Sender reports: once every packet is out, two reports that count
	// them all, with payload octets as sent, and RTP times that advance
	// with their NTP times at 48 kHz.
	octets := 0
	for _, p := range sent {
		octets += len(p)
	}
	a, b := srs.lastTwo(ctx, t, uint32(len(sent)))
	for _, sr := range []rtcp.SenderReport{a, b} {
		if sr.OctetCount != uint32(octets) {
			t.Errorf("sender report octets %d, want %d (the payloads sent)", sr.OctetCount, octets)
		}
	}
	ntpDelta := float64(b.NTPTime-a.NTPTime) / (1 << 32) // seconds
	rtpDelta := float64(b.RTPTime - a.RTPTime)
	if want := ntpDelta * opusClockRate; rtpDelta < want-48 || rtpDelta > want+48 {
		t.Errorf("between two reports RTP time moved %v, NTP %.4f s: want %.0f ± 48 (1 ms at 48 kHz)", rtpDelta, ntpDelta, want)
	}
}

// relayWithCapture is the relay's side of a sub connection on mux, whose
// DTLS hooks feed the capture it returns (as sfu's direct API does).
func relayWithCapture(t *testing.T, mux ice.UDPMux) (*webrtc.PeerConnection, *dtlskeys.Capture) {
	t.Helper()
	capture := &dtlskeys.Capture{}
	relay, err := pionAPIWith(t, mux, false, func(se *webrtc.SettingEngine) {
		se.SetDTLSKeyLogWriter(capture)
		se.SetDTLSServerHelloMessageHook(capture.ServerHelloHook)
	}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return relay, capture
}

// useDirect gives sc the keys capture derived from relay's handshake and
// relay's selected pair, and fails unless sc is then direct.
func useDirect(t *testing.T, relay *webrtc.PeerConnection, capture *dtlskeys.Capture, sc *SubConn) {
	t.Helper()
	keys, err := capture.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetKeys(keys.Profile, keys.ServerSide()); err != nil {
		t.Fatal(err)
	}
	pair, err := relay.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetPair(pair); err != nil {
		t.Fatalf("pair %v: %v", pair, err)
	}
	if !sc.Direct() {
		t.Fatal("the sub connection is not on the direct path")
	}
}

// publishFrames sends frames of real Opus on src, one every 10 ms, and
// returns their payloads.
func publishFrames(ctx context.Context, t *testing.T, src *webrtc.TrackLocalStaticRTP, frames int) [][]byte {
	t.Helper()
	source, err := opusgen.NewSource(7, 2)
	if err != nil {
		t.Fatal(err)
	}
	return sendFrames(ctx, t, src, source, opusgen.NewPacketizer(111, 0x1234), frames)
}

// sendFrames sends frames frames of source through pz on src, one every
// 10 ms, and returns their payloads.
func sendFrames(ctx context.Context, t *testing.T, src *webrtc.TrackLocalStaticRTP, source *opusgen.Source, pz *opusgen.Packetizer, frames int) [][]byte {
	t.Helper()
	var sent [][]byte
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range frames {
		frame, err := source.NextFrame()
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, bytes.Clone(frame))
		if err := src.WriteRTP(pz.Packet(frame)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("deadline while publishing")
		}
	}
	return sent
}

// waitHeard waits until every listener has heard frames frames; why
// describes the state when the deadline passes first.
func waitHeard(ctx context.Context, t *testing.T, got []*heard, frames int, why func() string) {
	t.Helper()
	for i, h := range got {
		for h.count() < frames {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("listener %d heard %d of %d frames before the deadline (%s)", i, h.count(), frames, why())
			}
		}
	}
}

// checkHeard checks that every listener decrypted exactly the payloads
// sent, in order but for the lossy one (its repairs come late).
func checkHeard(t *testing.T, got []*heard, sent [][]byte, lossy int) {
	t.Helper()
	for i, h := range got {
		payloads, inOrder := h.result()
		if len(payloads) != len(sent) {
			t.Errorf("listener %d: %d frames, want %d", i, len(payloads), len(sent))
			continue
		}
		for j := range payloads {
			if !bytes.Equal(payloads[j], sent[j]) {
				t.Errorf("listener %d frame %d: % x, want the publisher's % x", i, j, payloads[j], sent[j])
				break
			}
		}
		if i != lossy && !inOrder {
			t.Errorf("listener %d: frames arrived out of order", i)
		}
	}
}

// refuseWriter is a down track's pion writer that refuses every packet
// and counts them.
type refuseWriter struct{ calls atomic.Int64 }

var errRefused = errors.New("test: pion's writer is not to be used")

func (w *refuseWriter) WriteRTP(*rtp.Header, []byte) (int, error) {
	w.calls.Add(1)
	return 0, errRefused
}

func (w *refuseWriter) Write([]byte) (int, error) {
	w.calls.Add(1)
	return 0, errRefused
}

// srLog is the sender reports a client's receiver read.
type srLog struct {
	mu  sync.Mutex
	srs []rtcp.SenderReport
}

func (l *srLog) readFrom(recv *webrtc.RTPReceiver) {
	for {
		pkts, _, err := recv.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				l.mu.Lock()
				l.srs = append(l.srs, *sr)
				l.mu.Unlock()
			}
		}
	}
}

// lastTwo waits for two reports that count packets packets and returns
// the first two of them.
func (l *srLog) lastTwo(ctx context.Context, t *testing.T, packets uint32) (rtcp.SenderReport, rtcp.SenderReport) {
	t.Helper()
	for {
		l.mu.Lock()
		var full []rtcp.SenderReport
		for _, sr := range l.srs {
			if sr.PacketCount == packets {
				full = append(full, sr)
			}
		}
		last := rtcp.SenderReport{}
		if len(l.srs) > 0 {
			last = l.srs[len(l.srs)-1]
		}
		n := len(l.srs)
		l.mu.Unlock()
		if len(full) >= 2 {
			return full[0], full[1]
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%d sender reports, the last %+v; want two counting %d packets", n, last, packets)
		}
	}
}
