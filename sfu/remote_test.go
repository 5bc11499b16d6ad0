package sfu

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// countMixer is a mixer whose inputs count what they are given: enough to
// see which rooms' mixes a track feeds (the real mixer's tones are heard
// end to end in signaling's tests).
type countMixer struct{}

type countInput struct {
	writes atomic.Int64
	muted  atomic.Bool
}

func (countMixer) AddInput() MixInput                         { return &countInput{} }
func (countMixer) RemoveInput(MixInput)                       {}
func (countMixer) Close()                                     {}
func (in *countInput) WriteRTP(uint16, uint32, []byte)        { in.writes.Add(1) }
func (in *countInput) SetMuted(m bool)                        { in.muted.Store(m) }
func newCountMixer(func(*bufpool.Packet, int)) (Mixer, error) { return countMixer{}, nil }

// payloadOf is the test publisher's payload for seq: an Opus TOC byte,
// the sequence number and a marker byte, so that a listener can check
// every payload it gets byte for byte.
func payloadOf(seq uint16) []byte { return []byte{0xfc, byte(seq >> 8), byte(seq), 0xaa} }

// TestRemotePublisher: room a's host publishes through a real SFU; room
// b shows it as a remote publisher with room a's own track. Room b's
// listeners hear it byte for byte and its mix takes it as an input beside
// room a's; a host of b mutes it in b only; it cannot be kicked; a late
// joiner of b sees it in joined; Remove takes it out of b and leaves room
// a's listener hearing the track, which stays open; a room that ends
// takes its remote publishers with it.
func TestRemotePublisher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var serving sync.WaitGroup
	defer func() {
		cancel()
		serving.Wait()
	}()
	s := newLoopbackSFU(t, time.Second)
	s.cfg.NewMixer = newCountMixer
	api := loopbackAPI(t)

	sinks := map[*testPeer]*eventSink{}
	join := func(room, name string, role Role, listen Listen, watch bool) *testPeer {
		t.Helper()
		tp := newTestPeer(t, api)
		tp.others = make(chan Event, 256)
		sink := newEventSink()
		p, err := s.Join(JoinParams{Room: room, Name: name, Role: role, Sink: sink, Listen: listen})
		if err != nil {
			t.Fatal(err)
		}
		tp.p = p
		sinks[tp] = sink
		serving.Go(func() { tp.serve(ctx, sink) })
		if watch { // the test reads its events
			return tp
		}
		serving.Go(func() {
			for {
				select {
				case <-tp.others:
				case <-ctx.Done():
					return
				}
			}
		})
		return tp
	}
	hostA := join("a", "host-a", RoleHost, "", false)
	la := join("a", "la", RoleAudience, ListenTracks, false)
	join("a", "ma", RoleAudience, ListenMix, false)
	hostB := join("b", "host-b", RoleHost, "", false)
	lb := join("b", "lb", RoleAudience, ListenTracks, true)
	join("b", "mb", RoleAudience, ListenMix, false)

	track, err := webrtc.NewTrackLocalStaticRTP(media.Opus.RTPCodecCapability, "audio", "host-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostA.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	hostA.offerPub(sinks[hostA], false)
	defer sendEvery10ms(ctx, track, payloadOf)()

	// Payloads of the first track each listener gets, checked byte for byte.
	heard := func(tp *testPeer, who string) chan []byte {
		t.Helper()
		var tr *webrtc.TrackRemote
		select {
		case tr = <-tp.tracks:
		case <-ctx.Done():
			t.Fatalf("%s got no track", who)
		}
		if tr.StreamID() != hostA.p.id {
			t.Errorf("%s's track has stream id %q, want the publisher's id %q", who, tr.StreamID(), hostA.p.id)
		}
		ch := make(chan []byte, 4096)
		go func() { // ends when the peer closes, at cleanup
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if len(pkt.Payload) == 0 {
					continue
				}
				if want := payloadOf(uint16(pkt.Payload[1])<<8 | uint16(pkt.Payload[min(2, len(pkt.Payload)-1)])); string(pkt.Payload) != string(want) {
					t.Errorf("%s got payload % x, want % x", who, pkt.Payload, want)
				}
				select {
				case ch <- pkt.Payload:
				default:
				}
			}
		}()
		return ch
	}
	// packets waits for n new packets on ch (what it held before is dropped).
	packets := func(ch chan []byte, n int, what string) {
		t.Helper()
		for len(ch) > 0 {
			<-ch
		}
		for range n {
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatalf("no audio %s", what)
			}
		}
	}
	// silent checks that quiet gets nothing while clock gets 30 packets
	// (after 10 for what was on the way).
	silent := func(quiet, clock chan []byte, what string) {
		t.Helper()
		packets(clock, 10, "at room a's listener")
		for len(quiet) > 0 {
			<-quiet
		}
		packets(clock, 30, "at room a's listener")
		if n := len(quiet); n > 0 {
			t.Errorf("%s: room b's listener got %d packets while room a's got 30, want none", what, n)
		}
	}
	fromA := heard(la, "room a's listener")
	packets(fromA, 10, "at room a's listener")

	ra := hostA.p.room
	ra.mu.Lock()
	up := hostA.p.tracks[0]
	ra.mu.Unlock()
	rb, ok := s.Room("b")
	if !ok || rb.Name() != "b" {
		t.Fatal("SFU.Room does not find room b")
	}
	x, err := rb.AddRemote(RemoteParams{ID: hostA.p.id, Name: "host-a", Role: RoleRemote, Room: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Publish(up); err != nil {
		t.Fatal(err)
	}
	next := func(tp *testPeer, match func(Event) bool, what string) Event {
		t.Helper()
		for {
			select {
			case ev := <-tp.others:
				if match(ev) {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("room b's listener was not told %s", what)
			}
		}
	}
	pj := next(lb, func(ev Event) bool { _, ok := ev.(ParticipantJoinedEvent); return ok }, "participant_joined").(ParticipantJoinedEvent)
	if want := (Info{ID: hostA.p.id, Name: "host-a", Role: RoleRemote, Room: "a"}); pj.Participant != want {
		t.Errorf("participant_joined %+v, want %+v", pj.Participant, want)
	}
	tp := next(lb, func(ev Event) bool { _, ok := ev.(TrackPublishedEvent); return ok }, "track_published").(TrackPublishedEvent)
	if tp.Participant != hostA.p.id || tp.Track.ID != up.ID() {
		t.Errorf("track_published %+v, want track %s of %s", tp, up.ID(), hostA.p.id)
	}
	fromB := heard(lb, "room b's listener")
	packets(fromB, 20, "at room b's listener")

	mixInput := func(r *Room) *countInput {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.mix == nil || r.mix.inputs[up] == nil {
			return nil
		}
		return r.mix.inputs[up].(*countInput)
	}
	inA, inB := mixInput(ra), mixInput(rb)
	if inA == nil || inB == nil {
		t.Fatalf("mix inputs for the track: room a %v, room b %v; want both", inA != nil, inB != nil)
	}
	before := inB.writes.Load()
	packets(fromA, 10, "at room a's listener")
	if inB.writes.Load() == before || inA.writes.Load() == 0 {
		t.Errorf("mix inputs got %d (room a) and %d more (room b) writes over 10 packets; want both fed", inA.writes.Load(), inB.writes.Load()-before)
	}

	// Mutes: a host of b mutes it in b only; an audience member may not.
	if err := lb.p.Mute(x.ID(), true); !errors.Is(err, ErrForbidden) {
		t.Errorf("an audience member mutes a remote publisher: %v, want ErrForbidden", err)
	}
	if err := hostB.p.Mute(x.ID(), true); err != nil {
		t.Fatal(err)
	}
	m := next(lb, func(ev Event) bool { _, ok := ev.(MutedEvent); return ok }, "muted").(MutedEvent)
	if m != (MutedEvent{Participant: x.ID(), Muted: true, By: hostB.p.id}) {
		t.Errorf("muted %+v", m)
	}
	silent(fromB, fromA, "muted in room b")
	if !inB.muted.Load() || inA.muted.Load() || up.Muted() {
		t.Errorf("muted in room b: room b's mix input muted %t (want true), room a's %t, the track %t (want false)", inB.muted.Load(), inA.muted.Load(), up.Muted())
	}
	if err := hostB.p.Mute(x.ID(), false); err != nil {
		t.Fatal(err)
	}
	packets(fromB, 20, "at room b's listener after the unmute")

	if err := hostB.p.Kick(x.ID(), ""); !errors.Is(err, ErrForbidden) {
		t.Errorf("kick of a remote publisher: %v, want ErrForbidden", err)
	}
	if _, err := rb.AddRemote(RemoteParams{ID: x.ID(), Name: "again", Role: RoleRemote}); !errors.Is(err, ErrConflict) {
		t.Errorf("a second remote publisher with the same id: %v, want ErrConflict", err)
	}
	if _, err := rb.AddRemote(RemoteParams{ID: "p_x", Name: "x", Role: RoleAudience}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a remote publisher with role audience: %v, want ErrBadRequest", err)
	}

	// A late joiner sees it.
	late := newEventSink()
	lp, err := s.Join(JoinParams{Room: "b", Name: "late", Role: RoleAudience, Sink: late, Sub: SubNone})
	if err != nil {
		t.Fatal(err)
	}
	j := (<-late.events).(JoinedEvent)
	found := false
	for _, o := range j.Others {
		if o.Info == pj.Participant && len(o.Tracks) == 1 && o.Tracks[0].ID == up.ID() {
			found = true
		}
	}
	if !found {
		t.Errorf("joined lists %+v, without the remote publisher and its track", j.Others)
	}
	lp.Leave()

	x.Remove(ReasonLeft)
	next(lb, func(ev Event) bool { _, ok := ev.(TrackUnpublishedEvent); return ok }, "track_unpublished")
	pl := next(lb, func(ev Event) bool { _, ok := ev.(ParticipantLeftEvent); return ok }, "participant_left").(ParticipantLeftEvent)
	if pl != (ParticipantLeftEvent{ID: x.ID(), Reason: ReasonLeft}) {
		t.Errorf("participant_left %+v", pl)
	}
	select {
	case <-x.Done():
	default:
		t.Error("Done not closed after Remove")
	}
	silent(fromB, fromA, "removed from room b")
	if err := x.Publish(up); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Remove: %v, want ErrClosed", err)
	}

	// A room that ends takes its remote publishers with it.
	y, err := rb.AddRemote(RemoteParams{ID: hostA.p.id, Name: "host-a", Role: RoleRemote, Room: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Publish(up); err != nil {
		t.Fatal(err)
	}
	for _, q := range rb.snapshot() {
		q.Leave()
	}
	select {
	case <-y.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed when the room ended")
	}
	if _, ok := s.Room("b"); ok {
		t.Error("room b is still there with no participant")
	}
	packets(fromA, 20, "at room a's listener once room b ended: the track is room a's")
}
