package media

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/peerpair"
	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestUDPMuxPion: stock pion peer connections on the relay's port, a
// publisher (the relay receives) and a subscriber (the relay sends),
// each carrying real Opus byte for byte. With direct ingest they go
// through the relay's own UDP mux: everything pion's ICE reads was
// queued by the socket readers, and no goroutine of pion's UDP mux runs,
// neither its read loop nor one per connection; without, pion's mux
// runs both (which shows the count sees them).
func TestUDPMuxPion(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) { testUDPMuxPion(t, direct) })
	}
}

func testUDPMuxPion(t *testing.T, direct bool) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()
	mux, err := ListenUDPWith("127.0.0.1:0", true, ListenOptions{Direct: direct, Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	var readers sync.WaitGroup
	defer readers.Wait()
	relayAPI := pionAPI(t, mux, false)

	var pcs []*webrtc.PeerConnection // closed last first: each relay side before its client
	defer func() {
		for _, pc := range slices.Backward(pcs) {
			_ = pc.Close()
		}
	}()
	// carry connects a client and a relay side, the sender offering, with
	// one Opus track from the sender heard by the receiver.
	carry := func(relaySends bool) (*webrtc.TrackLocalStaticRTP, *heard) {
		t.Helper()
		client, err := pionAPI(t, nil, true).NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, client)
		relay, err := relayAPI.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, relay)
		sender, receiver := client, relay
		if relaySends {
			sender, receiver = relay, client
		}
		src, err := webrtc.NewTrackLocalStaticRTP(Opus.RTPCodecCapability, "audio", "s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sender.AddTrack(src); err != nil {
			t.Fatal(err)
		}
		h := &heard{seen: map[uint16][]byte{}}
		receiver.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { readers.Go(func() { h.readFrom(tr) }) })
		if err := peerpair.Connect(ctx, sender, receiver); err != nil {
			t.Fatal(err)
		}
		return src, h
	}
	pubSrc, atRelay := carry(false) // the publisher: the client sends, the relay hears
	subSrc, atClient := carry(true) // the subscriber: the relay sends, the client hears

	const frames = 60
	sent := publishFrames(ctx, t, pubSrc, frames)
	waitHeard(ctx, t, []*heard{atRelay}, frames, func() string { return "publisher" })
	checkHeard(t, []*heard{atRelay}, sent, -1)
	sent = publishFrames(ctx, t, subSrc, frames)
	waitHeard(ctx, t, []*heard{atClient}, frames, func() string { return "subscriber" })
	checkHeard(t, []*heard{atClient}, sent, -1)

	perConn := goroutinesCreatedBy("github.com/pion/ice/v4.(*UDPMuxDefault).GetConn")
	readLoops := goroutinesCreatedBy("github.com/pion/ice/v4.NewUDPMuxDefault")
	st := DirectOf(mux).Stats()
	if direct {
		if perConn != 0 || readLoops != 0 {
			t.Errorf("pion's UDP mux runs %d goroutines per connection and %d read loops, want none", perConn, readLoops)
		}
		if got := goroutinesCreatedBy("github.com/lianmai/relay/media.startReaders"); got != 2 {
			t.Errorf("%d socket readers, want 2 (Readers: 2)", got)
		}
		if st.Handoffs == 0 || st.Dropped != 0 {
			t.Errorf("counters %+v: want datagrams queued to the ICE connections, none dropped for a full queue", st)
		}
	} else {
		if perConn != 2 || readLoops != 1 {
			t.Errorf("pion's UDP mux runs %d goroutines for 2 connections and %d read loops, want 2 and 1", perConn, readLoops)
		}
		if st != (DirectStats{}) {
			t.Errorf("counters %+v without direct ingest, want zero", st)
		}
	}
}

// goroutinesCreatedBy counts the goroutines whose creator's name starts
// with fn.
func goroutinesCreatedBy(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "\ncreated by "+fn)
}

// TestUDPMuxICERestart: a pion publisher whose socket stays the same (the
// client's own UDP mux on one port) restarts ICE: the relay's agent takes
// a new ufrag, the relay's UDP mux drops the old connection, the
// client's address ends up on the new one, and the media keeps flowing,
// every frame sent after the restart heard byte for byte.
func TestUDPMuxICERestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()
	mux, err := ListenUDPWith("127.0.0.1:0", true, ListenOptions{Direct: true, Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	dm := mux.(*udpMux).UDPMux.(*demux)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	clientMux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock})
	defer clientMux.Close()
	clientAddr := addrKey(sock.LocalAddr().(*net.UDPAddr).AddrPort())
	var readers sync.WaitGroup
	defer readers.Wait()

	client, err := pionAPI(t, clientMux, true).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	relay, err := pionAPI(t, mux, false).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	src, err := webrtc.NewTrackLocalStaticRTP(Opus.RTPCodecCapability, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTrack(src); err != nil {
		t.Fatal(err)
	}
	h := &heard{seen: map[uint16][]byte{}}
	relay.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { readers.Go(func() { h.readFrom(tr) }) })
	pairs := func(pc *webrtc.PeerConnection) <-chan struct{} {
		c := make(chan struct{}, 8)
		pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
			select {
			case c <- struct{}{}:
			default:
			}
		})
		return c
	}
	clientPairs, relayPairs := pairs(client), pairs(relay)
	if err := peerpair.Connect(ctx, client, relay); err != nil {
		t.Fatal(err)
	}
	// peerpair's handlers close a channel on "connected", which the
	// restart reaches again.
	client.OnConnectionStateChange(func(webrtc.PeerConnectionState) {})
	relay.OnConnectionStateChange(func(webrtc.PeerConnectionState) {})
	waitPair := func(c <-chan struct{}, who string) {
		t.Helper()
		select {
		case <-c:
		case <-ctx.Done():
			t.Fatalf("the %s selected no candidate pair before the deadline", who)
		}
	}
	waitPair(clientPairs, "client")
	waitPair(relayPairs, "relay")
	before := relayUfrag(t, relay)
	if got := connAt(dm, clientAddr); got == nil || got.ufrag != before {
		t.Fatalf("the client's address is on %v, want the connection of ufrag %q", got, before)
	}

	source, err := opusgen.NewSource(7, 2)
	if err != nil {
		t.Fatal(err)
	}
	pz := opusgen.NewPacketizer(111, 0x1234)
	const frames = 50
	sent := sendFrames(ctx, t, src, source, pz, frames)
	waitHeard(ctx, t, []*heard{h}, frames, func() string { return "before the restart" })

	if err := restartICE(ctx, client, relay); err != nil {
		t.Fatal(err)
	}
	waitPair(clientPairs, "client after the restart")
	waitPair(relayPairs, "relay after the restart")
	after := relayUfrag(t, relay)
	if after == before {
		t.Fatalf("the relay's ufrag is still %q after the restart", before)
	}
	for {
		if got := connAt(dm, clientAddr); got != nil && got.ufrag == after {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the client's address is on %v after the restart, want ufrag %q's connection", connAt(dm, clientAddr), after)
		}
		time.Sleep(time.Millisecond)
	}
	dm.mu.RLock()
	oldLive := dm.ufrags[0][before] != nil
	dm.mu.RUnlock()
	if oldLive {
		t.Errorf("the old ufrag %q still has a connection after the restart", before)
	}

	sent = append(sent, sendFrames(ctx, t, src, source, pz, frames)...)
	waitHeard(ctx, t, []*heard{h}, 2*frames, func() string { return "after the restart" })
	checkHeard(t, []*heard{h}, sent, -1)
}

// relayUfrag is pc's local ICE ufrag.
func relayUfrag(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	p, err := pc.SCTP().Transport().ICETransport().GetLocalParameters()
	if err != nil {
		t.Fatal(err)
	}
	return p.UsernameFragment
}

// connAt is the connection a's datagrams go to (a an addrKey), or nil.
func connAt(m *demux, a netip.AddrPort) *muxConn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.addrs[a]
}

// restartICE runs an offer with an ICE restart from offerer and its
// answer, every candidate gathered.
func restartICE(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	step := func(pc *webrtc.PeerConnection, sd webrtc.SessionDescription) error {
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sd); err != nil {
			return err
		}
		select {
		case <-gathered:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	offer, err := offerer.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	if err := step(offerer, offer); err != nil {
		return err
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := step(answerer, answer); err != nil {
		return err
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

// TestListenEveryInterfaceDirect: with direct ingest the media port on
// every interface is one of the relay's UDP muxes per address, on the
// addresses pion's own every-interface mux picks (loopback only when
// asked), and a pion peer connects through it with no goroutine of
// pion's mux.
func TestListenEveryInterfaceDirect(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	ips := func(addrs []net.Addr) []string {
		var out []string
		for _, a := range addrs {
			ua := a.(*net.UDPAddr)
			out = append(out, (&net.IPAddr{IP: ua.IP, Zone: ua.Zone}).String())
		}
		slices.Sort(out)
		return out
	}
	for _, loopback := range []bool{true, false} {
		t.Run(fmt.Sprintf("loopback=%v", loopback), func(t *testing.T) {
			o := ListenOptions{Direct: true, Readers: 1, direct: newDirect()}
			batch := &Batch{direct: o.direct}
			mine, err := listenEveryInterface(std, 0, loopback, batch, o)
			if !loopback && err != nil && strings.Contains(err.Error(), "no network interface") {
				t.Skip("this machine has no interface address but loopback")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer mine.Close()
			popts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6), ice.UDPMuxFromPortWithNet(std)}
			if loopback {
				popts = append(popts, ice.UDPMuxFromPortWithLoopback())
			}
			pions, err := ice.NewMultiUDPMuxFromPort(0, popts...)
			if err != nil {
				t.Fatal(err)
			}
			want := ips(pions.GetListenAddresses())
			_ = pions.Close()
			got := ips(mine.GetListenAddresses())
			if !slices.Equal(got, want) {
				t.Errorf("listening on %v, pion's mux on %v", got, want)
			}
			t.Logf("listening on %v", got)
			if has := slices.Contains(got, "127.0.0.1"); has != loopback {
				t.Errorf("127.0.0.1 among %v: %v, want %v", got, has, loopback)
			}
			socks := *batch.conns.Load()
			if len(socks) != len(got) {
				t.Errorf("%d sockets for %d addresses", len(socks), len(got))
			}
			for _, s := range socks {
				if s.mux == nil || s.rd == nil {
					t.Errorf("the socket on %v is not read by the relay's readers into its own mux", s.LocalAddr())
				}
			}
			if !loopback {
				return
			}
			// A pion peer on loopback connects through the loopback mux.
			client, err := pionAPI(t, nil, true).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			relay, err := pionAPIWith(t, mine, false, func(se *webrtc.SettingEngine) {
				se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
			}).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			if _, err := relay.CreateDataChannel("probe", nil); err != nil {
				t.Fatal(err)
			}
			if err := peerpair.Connect(ctx, relay, client); err != nil {
				t.Fatal(err)
			}
			if st := o.direct.Stats(); st.Handoffs == 0 {
				t.Errorf("counters %+v: nothing reached the ICE connection through the relay's mux", st)
			}
			if n := goroutinesCreatedBy("github.com/pion/ice/v4.(*UDPMuxDefault)") + goroutinesCreatedBy("github.com/pion/ice/v4.NewUDPMuxDefault"); n != 0 {
				t.Errorf("%d goroutines of pion's UDP mux, want none", n)
			}
		})
	}
}
