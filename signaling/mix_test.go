package signaling_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
)

// The room layer's handling of the audience mix, with real pion peers and
// the PASS-THROUGH MIXER TEST DOUBLE (relaytest.PassMixes): it forwards
// the newest unmuted input's payloads unchanged as its own stream, so
// these tests can tell from the payloads whose track the mix carries.
// They test when mixers start and stop, their inputs, mutes and role
// switches, and what a mix listener receives and is told; not the mixing
// (package mix's own tests and the end-to-end tests with it do).

// joinListen dials a client that asks for listen ("" for the relay's
// default), closed at cleanup.
func (r *relay) joinListen(ctx context.Context, t *testing.T, room, name, role, listen string) *client.Client {
	t.Helper()
	return r.dial(ctx, t, client.Config{Room: room, Name: name, Role: role, Listen: listen})
}

// startPublishing publishes a voice-like stream from c (seed tells it
// from others) until the test ends; what was sent is recorded as it goes.
func startPublishing(ctx context.Context, t *testing.T, c *client.Client, seed int64) *sentStream {
	t.Helper()
	pub, err := c.Publish(ctx)
	if err != nil {
		t.Fatalf("%s publishes: %v", c.ID(), err)
	}
	if err := pub.Connected(ctx); err != nil {
		t.Fatalf("%s pub connected: %v", c.ID(), err)
	}
	s := &sentStream{payloads: make(map[uint16][]byte)}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = publishTo(pctx, pub, s, seed, 1<<30) // until cancelled or the connection goes
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// payloadSet is every payload s has sent so far.
func (s *sentStream) payloadSet() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := make(map[string]bool, len(s.payloads))
	for _, p := range s.payloads {
		set[string(p)] = true
	}
	return set
}

// trackLog records every remote track a client gets, by stream id, with
// its payloads in arrival order.
type trackLog struct {
	mu       sync.Mutex
	streams  []string            // stream id of each track, in arrival order
	trackIDs map[string]string   // stream id → its latest track's id
	payloads map[string][][]byte // stream id → payloads, every track of that stream
}

// logTracks starts recording c's tracks; each reader ends with its track.
func logTracks(ctx context.Context, c *client.Client) *trackLog {
	l := &trackLog{trackIDs: map[string]string{}, payloads: map[string][][]byte{}}
	go func() {
		for {
			select {
			case rt := <-c.Tracks():
				l.mu.Lock()
				l.streams = append(l.streams, rt.StreamID)
				l.trackIDs[rt.StreamID] = rt.TrackID
				l.mu.Unlock()
				go func() {
					for {
						pkt, _, err := rt.Track.ReadRTP()
						if err != nil {
							return
						}
						l.mu.Lock()
						l.payloads[rt.StreamID] = append(l.payloads[rt.StreamID], append([]byte(nil), pkt.Payload...))
						l.mu.Unlock()
					}
				}()
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

func (l *trackLog) arrived() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.streams...)
}

func (l *trackLog) count(stream string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.payloads[stream])
}

// recent is the last n payloads of stream.
func (l *trackLog) recent(stream string, n int) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.payloads[stream]
	if len(p) > n {
		p = p[len(p)-n:]
	}
	return append([][]byte(nil), p...)
}

// hears waits until the last 30 payloads on l's stream are mostly (25)
// who's and none other's: what a listener hears through the pass-through
// mix, or a direct track.
func hears(ctx context.Context, t *testing.T, l *trackLog, stream string, who, other *sentStream, what string) {
	t.Helper()
	waitFor(ctx, t, what, func() bool {
		mine, theirs := who.payloadSet(), map[string]bool{}
		if other != nil {
			theirs = other.payloadSet()
		}
		n, wrong := 0, 0
		for _, p := range l.recent(stream, 30) {
			switch {
			case mine[string(p)] && !theirs[string(p)]:
				n++
			case theirs[string(p)] && !mine[string(p)]:
				wrong++
			}
		}
		return n >= 25 && wrong == 0
	})
}

func isMixPublished(e *protocol.TrackPublished) bool { return e.Participant == protocol.ParticipantMix }

func isMixUnpublished(e *protocol.TrackUnpublished) bool {
	return e.Participant == protocol.ParticipantMix
}

// TestMixLifecycle: a room's mixer starts only when it has both a mix
// listener and a published track, and stops when either goes; a mix
// listener's sub connection carries exactly one track, the mix (stream id
// mix, announced as participant mix), while it is still told of every
// publisher's tracks; the others never hear of the mix.
func TestMixLifecycle(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{PassMix: true})
	mixing := func(want int) {
		t.Helper()
		waitFor(ctx, t, "the running mixers to settle", func() bool { return r.Mixes.Running() == want })
		if got := r.counter(t, "relay_mix_rooms"); got != float64(want) {
			t.Errorf("relay_mix_rooms = %v, want %d", got, want)
		}
	}

	t.Run("a mix listener without a published track", func(t *testing.T) {
		_ = r.join(ctx, t, "quiet", "Host", protocol.RoleHost) // joined, not publishing
		lis := r.joinListen(ctx, t, "quiet", "L", protocol.RoleAudience, protocol.ListenMix)
		if got := lis.Joined().Listen; got != protocol.ListenMix {
			t.Errorf("joined.listen %q, want mix", got)
		}
		ping(ctx, t, lis)
		if n := len(r.Mixes.Started()); n != 0 {
			t.Errorf("%d mixers started in a room with no published track", n)
		}
	})

	host := r.join(ctx, t, "mx", "Host", protocol.RoleHost)
	plain := r.join(ctx, t, "mx", "Plain", protocol.RoleAudience) // a version 1 client: no listen
	plainLog := logTracks(ctx, plain)
	hostSent := startPublishing(ctx, t, host, 1)
	hears(ctx, t, plainLog, host.ID(), hostSent, nil, "the plain audience member to hear the host")
	if n := len(r.Mixes.Started()); n != 0 {
		t.Fatalf("%d mixers started in a room nobody listens to as mix", n)
	}
	if got := plain.Joined().Listen; got != protocol.ListenTracks {
		t.Errorf("joined.listen %q for a join without listen, want the default tracks", got)
	}
	if got := host.Joined().Listen; got != protocol.ListenTracks {
		t.Errorf("joined.listen %q for a host, want tracks", got)
	}

	lis := r.joinListen(ctx, t, "mx", "L1", protocol.RoleAudience, protocol.ListenMix)
	lisLog := logTracks(ctx, lis)
	mp := waitEvent(ctx, t, lis, isMixPublished)
	mixing(1)
	hears(ctx, t, lisLog, protocol.ParticipantMix, hostSent, nil, "the mix listener to hear the host through the mix")
	if got := lisLog.arrived(); len(got) != 1 || got[0] != protocol.ParticipantMix {
		t.Errorf("the mix listener's tracks: stream ids %v, want exactly one: mix", got)
	}
	if id := lisLog.trackIDs[protocol.ParticipantMix]; id != mp.Track.ID {
		t.Errorf("the mix track's id %q, want %q of track_published", id, mp.Track.ID)
	}
	if sdp := lis.SubOfferSDP(); !strings.Contains(sdp, "msid:mix "+mp.Track.ID) || strings.Contains(sdp, host.ID()) {
		t.Errorf("the mix listener's sub offer should carry the mix track and no publisher's:\n%s", sdp)
	}
	if st := r.Mixes.Started()[0].State(); st.Inputs != 1 || st.Muted != 0 {
		t.Errorf("mixer inputs %d (muted %d), want the host's one track", st.Inputs, st.Muted)
	}
	if got := r.counter(t, "relay_listeners", "listen", "mix"); got != 2 { // L1, and L in room quiet
		t.Errorf(`relay_listeners{listen="mix"} = %v, want 2`, got)
	}
	for _, c := range []*client.Client{host, plain} {
		ping(ctx, t, c)
		noEvent(t, c, "a tracks listener told of the mix", isMixPublished)
	}

	if err := lis.Leave(ctx); err != nil {
		t.Fatalf("L1 leaves: %v", err)
	}
	mixing(0)

	lis2 := r.joinListen(ctx, t, "mx", "L2", protocol.RoleAudience, protocol.ListenMix)
	lis2Log := logTracks(ctx, lis2)
	mp2 := waitEvent(ctx, t, lis2, isMixPublished)
	mixing(1)
	if n := len(r.Mixes.Started()); n != 2 {
		t.Errorf("%d mixers started, want a second one for the new listener", n)
	}
	hears(ctx, t, lis2Log, protocol.ParticipantMix, hostSent, nil, "the new mix listener to hear the host")

	guest := r.join(ctx, t, "mx", "Guest", protocol.RoleGuest)
	guestSent := startPublishing(ctx, t, guest, 2)
	gp := waitEvent(ctx, t, lis2, func(e *protocol.TrackPublished) bool { return e.Participant == guest.ID() })
	// The double forwards the newest input: the guest's.
	hears(ctx, t, lis2Log, protocol.ParticipantMix, guestSent, hostSent, "the mix listener to hear the guest's new track through the mix")
	if got := lis2Log.arrived(); len(got) != 1 {
		t.Errorf("the mix listener got tracks of streams %v after a second publisher, want only the mix", got)
	}
	if st := r.Mixes.Started()[1].State(); st.Inputs != 2 {
		t.Errorf("mixer inputs %d, want host's and guest's", st.Inputs)
	}

	if err := guest.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, lis2, func(e *protocol.TrackUnpublished) bool { return e.Track == gp.Track.ID })
	hears(ctx, t, lis2Log, protocol.ParticipantMix, hostSent, guestSent, "the mix listener to hear the host again once the guest's track ended")
	if st := r.Mixes.Started()[1].State(); st.Inputs != 1 {
		t.Errorf("mixer inputs %d after the guest left, want 1", st.Inputs)
	}

	if err := host.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(ctx, t, lis2, isMixUnpublished)
	if e.Track != mp2.Track.ID {
		t.Errorf("track_unpublished for the mix names %q, want %q", e.Track, mp2.Track.ID)
	}
	mixing(0)
	waitFor(ctx, t, "the mix track to leave the listener's sub offer", func() bool {
		return !strings.Contains(lis2.SubOfferSDP(), mp2.Track.ID)
	})
}

// TestMixMuteAndMic: a mute takes the publisher's input out of the mix at
// once (the mixer's input is muted before the reply); an audience member
// on the mix who goes on the mic switches to separate tracks (and hears
// the host directly), and back to the mix when taken off it, its own
// track leaving the mix.
func TestMixMuteAndMic(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{PassMix: true})
	host := r.join(ctx, t, "mm", "Host", protocol.RoleHost)
	lis := r.joinListen(ctx, t, "mm", "L", protocol.RoleAudience, protocol.ListenMix)
	a := r.joinListen(ctx, t, "mm", "A", protocol.RoleAudience, protocol.ListenMix)
	lisLog, aLog := logTracks(ctx, lis), logTracks(ctx, a)
	hostSent := startPublishing(ctx, t, host, 1)
	mp := waitEvent(ctx, t, a, isMixPublished)
	hears(ctx, t, lisLog, protocol.ParticipantMix, hostSent, nil, "L to hear the host through the mix")
	hears(ctx, t, aLog, protocol.ParticipantMix, hostSent, nil, "A to hear the host through the mix")
	mixer := r.Mixes.Started()[0]

	// A goes on the mic: it now hears the host's track itself.
	mustOK(ctx, t, a, micMsg("mic_request", ""))
	waitEvent[*protocol.MicRequested](ctx, t, host, nil)
	mustOK(ctx, t, host, micMsg("mic_accept", a.ID()))
	waitEvent(ctx, t, a, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleGuest })
	if e := waitEvent(ctx, t, a, isMixUnpublished); e.Track != mp.Track.ID {
		t.Errorf("A's track_unpublished for the mix names %q, want %q", e.Track, mp.Track.ID)
	}
	hears(ctx, t, aLog, host.ID(), hostSent, nil, "the new guest to hear the host's own track")
	waitFor(ctx, t, "the mix track to leave the guest's sub offer", func() bool {
		return !strings.Contains(a.SubOfferSDP(), mp.Track.ID)
	})
	if got := r.counter(t, "relay_listeners", "listen", "mix"); got != 1 {
		t.Errorf(`relay_listeners{listen="mix"} = %v with one mix listener left, want 1`, got)
	}
	if n := r.Mixes.Running(); n != 1 {
		t.Fatalf("%d mixers running, want the room's one (L still listens)", n)
	}

	aSent := startPublishing(ctx, t, a, 2)
	tp := waitEvent(ctx, t, lis, func(e *protocol.TrackPublished) bool { return e.Participant == a.ID() })
	hears(ctx, t, lisLog, protocol.ParticipantMix, aSent, hostSent, "L to hear the guest (the newest input) through the mix")

	t.Run("mute", func(t *testing.T) {
		mustOK(ctx, t, host, map[string]any{"type": "mute", "participant": a.ID(), "muted": true})
		if st := mixer.State(); st.Inputs != 2 || st.Muted != 1 {
			t.Errorf("after the mute's reply: %d inputs, %d muted; want 2, 1", st.Inputs, st.Muted)
		}
		hears(ctx, t, lisLog, protocol.ParticipantMix, hostSent, aSent, "L to hear the host once the guest is muted")
		mustOK(ctx, t, host, map[string]any{"type": "mute", "participant": a.ID(), "muted": false})
		if st := mixer.State(); st.Muted != 0 {
			t.Errorf("after the unmute's reply: %d muted inputs, want 0", st.Muted)
		}
		hears(ctx, t, lisLog, protocol.ParticipantMix, aSent, hostSent, "L to hear the guest again once unmuted")
	})

	t.Run("off the mic", func(t *testing.T) {
		mustOK(ctx, t, host, micMsg("mic_release", a.ID()))
		if st := mixer.State(); st.Inputs != 1 {
			t.Errorf("after mic_release's reply: %d inputs, want the host's alone", st.Inputs)
		}
		waitEvent(ctx, t, lis, func(e *protocol.TrackUnpublished) bool { return e.Track == tp.Track.ID })
		hears(ctx, t, lisLog, protocol.ParticipantMix, hostSent, aSent, "L to hear the host once the guest left the mic")
		waitEvent(ctx, t, a, func(e *protocol.RoleChanged) bool { return e.Participant == a.ID() && e.Role == protocol.RoleAudience })
		if e := waitEvent(ctx, t, a, isMixPublished); e.Track.ID != mp.Track.ID {
			t.Errorf("back in the audience, A is told of mix track %q, want the running mix %q", e.Track.ID, mp.Track.ID)
		}
		before := aLog.count(protocol.ParticipantMix)
		waitFor(ctx, t, "A to receive the mix again", func() bool { return aLog.count(protocol.ParticipantMix) > before+30 })
		hears(ctx, t, aLog, protocol.ParticipantMix, hostSent, aSent, "A to hear the host through the mix again")
		if got := r.counter(t, "relay_listeners", "listen", "mix"); got != 2 {
			t.Errorf(`relay_listeners{listen="mix"} = %v, want 2`, got)
		}
		if n := len(r.Mixes.Started()); n != 1 {
			t.Errorf("%d mixers started; the room's one should have run throughout", n)
		}
	})
}

// TestMixChoice: what a join gets for each relay default and listen
// field, and the fallback of a relay without a mixer: tracks, said in
// joined.listen. A version 1 client (no listen) gets the relay's default.
func TestMixChoice(t *testing.T) {
	tests := []struct {
		name     string
		mixer    bool
		defMix   bool // -audience-listen mix
		listen   string
		role     string
		want     string // joined.listen and what arrives on sub
		wantMix0 bool   // a mixer must have started
	}{
		{name: "no mixer, mix asked", listen: protocol.ListenMix, role: protocol.RoleAudience, want: protocol.ListenTracks},
		{name: "no mixer, mix by default", defMix: true, role: protocol.RoleAudience, want: protocol.ListenTracks},
		{name: "mix by default", mixer: true, defMix: true, role: protocol.RoleAudience, want: protocol.ListenMix, wantMix0: true},
		{name: "mix by default, tracks asked", mixer: true, defMix: true, listen: protocol.ListenTracks, role: protocol.RoleAudience, want: protocol.ListenTracks},
		{name: "tracks by default", mixer: true, role: protocol.RoleAudience, want: protocol.ListenTracks},
		{name: "a guest asking for the mix", mixer: true, listen: protocol.ListenMix, role: protocol.RoleGuest, want: protocol.ListenTracks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ctx := startRelay(t, relayOpts{PassMix: tt.mixer, Tune: func(c *server.Config) {
				if tt.defMix {
					c.SFU.AudienceListen = "mix"
				}
			}})
			host := r.join(ctx, t, "c", "Host", protocol.RoleHost)
			hostSent := startPublishing(ctx, t, host, 1)
			c := r.joinListen(ctx, t, "c", "C", tt.role, tt.listen)
			log := logTracks(ctx, c)
			if got := c.Joined().Listen; got != tt.want {
				t.Errorf("joined.listen %q, want %q", got, tt.want)
			}
			stream := host.ID()
			if tt.want == protocol.ListenMix {
				stream = protocol.ParticipantMix
			}
			hears(ctx, t, log, stream, hostSent, nil, "the host on stream "+stream)
			if got := log.arrived(); len(got) != 1 || got[0] != stream {
				t.Errorf("tracks of streams %v, want one: %s", got, stream)
			}
			started := r.Mixes != nil && len(r.Mixes.Started()) > 0
			if started != tt.wantMix0 {
				t.Errorf("a mixer started: %v, want %v", started, tt.wantMix0)
			}
		})
	}
}

// TestMixResume: a mix listener whose connection died resumes (new peer
// connections, no listen field in the resuming join) still on the mix: it
// is told of the running mix after joined and hears it again.
func TestMixResume(t *testing.T) {
	r, ctx := startRelay(t, relayOpts{PassMix: true})
	host := r.join(ctx, t, "rm", "Host", protocol.RoleHost)
	lis := r.joinListen(ctx, t, "rm", "L", protocol.RoleAudience, protocol.ListenMix)
	hostSent := startPublishing(ctx, t, host, 1)
	mp := waitEvent(ctx, t, lis, isMixPublished)
	hears(ctx, t, logTracks(ctx, lis), protocol.ParticipantMix, hostSent, nil, "L to hear the host through the mix")

	lis.Drop()
	back := r.rejoin(ctx, t, "rm", "L", protocol.RoleAudience, lis.Joined().Resume)
	backLog := logTracks(ctx, back)
	if j := back.Joined(); !j.Resumed || j.Listen != protocol.ListenMix {
		t.Errorf("joined after resume: resumed %v, listen %q; want true, mix", j.Resumed, j.Listen)
	}
	if e := waitEvent(ctx, t, back, isMixPublished); e.Track.ID != mp.Track.ID {
		t.Errorf("resumed listener told of mix track %q, want the running %q", e.Track.ID, mp.Track.ID)
	}
	hears(ctx, t, backLog, protocol.ParticipantMix, hostSent, nil, "the resumed listener to hear the mix")
	if n := len(r.Mixes.Started()); n != 1 {
		t.Errorf("%d mixers started, want the one that ran throughout", n)
	}
}
