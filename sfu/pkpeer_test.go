package sfu

import (
	"testing"
	"time"

	"github.com/lianmai/relay/media"
)

// TestOwnOnlyHearsOwnPublishers: the owner's end of a cross-node PK link
// (JoinParams.Hidden and OwnOnly) is to get the room's own publishers'
// tracks, not those of the remote publishers shown in the room (they came
// from the other relay and must not cross back); a hidden participant
// without OwnOnly (an edge's link) and an audience member get both.
func TestOwnOnlyHearsOwnPublishers(t *testing.T) {
	s := newLoopbackSFU(t, time.Second)
	host, err := s.Join(JoinParams{Room: "r", Name: "h", Role: RoleHost, Sink: newEventSink()})
	if err != nil {
		t.Fatal(err)
	}
	join := func(name string, hidden, ownOnly bool) *Participant {
		t.Helper()
		p, err := s.Join(JoinParams{Room: "r", Name: name, Role: RoleAudience, Sink: newEventSink(), Listen: ListenTracks, Hidden: hidden, OwnOnly: ownOnly})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkLink, edgeLink, listener := join("pk", true, true), join("edge", true, false), join("l", false, false)
	r := host.room
	own := media.NewUpTrack(media.UpTrackParams{ID: newID("t_"), Kind: "audio", StreamID: host.id, Metrics: s.cfg.Metrics.Media})
	if !r.publish(host, own) {
		t.Fatal("publish refused")
	}
	x, err := r.AddRemote(RemoteParams{ID: "p_other", Name: "other", Role: RoleRemote, Room: "other"})
	if err != nil {
		t.Fatal(err)
	}
	remote := media.NewUpTrack(media.UpTrackParams{ID: newID("t_"), Kind: "audio", StreamID: "p_other", Metrics: s.cfg.Metrics.Media})
	defer remote.Close()
	if err := x.Publish(remote); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p          *Participant
		own, other bool
	}{{pkLink, true, false}, {edgeLink, true, true}, {listener, true, true}} {
		want, _ := r.tracksFor(c.p)
		_, gotOwn := want[own]
		_, gotOther := want[remote]
		if gotOwn != c.own || gotOther != c.other {
			t.Errorf("%s: gets the room's own track %v, the remote one %v; want %v, %v", c.p.name, gotOwn, gotOther, c.own, c.other)
		}
	}
	// OwnOnly is for hidden participants only: a visible one ignores it.
	if p := join("visible", false, true); p.ownOnly {
		t.Error("OwnOnly took effect without Hidden")
	}
}
