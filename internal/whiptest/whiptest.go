// Package whiptest is a minimal WHIP client and WHEP player for tests,
// written from RFC 9725 and the WHEP draft rather than with the relay's
// client package: one POST with the offer, the answer and Location back,
// PATCH for trickled candidates, DELETE to end. Package whip's tests and
// the browser test use it.
package whiptest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Options shape a test peer.
type Options struct {
	Token string // sent as a bearer token when set
	Query string // appended to the endpoint URL
	// Video: a WHIP offer also sends a VP8 m-section, as OBS sends one.
	// It is added to the offer's text: pion as a client fails on an
	// answer that rejects an m-section it sends, so its own connection
	// never has it, and the rejected section is cut from the answer it
	// gets. A WHEP offer also receives video, as players offer.
	Video   bool
	Slots   int  // the WHEP offer's receiving audio m-sections (at least 1)
	Trickle bool // the offer carries no candidates; they follow by PATCH
	// Lite makes the peer an ICE-lite agent, which sends no connectivity
	// checks: it connects only if the relay knows its candidates.
	Lite bool
	// ViaLinks makes the peer relay-only (ICETransportPolicy relay) with
	// no ICE servers of its own: it gathers through the servers of the
	// 201's Link headers that ViaLinks accepts, as RFC 9725 §4.6 has a
	// client do: offer, POST, set the servers, then set the offer as
	// the local description and trickle the candidates by PATCH.
	ViaLinks func(url string) bool
}

// Peer is one WHIP or WHEP session from the client's side.
type Peer struct {
	PC       *webrtc.PeerConnection
	base     string // the relay's http://host:port
	Location string // the session URL, from Location
	Answer   string
	Links    []Link                   // the 201's Link headers
	Tracks   chan *webrtc.TrackRemote // WHEP: what the relay sends
	audio    *webrtc.TrackLocalStaticRTP
	textOnly bool // the offer's last m-section (video) is the text's only
}

// NewPC is a pion peer connection for loopback with the default
// codecs (Opus, and video for the WHIP video case).
func NewPC(t *testing.T, lite bool) *webrtc.PeerConnection {
	t.Helper()
	return newPC(t, Options{Lite: lite})
}

// newPC is the peer connection o asks for: relay-only from the start
// with ViaLinks (pion fixes the candidate types when it makes its ICE
// agent; only the servers may change until gathering starts).
func newPC(t *testing.T, o Options) *webrtc.PeerConnection {
	t.Helper()
	lite := o.Lite
	var cfg webrtc.Configuration
	if o.ViaLinks != nil {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := relaytest.LoopbackSettings()
	se.SetLite(lite)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// Request sends one HTTP request and returns the response with its body
// read.
func Request(ctx context.Context, t *testing.T, method, url, ctype, token, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// Publish starts a WHIP session in room that sends Opus; it fails t
// unless the relay answers 201.
func Publish(ctx context.Context, t *testing.T, base, room string, o Options) *Peer {
	t.Helper()
	pc := newPC(t, o)
	hp := &Peer{PC: pc, base: base}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	hp.audio = track
	hp.textOnly = o.Video
	hp.start(ctx, t, base+"/whip/"+room, o)
	return hp
}

// Play starts a WHEP session in room receiving o.Slots audio tracks
// (one by default).
func Play(ctx context.Context, t *testing.T, base, room string, o Options) *Peer {
	t.Helper()
	pc := newPC(t, o)
	hp := &Peer{PC: pc, base: base, Tracks: make(chan *webrtc.TrackRemote, 8)}
	t.Cleanup(func() { _ = pc.Close() })
	for range max(1, o.Slots) {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	if o.Video {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { hp.Tracks <- tr })
	hp.start(ctx, t, base+"/whep/"+room, o)
	return hp
}

// start offers, POSTs the offer and applies the answer; with trickle the
// candidates follow in one PATCH.
func (hp *Peer) start(ctx context.Context, t *testing.T, url string, o Options) {
	t.Helper()
	offer, err := hp.PC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := offer.SDP // candidates come later when trickling
	if o.ViaLinks == nil {
		hp.gather(ctx, t, offer)
		if !o.Trickle {
			body = hp.PC.LocalDescription().SDP
		}
	}
	if hp.textOnly {
		body = withVideo(body)
	}
	if o.Query != "" {
		url += "?" + o.Query
	}
	resp, answer := Request(ctx, t, http.MethodPost, url, "application/sdp", o.Token, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("answer Content-Type %q, want application/sdp", ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatal("201 without Location")
	}
	hp.Location, hp.Answer = hp.base+loc, answer
	if hp.Links, err = ParseLinks(resp.Header); err != nil {
		t.Fatal(err)
	}
	if o.ViaLinks != nil {
		var servers []webrtc.ICEServer
		for _, s := range ICEServers(hp.Links) {
			if o.ViaLinks(s.URLs[0]) {
				servers = append(servers, s)
			}
		}
		if len(servers) == 0 {
			t.Fatalf("no Link header server that ViaLinks accepts among %+v", hp.Links)
		}
		if err := hp.PC.SetConfiguration(webrtc.Configuration{ICEServers: servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay}); err != nil {
			t.Fatalf("set the Link headers' ICE servers: %v", err)
		}
		hp.gather(ctx, t, offer)
	}
	if hp.textOnly {
		answer, _, _ = strings.Cut(answer, "m=video ")
	}
	if err := hp.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("set the relay's answer: %v\n%s", err, answer)
	}
	if o.Trickle || o.ViaLinks != nil {
		resp, body := Request(ctx, t, http.MethodPatch, hp.Location, "application/trickle-ice-sdpfrag", o.Token, hp.frag())
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH candidates: %s: %s", resp.Status, body)
		}
	}
}

// gather sets offer as the local description and waits for the end of
// ICE gathering.
func (hp *Peer) gather(ctx context.Context, t *testing.T, offer webrtc.SessionDescription) {
	t.Helper()
	gathered := webrtc.GatheringCompletePromise(hp.PC)
	if err := hp.PC.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("no ICE gathering before the deadline")
	}
}

// frag is the peer's ICE credentials and candidates as an RFC 8840
// fragment for the first (bundled) m-section.
func (hp *Peer) frag() string {
	local := hp.PC.LocalDescription().SDP
	var b strings.Builder
	mid := ""
	for line := range strings.Lines(local) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"), strings.HasPrefix(line, "a=ice-pwd:"):
			if !strings.Contains(b.String(), line[:10]) {
				b.WriteString(line + "\r\n")
			}
		case strings.HasPrefix(line, "a=mid:") && mid == "":
			mid = line
		}
	}
	b.WriteString(mid + "\r\n")
	for line := range strings.Lines(local) {
		if strings.HasPrefix(line, "a=candidate:") {
			b.WriteString(strings.TrimRight(line, "\r\n") + "\r\n")
		}
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
}

// Connected waits until the peer connection is connected.
func (hp *Peer) Connected(ctx context.Context, t *testing.T) {
	t.Helper()
	for hp.PC.ConnectionState() != webrtc.PeerConnectionStateConnected {
		select {
		case <-ctx.Done():
			t.Fatalf("not connected before the deadline (state %s)", hp.PC.ConnectionState())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Sent is what a publisher sent: payloads by sequence number.
type Sent struct {
	mu       sync.Mutex
	payloads map[uint16][]byte
}

func (s *Sent) Get(seq uint16) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payloads[seq]
	return p, ok
}

// SendOpus sends 10 ms frames of a voice-like Opus source, paced in real
// time, until ctx ends or stop is closed; it records what it sent.
func (hp *Peer) SendOpus(ctx context.Context, seed int64, stop <-chan struct{}) (*Sent, <-chan error) {
	s := &Sent{payloads: make(map[uint16][]byte)}
	done := make(chan error, 1)
	go func() {
		src, err := opusgen.NewSource(seed, 1)
		if err != nil {
			done <- err
			return
		}
		pk := opusgen.NewPacketizer(111, rand.Uint32())
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			frame, err := src.NextFrame()
			if err != nil {
				done <- err
				return
			}
			pkt := pk.Packet(frame)
			s.mu.Lock()
			s.payloads[pkt.SequenceNumber] = append([]byte(nil), frame...)
			s.mu.Unlock()
			if err := hp.audio.WriteRTP(pkt); err != nil {
				done <- fmt.Errorf("write: %w", err)
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				done <- nil
				return
			case <-stop:
				done <- nil
				return
			}
		}
	}()
	return s, done
}

// ReadRTP reads packets of tr until n have arrived with a non-empty
// payload (padding skipped), or ctx ends.
func ReadRTP(ctx context.Context, t *testing.T, tr *webrtc.TrackRemote, n int) []*rtp.Packet {
	t.Helper()
	var got []*rtp.Packet
	for len(got) < n {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d packets before the deadline", len(got), n)
		}
		_ = tr.SetReadDeadline(time.Now().Add(time.Second))
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			continue
		}
		if len(pkt.Payload) > 0 {
			got = append(got, pkt)
		}
	}
	return got
}

// Heard decodes n packets of tr and returns how many frames were louder
// than -50 dBov (the voice-like source is far louder; silence is 127).
func Heard(ctx context.Context, t *testing.T, tr *webrtc.TrackRemote, n int) int {
	t.Helper()
	dec, err := opusgen.NewDecoder(2)
	if err != nil {
		t.Fatal(err)
	}
	loud := 0
	for _, pkt := range ReadRTP(ctx, t, tr, n) {
		if _, err := dec.Decode(pkt.Payload); err != nil {
			t.Fatalf("decode a packet from the relay: %v", err)
		}
		if dec.LastLevel() < 50 {
			loud++
		}
	}
	return loud
}

// withVideo appends a sending video m-section (mid 1, bundled) to offer,
// with the audio section's ICE credentials and DTLS role.
func withVideo(offer string) string {
	var creds []string
	for line := range strings.Lines(offer) {
		if strings.HasPrefix(line, "a=ice-ufrag:") || strings.HasPrefix(line, "a=ice-pwd:") || strings.HasPrefix(line, "a=setup:") {
			creds = append(creds, strings.TrimRight(line, "\r\n"))
		}
	}
	offer = strings.Replace(offer, "a=group:BUNDLE 0\r\n", "a=group:BUNDLE 0 1\r\n", 1)
	return offer + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n" +
		strings.Join(creds[:3], "\r\n") + "\r\na=rtcp-mux\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=ssrc:1234 cname:whip\r\n"
}

// Has reports whether payload was sent as seq.
func (s *Sent) Has(seq uint16, payload []byte) bool {
	p, ok := s.Get(seq)
	return ok && string(p) == string(payload)
}

// HasPayload reports whether payload was sent, under any number.
func (s *Sent) HasPayload(payload []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.payloads {
		if string(p) == string(payload) {
			return true
		}
	}
	return false
}
