package sfu

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/peerpair"

	"github.com/lianmai/relay/media"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// peerDeadline bounds each test that starts pion peers; the race detector
// on a busy machine is slow.
const peerDeadline = 30 * time.Second

// TestSRTPProfileNegotiation: real pion peers over loopback, the relay's
// side built by newAPI on media.ListenUDP's port (batched writes included). A
// client offering GCM gets GCM; a client offering only AES-CM still gets
// audio. Where the relay offers (sub) it is the DTLS server and its order
// wins (AES-128-GCM); where the client offers (pub) the client's does.
// The profiles are read from GetStats while both peers are connected and
// audio has arrived; the test alone closes the peers, relay first.
func TestSRTPProfileNegotiation(t *testing.T) {
	tests := []struct {
		name        string
		client      []dtls.SRTPProtectionProfile // nil: pion's default (GCM-256, GCM-128, AES-CM)
		relayOffers bool
		want        string
	}{
		{name: "sub, client offers GCM", relayOffers: true, want: "SRTP_AEAD_AES_128_GCM"},
		{name: "sub, client offers AES-CM only", relayOffers: true,
			client: []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, want: "SRTP_AES128_CM_HMAC_SHA1_80"},
		{name: "pub, client offers GCM-128 first", relayOffers: false,
			client: []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}, want: "SRTP_AEAD_AES_128_GCM"},
		{name: "pub, client offers AES-CM only", relayOffers: false,
			client: []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, want: "SRTP_AES128_CM_HMAC_SHA1_80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
			defer cancel()

			mux, err := media.ListenUDP("127.0.0.1:0", true)
			if err != nil {
				t.Fatal(err)
			}
			defer mux.Close()
			relayAPI, err := newAPI(ICEConfig{UDPMux: mux, Loopback: true}, false)
			if err != nil {
				t.Fatal(err)
			}
			api := relayAPI.pub // the relay answers and receives, as on pub
			if tt.relayOffers {
				api = relayAPI.sub // the relay offers and sends, as on sub
			}
			// The client is made first so that its deferred Close runs
			// last: the relay is closed first, here, and its DTLS
			// close_notify does not close the client (see clientAPI).
			client, err := clientAPI(t, tt.client).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			relay, err := api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()

			// The side that offers sends the audio, as on sub (relay to
			// client) and pub (client to relay).
			sender, receiver := relay, client
			if !tt.relayOffers {
				sender, receiver = client, relay
			}
			track, err := webrtc.NewTrackLocalStaticRTP(media.Opus.RTPCodecCapability, "audio", "stream")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sender.AddTrack(track); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			receiver.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				buf := make([]byte, 1500)
				n, _, err := remote.Read(buf)
				if err == nil {
					got <- buf[:n]
				}
			})
			if err := peerpair.Connect(ctx, sender, receiver); err != nil {
				t.Fatal(err)
			}

			payload := []byte{0xfc, 0xff, 0xfe}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			var pkt []byte
			for seq := uint16(0); pkt == nil; seq++ {
				err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 480}, Payload: payload})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case pkt = <-got:
				case <-tick.C:
				case <-ctx.Done():
					t.Fatal("no audio arrived before the deadline")
				}
			}
			var p rtp.Packet
			if err := p.Unmarshal(pkt); err != nil || string(p.Payload) != string(payload) {
				t.Errorf("received %x (%v), want payload %x", pkt, err, payload)
			}
			for _, peer := range []struct {
				name string
				pc   *webrtc.PeerConnection
			}{{"relay", relay}, {"client", client}} {
				ts := transportStats(peer.pc)
				if ts.DTLSState != webrtc.DTLSTransportStateConnected {
					t.Errorf("%s: DTLS transport %s, want connected", peer.name, ts.DTLSState)
				}
				if ts.SRTPCipher != tt.want {
					t.Errorf("%s: SRTP profile %q, want %q", peer.name, ts.SRTPCipher, tt.want)
				}
			}
		})
	}
}

// clientAPI is a browser-like peer on loopback offering profiles (nil:
// pion's default).
func clientAPI(t *testing.T, profiles []dtls.SRTPProtectionProfile) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(media.Opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A peer's DTLS close_notify would otherwise make pion close this
	// client on a goroutine of its own, and that close writes a field
	// (PeerConnection.statsGetter) that the test's earlier GetStats read,
	// neither under a lock: with nothing ordering the two the race
	// detector reports it. The test closes the client itself, after the
	// relay.
	se.DisableCloseByDTLS(true)
	if profiles != nil {
		se.SetSRTPProtectionProfiles(profiles...)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

// transportStats are the stats of pc's (bundled) transport: its DTLS
// state and the SRTP profile it negotiated.
func transportStats(pc *webrtc.PeerConnection) webrtc.TransportStats {
	for _, s := range pc.GetStats() {
		if ts, ok := s.(webrtc.TransportStats); ok {
			return ts
		}
	}
	return webrtc.TransportStats{}
}
