package client

// A throwaway fake relay, just enough of protocol v1 to drive Dial,
// Publish, trickle ICE, Request and Leave against real pion peers over
// loopback. It echoes what a client publishes back to it on its sub
// connection, with NACK on both sides. The real relay's integration tests
// exercise the client properly.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

const (
	fakeTrackID  = "track-1"
	fakeStreamID = "publisher-1"
)

type fakeRelay struct {
	t   *testing.T
	srv *httptest.Server
	wg  sync.WaitGroup // sessions
}

func newFakeRelay(t *testing.T) *fakeRelay {
	f := &fakeRelay{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeRelay) URL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }

// Close stops the server and waits for every session to end; close the
// clients first.
func (f *fakeRelay) Close() {
	f.srv.Close()
	f.wg.Wait()
}

type fakeSession struct {
	f    *fakeRelay
	ws   *websocket.Conn
	wmu  sync.Mutex
	knet *killNet
	wg   sync.WaitGroup

	sub, pub         *webrtc.PeerConnection
	subPeer, pubPeer peer
	echo             *webrtc.TrackLocalStaticRTP
}

func (f *fakeRelay) serve(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.wg.Add(1)
	defer f.wg.Done()
	s := &fakeSession{f: f, ws: ws, subPeer: peer{name: "sub"}, pubPeer: peer{name: "pub"}}
	defer s.close()
	s.run()
}

func (s *fakeSession) send(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ws.WriteJSON(v)
}

func (s *fakeSession) closeWith(code int) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
}

func (s *fakeSession) close() {
	_ = s.ws.Close()
	for _, pc := range []*webrtc.PeerConnection{s.sub, s.pub} {
		if pc != nil {
			_ = pc.GracefulClose()
		}
	}
	s.wg.Wait()
}

func (s *fakeSession) logf(format string, args ...any) { s.f.t.Logf("fake relay: "+format, args...) }

func (s *fakeSession) run() {
	var join protocol.Join
	if err := s.ws.ReadJSON(&join); err != nil {
		return
	}
	switch join.Room {
	case "deny":
		_ = s.send(&protocol.Error{Header: protocol.Header{Type: "error", ID: join.ID},
			Code: protocol.CodeUnauthorized, Message: "no token"})
		s.closeWith(protocol.ClosePolicy)
		return
	}
	_ = s.send(&protocol.Joined{Header: protocol.Header{Type: "joined", ID: join.ID}, Version: 1,
		Room: join.Room, Participant: protocol.Participant{ID: "p-" + join.Name, Name: join.Name, Role: join.Role}})
	var err error
	if s.knet, err = newKillNet(); err != nil {
		s.logf("%v", err)
		return
	}
	if err := s.offerSub(); err != nil {
		s.logf("sub offer: %v", err)
		return
	}
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		msg, err := protocol.Decode(data)
		if err != nil {
			_ = s.send(&protocol.Error{Header: protocol.Header{Type: "error"}, Code: protocol.CodeBadRequest, Message: err.Error()})
			continue
		}
		switch m := msg.(type) {
		case *protocol.Ping:
			_ = s.send(&protocol.Pong{Header: protocol.Header{Type: "pong", ID: m.ID}})
		case *protocol.Leave:
			s.closeWith(protocol.CloseNormal)
		case *protocol.MicRequest:
			_ = s.send(map[string]any{"type": "mic_requested", "participant": "p-x"})
			_ = s.send(&protocol.Error{Header: protocol.Header{Type: "error", ID: m.ID}, Code: protocol.CodeConflict, Message: "again"})
		case *protocol.SessionDescription:
			if m.Type == protocol.TypeAnswer {
				if err := s.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
					s.logf("sub answer: %v", err)
					return
				}
				_ = s.subPeer.remote.open(s.sub.AddICECandidate)
				continue
			}
			if err := s.answerPub(m); err != nil {
				s.logf("pub offer: %v", err)
				return
			}
		case *protocol.Candidate:
			init, ok := candidateFromWire(m.Candidate)
			if !ok {
				continue
			}
			p := &s.subPeer
			if m.PC == protocol.PCPub {
				p = &s.pubPeer
			}
			if err := p.remote.push(init); err != nil {
				s.logf("candidate: %v", err)
			}
		}
	}
}

func (s *fakeSession) newPC(p *peer) (*webrtc.PeerConnection, error) {
	api, err := newAPI(&Config{Loopback: true}, s.knet, discardLogger(), false)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { _ = p.local.push(c) })
	return pc, nil
}

// offerSub offers the sub connection with one audio track, which echoes
// whatever the client publishes.
func (s *fakeSession) offerSub() error {
	pc, err := s.newPC(&s.subPeer)
	if err != nil {
		return err
	}
	s.sub = pc
	s.echo, err = webrtc.NewTrackLocalStaticRTP(opusCapability(true), fakeTrackID, fakeStreamID)
	if err != nil {
		return err
	}
	sender, err := pc.AddTrack(s.echo)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() { // feeds the NACK responder
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := s.send(&protocol.SessionDescription{Header: protocol.Header{Type: "offer"}, PC: "sub", SDP: offer.SDP}); err != nil {
		return err
	}
	return s.subPeer.local.open(func(c *webrtc.ICECandidate) error {
		return s.send(&protocol.Candidate{Header: protocol.Header{Type: "candidate"}, PC: "sub", Candidate: candidateToWire(c, "")})
	})
}

func (s *fakeSession) answerPub(m *protocol.SessionDescription) error {
	pc, err := s.newPC(&s.pubPeer)
	if err != nil {
		return err
	}
	s.pub = pc
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.wg.Add(1)
		defer s.wg.Done()
		for {
			pkt, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			_ = s.echo.WriteRTP(pkt)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		return err
	}
	_ = s.pubPeer.remote.open(pc.AddICECandidate)
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return err
	}
	if err := s.send(&protocol.SessionDescription{Header: protocol.Header{Type: "answer", ID: m.ID}, PC: "pub", SDP: answer.SDP}); err != nil {
		return err
	}
	// Candidates right behind the answer: the client may get them before
	// it has applied the answer, and must hold them.
	return s.pubPeer.local.open(func(c *webrtc.ICECandidate) error {
		raw, _ := json.Marshal(&protocol.Candidate{Header: protocol.Header{Type: "candidate"}, PC: "pub", Candidate: candidateToWire(c, "")})
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return s.ws.WriteMessage(websocket.TextMessage, raw)
	})
}
