package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/peerpair"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestFanoutPion: the sharded fan-out between real pion peers on loopback,
// through the relay's own UDP port (ListenUDP: batched writes, lanes and
// workers). A publisher sends real Opus; six stock pion listeners, half of
// them written by a fan-out worker (the threshold lowered to 2), each
// decrypt every frame byte for byte, in order. One listener on a worker
// loses the first arrival of every tenth packet on its socket; the
// relay's history repairs each when the listener's pion NACK generator
// asks.
func TestFanoutPion(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()

	mux, batch, m := shardedPort(t)
	defer mux.Close() // after every peer (deferred first): stops the workers
	relayAPI := pionAPI(t, mux, false)
	var readers sync.WaitGroup // the relay's track reader, the listeners' readers
	defer readers.Wait()       // after every peer is closed

	src, up, closePub := startPublisher(ctx, t, relayAPI, batch, m, &readers)
	defer closePub()

	// The listeners.
	const listeners, lossy = 6, 5
	drop, lossyMux := newLossyMux(t)
	defer lossyMux.Close() // after its peer connection
	got := make([]*heard, listeners)
	downs := make([]*DownTrack, listeners)
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
		relay, err := relayAPI.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		d := NewDownTrack(up, DownTrackParams{})
		sender, err := relay.AddTrack(d)
		if err != nil {
			t.Fatal(err)
		}
		h := &heard{seen: map[uint16][]byte{}}
		got[i] = h
		client.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			readers.Go(func() { h.readFrom(tr) })
		})
		if err := peerpair.Connect(ctx, relay, client); err != nil {
			t.Fatal(err)
		}
		d.Subscribe(sender)
		downs[i] = d
	}
	if _, ok := up.fan.shardOf[downs[lossy]]; !ok {
		t.Fatal("the lossy listener is not on a worker")
	}
	if g := up.fan.groups.Load(); g == nil || len(g.inline) != 3 || g.sharded != 1 || len(g.shards[0]) != 3 {
		t.Fatalf("groups %+v, want 3 listeners inline and 3 on worker 0", g)
	}

	sent := publishFrames(ctx, t, src, 120)
	// Every listener hears every frame (the lossy one once the NACKs are
	// served: pion's generator asks every 100 ms).
	waitHeard(ctx, t, got, len(sent), func() string { return drop.describe(t, m) })
	checkHeard(t, got, sent, lossy)
	if drop.count() == 0 {
		t.Error("the lossy listener lost nothing: the NACK path was not tried")
	}
	if served := counterValue(t, m.NACKsServed); served < float64(drop.count()) {
		t.Errorf("NACKs served %v, want at least the %d packets lost", served, drop.count())
	}
}

// shardedPort is the relay's own UDP port on loopback whose tracks shard
// past 2 listeners onto 2 workers (the track uses one) whatever the
// machine, with fresh metrics. The caller closes the port after every
// peer (that stops the workers).
func shardedPort(t *testing.T) (ice.UDPMux, *Batch, *Metrics) {
	t.Helper()
	return shardedPortWith(t, ListenOptions{})
}

// shardedPortWith is shardedPort with the port's options (direct ingest).
func shardedPortWith(t *testing.T, o ListenOptions) (ice.UDPMux, *Batch, *Metrics) {
	t.Helper()
	mux, err := ListenUDPWith("127.0.0.1:0", true, o)
	if err != nil {
		t.Fatal(err)
	}
	batch := BatchOf(mux)
	batch.SetFanoutThreshold(2) // the relay's -fanout-threshold
	batch.fan.mu.Lock()
	batch.fan.procs = 2
	batch.fan.mu.Unlock()
	m, err := NewMetrics(nil)
	if err != nil {
		mux.Close()
		t.Fatal(err)
	}
	return mux, batch, m
}

// startPublisher connects a stock pion publisher to the relay's side
// (from relayAPI) and returns its track and the relay's UpTrack of it,
// whose reader runs in readers, and a function that closes both ends, the
// relay's side first (defer it before waiting for readers).
func startPublisher(ctx context.Context, t *testing.T, relayAPI *webrtc.API, batch *Batch, m *Metrics, readers *sync.WaitGroup) (*webrtc.TrackLocalStaticRTP, *UpTrack, func()) {
	t.Helper()
	pubClient, err := pionAPI(t, nil, true).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	pubRelay, err := relayAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		_ = pubClient.Close()
		t.Fatal(err)
	}
	closeBoth := func() { _ = pubRelay.Close(); _ = pubClient.Close() }
	src, err := webrtc.NewTrackLocalStaticRTP(Opus.RTPCodecCapability, "audio", "p_pub")
	if err == nil {
		_, err = pubClient.AddTrack(src)
	}
	if err != nil {
		closeBoth()
		t.Fatal(err)
	}
	up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Batch: batch, Metrics: m})
	pubRelay.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		readers.Go(func() { up.ReadLoop(tr) })
	})
	if err := peerpair.Connect(ctx, pubClient, pubRelay); err != nil {
		closeBoth()
		t.Fatal(err)
	}
	return src, up, closeBoth
}

// pionAPI is a loopback pion API: the relay's side on the relay's port
// (client false), or a stock client with pion's NACK generator, on mux if
// not nil.
func pionAPI(t *testing.T, mux ice.UDPMux, client bool) *webrtc.API {
	t.Helper()
	return pionAPIWith(t, mux, client, nil)
}

// pionAPIWith is pionAPI with set, if not nil, changing the settings.
func pionAPIWith(t *testing.T, mux ice.UDPMux, client bool, set func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(Opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if mux != nil {
		se.SetICEUDPMux(mux)
	}
	if set != nil {
		set(&se)
	}
	ir := &interceptor.Registry{}
	if client {
		// The test closes clients itself, after the relay's side.
		se.DisableCloseByDTLS(true)
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			t.Fatal(err)
		}
		ir.Add(gen)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// heard is what one listener decrypted: payloads by sequence number, and
// whether they came in order.
type heard struct {
	mu          sync.Mutex
	seen        map[uint16][]byte
	first, last uint16
	any         bool
	disorder    bool
}

func (h *heard) readFrom(tr *webrtc.TrackRemote) {
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		h.mu.Lock()
		if _, dup := h.seen[p.SequenceNumber]; !dup {
			h.seen[p.SequenceNumber] = bytes.Clone(p.Payload)
			if !h.any {
				h.first = p.SequenceNumber
			} else if p.SequenceNumber != h.last+1 {
				h.disorder = true
			}
			h.last, h.any = p.SequenceNumber, true
		}
		h.mu.Unlock()
	}
}

func (h *heard) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// result is the payloads in sequence order (counted from the first to
// arrive, which is the first sent: the numbers may wrap), and whether
// they arrived in that order.
func (h *heard) result() ([][]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seqs := make([]uint16, 0, len(h.seen))
	for s := range h.seen {
		seqs = append(seqs, s-h.first)
	}
	slices.Sort(seqs)
	var out [][]byte
	for _, s := range seqs {
		out = append(out, h.seen[s+h.first])
	}
	return out, !h.disorder
}

// dropConn is a lossy listener's UDP socket: from its tenth packet to its
// hundredth it loses the first arrival of every every-th SRTP packet (its RTP header is in the clear), before
// SRTP sees it, as a network would (a copy SRTP had seen would make the
// retransmission a replay).
type dropConn struct {
	*net.UDPConn
	every   uint16
	mu      sync.Mutex
	seen    map[uint16]bool
	dropped int
}

// newLossyMux is a UDP mux on a loopback socket that loses every tenth
// packet's first arrival (dropConn).
func newLossyMux(t *testing.T) (*dropConn, ice.UDPMux) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	drop := &dropConn{UDPConn: conn, every: 10, seen: map[uint16]bool{}}
	return drop, ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: drop})
}

func (c *dropConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || n < 12 || b[0]>>6 != 2 || webrtc.PayloadType(b[1]&0x7f) != Opus.PayloadType {
			return n, addr, err // not RTP: STUN, DTLS, RTCP
		}
		seq := binary.BigEndian.Uint16(b[2:4])
		c.mu.Lock()
		// Not before the tenth packet (a receiver cannot ask for what came
		// before the first it saw), nor after the hundredth (the last
		// frames are followed by enough others for the loss to show).
		lose := seq%c.every == 3 && !c.seen[seq] && len(c.seen) >= 10 && len(c.seen) < 100
		c.seen[seq] = true
		if lose {
			c.dropped++
		}
		c.mu.Unlock()
		if !lose {
			return n, addr, nil
		}
	}
}

// describe says what the NACK path did, for a failure message.
func (c *dropConn) describe(t *testing.T, m *Metrics) string {
	return fmt.Sprintf("NACKs received %v, served %v, missed %v; %d lost", counterValue(t, m.NACKsReceived), counterValue(t, m.NACKsServed), counterValue(t, m.NACKsMissed), c.count())
}

func (c *dropConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// peerDeadline bounds each test that starts pion peers; the race detector
// on a busy machine is slow.
const peerDeadline = 30 * time.Second
