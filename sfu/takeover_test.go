package sfu

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// recSink records its events in order. onJoined, if set, runs when it
// gets JoinedEvent, with the room lock held.
type recSink struct {
	mu       sync.Mutex
	events   []Event
	closed   []Reason
	onJoined func(JoinedEvent)
}

func (s *recSink) Send(ev Event) {
	if j, ok := ev.(JoinedEvent); ok && s.onJoined != nil {
		s.onJoined(j)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
}

func (s *recSink) Close(r Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, r)
}

func (s *recSink) snapshot() ([]Event, []Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...), append([]Reason(nil), s.closed...)
}

// subOffers returns the sub offers among events.
func subOffers(events []Event) []string {
	var offers []string
	for _, ev := range events {
		if d, ok := ev.(DescriptionEvent); ok && d.PC == Sub && d.Type == webrtc.SDPTypeOffer {
			offers = append(offers, d.SDP)
		}
	}
	return offers
}

// answerFor answers a sub offer as a client would, with a connection of
// its own that is closed at cleanup.
func answerFor(t *testing.T, api *webrtc.API, offer string) string {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	return answer.SDP
}

// checkReplaced checks the replaced session's side of a resume: its last
// event is participant_left with its own id, reason replaced, and it was
// closed with reason replaced.
func checkReplaced(t *testing.T, old *recSink, id string) {
	t.Helper()
	events, closed := old.snapshot()
	if len(events) == 0 {
		t.Fatal("the replaced session got no event")
	}
	if last, ok := events[len(events)-1].(ParticipantLeftEvent); !ok || last != (ParticipantLeftEvent{ID: id, Reason: ReasonReplaced}) {
		t.Errorf("the replaced session's last event is %#v, want participant_left %s replaced", events[len(events)-1], id)
	}
	if len(closed) != 1 || closed[0] != ReasonReplaced {
		t.Errorf("the replaced session was closed with %v, want [replaced]", closed)
	}
}

// checkNewSession checks the new session's side of a resume with new
// connections: joined (resumed) first, then exactly one sub offer, and the
// relay's candidates all that offer's; it returns the offer.
func checkNewSession(t *testing.T, cur *recSink, id string) string {
	t.Helper()
	events, closed := cur.snapshot()
	if len(closed) != 0 {
		t.Fatalf("the new session was closed: %v", closed)
	}
	if j, ok := events[0].(JoinedEvent); !ok || !j.Resumed || j.Self.ID != id {
		t.Fatalf("the new session's first event is %#v, want joined, resumed as %s", events[0], id)
	}
	offers := subOffers(events)
	if len(offers) != 1 {
		t.Fatalf("the new session got %d sub offers, want 1 (of its new connection)", len(offers))
	}
	ufrag := iceUfrag(offers[0])
	for _, ev := range events {
		if c, ok := ev.(CandidateEvent); ok && c.Candidate != nil && !strings.Contains(c.Candidate.Candidate, " ufrag "+ufrag) {
			t.Errorf("the new session got a candidate of another connection: %s (its offer has ufrag %s)", c.Candidate.Candidate, ufrag)
		}
	}
	return offers[0]
}

// TestJoinedTokenResumable: the token in joined resumes the participant as
// soon as the client has it.
func TestJoinedTokenResumable(t *testing.T) {
	s := newLoopbackSFU(t, 10*time.Second)
	sink := &recSink{}
	registered := false
	sink.onJoined = func(j JoinedEvent) {
		s.mu.Lock() // lock order: room, then sfu
		defer s.mu.Unlock()
		registered = s.resumable[j.ResumeToken] != nil
	}
	p, err := s.Join(JoinParams{Room: "r", Name: "g", Role: RoleGuest, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave()
	if !registered {
		t.Error("joined went out before its resume token was registered: a resume right after it joins afresh")
	}
}

// TestResumeIgnoresReplacedSession: after a resume with new connections,
// the old session's client is not heard any more: its answer to the old
// sub offer neither fails nor completes the new connection's offer, which
// the new client's answer then does. Nothing of the old connections
// reaches the new session, nothing comes after participant_left on the
// old one.
func TestResumeIgnoresReplacedSession(t *testing.T) {
	s := newLoopbackSFU(t, 10*time.Second)
	api := loopbackAPI(t)
	old := &recSink{}
	p, err := s.Join(JoinParams{Room: "r", Name: "g", Role: RoleGuest, Sink: old})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave()
	events, _ := old.snapshot()
	offers := subOffers(events)
	if len(offers) != 1 {
		t.Fatalf("%d sub offers after join, want 1", len(offers))
	}
	oldAnswer := answerFor(t, api, offers[0])

	cur := &recSink{}
	if _, err := s.Resume(ResumeParams{Token: p.ResumeToken(), Room: "r", Sink: cur}); err != nil {
		t.Fatal(err)
	}
	if err := p.Answer(old, oldAnswer); err != nil {
		t.Errorf("the replaced session's answer: %v, want it ignored", err)
	}
	mid := "0"
	if err := p.AddCandidate(old, Sub, &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", SDPMid: &mid}); err != nil {
		t.Errorf("the replaced session's candidate: %v, want it ignored", err)
	}
	offer := checkNewSession(t, cur, p.ID())
	if iceUfrag(offer) == iceUfrag(offers[0]) {
		t.Fatal("the new session's offer is the old connection's")
	}
	if err := p.Answer(cur, answerFor(t, api, offer)); err != nil {
		t.Errorf("the new session's answer to its offer: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // late candidates of the old connection, if any
	checkReplaced(t, old, p.ID())
	checkNewSession(t, cur, p.ID())
}

// TestResumeRightAfterJoin: a resume that comes while the join is still
// under way (joined is out, the first sub offer not yet) gives the new
// session one offer, of its new connection, whose answer completes it;
// the old connection's offer goes to the old session or nowhere.
func TestResumeRightAfterJoin(t *testing.T) {
	s := newLoopbackSFU(t, 10*time.Second)
	api := loopbackAPI(t)
	old, cur := &recSink{}, &recSink{}
	resumed := make(chan error, 1)
	old.onJoined = func(j JoinedEvent) {
		go func() {
			_, err := s.Resume(ResumeParams{Token: j.ResumeToken, Room: "r", Sink: cur})
			resumed <- err
		}()
		time.Sleep(50 * time.Millisecond) // the resume waits for the room lock, Join holds it
	}
	p, err := s.Join(JoinParams{Room: "r", Name: "g", Role: RoleGuest, Sink: old})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Leave()
	if err := <-resumed; err != nil {
		t.Fatalf("resume: %v", err)
	}
	offer := checkNewSession(t, cur, p.ID())
	if err := p.Answer(cur, answerFor(t, api, offer)); err != nil {
		t.Errorf("the new session's answer to its offer: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	checkReplaced(t, old, p.ID())
	checkNewSession(t, cur, p.ID())
}

// TestRetiredGate: a retired gate sends none of its connection's
// candidates, held or later.
func TestRetiredGate(t *testing.T) {
	sink := &recSink{}
	g := &candidateGate{pc: Sub, sink: sink, log: slog.New(slog.DiscardHandler)}
	g.onLocal(nil) // held
	g.retire()
	g.setLocalReady()
	g.onLocal(nil)
	if events, _ := sink.snapshot(); len(events) != 0 {
		t.Errorf("a retired gate sent %v", events)
	}
}
