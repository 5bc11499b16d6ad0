package sfu

import (
	"fmt"
	"slices"

	"github.com/lianmai/relay/media"
)

// Remote publishers: a room can show publishers that are not its own
// participants and hear their tracks. A remote publisher has an id, a
// name, a role and optionally the room it publishes in, but no peer
// connection and no sink: its tracks are media.UpTracks fed elsewhere. On
// one node a cross-room link (pk.go) mirrors each linked room's
// publishers into the other with the source room's own UpTracks, shared:
// the mirroring room subscribes its listeners to them and taps them for
// its mix, and never closes them. A relay-to-relay link (a cluster edge)
// would feed its own UpTracks the same way.
//
// The room stays the one authority over what its clients see: adding or
// removing a remote publisher or its tracks sends the usual
// participant_joined/left and track_published/unpublished, and brings
// every listener's sub connection in line through the usual path
// (requestSync). Muting a remote publisher stops it in this room only:
// its tracks reach this room's listeners through one media.Gate per
// track (the source track, its own room and other rooms go on), and this
// room's mix inputs for them are muted.
//
// Every method takes the room's lock, and only that lock: a remote
// publisher shares no lock with the room its tracks come from.

// RoleRemote is the role of a publisher of another room shown in this
// one while the rooms are linked (pk.go): it publishes and is heard, but
// takes no seat, and hosts may mute it here but not kick it.
const RoleRemote Role = "remote"

// RemoteParams describe a remote publisher (Room.AddRemote).
type RemoteParams struct {
	// ID is the participant id the room's clients see. It must be the
	// StreamID of the tracks it publishes (for a publisher mirrored from
	// another room, its participant id there), which is how clients
	// match a track on sub to its publisher.
	ID   string
	Name string
	// Role is RoleRemote for a publisher of a linked room, or the
	// publisher's own role (host, guest) for one shown as if local (a
	// cluster edge showing its owner's publishers).
	Role Role
	// Room is the room the publisher is in, shown to clients
	// (participant.room); "" for none.
	Room string
	// Muted is its mute state where it publishes (see Remote.SetMuted).
	Muted bool
}

// Remote is a remote publisher in one room, made by Room.AddRemote.
// Its methods are safe for concurrent use.
type Remote struct {
	room *Room
	info Info
	done chan struct{} // closed once removed (Remove, or the room ended)

	// Guarded by room.mu.
	tracks      []remoteTrack // in publish order
	sourceMuted bool          // muted where it publishes (SetMuted)
	hostMuted   bool          // muted in this room by one of its hosts
	gone        bool
}

// remoteTrack is one of a remote publisher's tracks as one room hears
// it: the shared track and this room's gate on it.
type remoteTrack struct {
	up   *media.UpTrack
	gate *media.Gate // shared by this room's down tracks of up; closed while hostMuted
}

// Room returns the named room if it exists (it has participants).
func (s *SFU) Room(name string) (*Room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[name]
	return r, ok
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// AddRemote adds a remote publisher to the room and tells the room's
// participants (participant_joined). ErrClosed if the room has ended (its
// last participant left), ErrConflict if the id is taken, ErrBadRequest
// for an empty id or a role that does not publish.
func (r *Room) AddRemote(rp RemoteParams) (*Remote, error) {
	if rp.ID == "" {
		return nil, fmt.Errorf("%w: a remote publisher needs an id", ErrBadRequest)
	}
	if rp.Role != RoleRemote && !rp.Role.publishes() {
		return nil, fmt.Errorf("%w: a remote publisher's role is remote, host or guest, not %q", ErrBadRequest, rp.Role)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return nil, fmt.Errorf("%w: room %s has ended", ErrClosed, r.name)
	}
	if r.findLocked(rp.ID) != nil || r.findRemoteLocked(rp.ID) != nil {
		return nil, fmt.Errorf("%w: room %s already has a participant %s", ErrConflict, r.name, rp.ID)
	}
	x := &Remote{
		room:        r,
		info:        Info{ID: rp.ID, Name: rp.Name, Role: rp.Role, Room: rp.Room},
		done:        make(chan struct{}),
		sourceMuted: rp.Muted,
	}
	r.remotes = append(r.remotes, x)
	r.sendAllLocked(ParticipantJoinedEvent{Participant: x.info})
	return x, nil
}

// ID is the remote publisher's participant id.
func (x *Remote) ID() string { return x.info.ID }

// Done is closed once the remote publisher has left the room: by Remove,
// or because the room ended (its last participant left).
func (x *Remote) Done() <-chan struct{} { return x.done }

// Publish makes t one of the remote publisher's tracks in this room:
// everyone is told (track_published), listeners subscribe, and the room's
// mix takes it as an input. t stays its owner's: the room never closes
// it. Publishing a track twice is a no-op; ErrClosed once removed.
func (x *Remote) Publish(t *media.UpTrack) error {
	r := x.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if x.gone {
		return fmt.Errorf("%w: remote publisher %s has left room %s", ErrClosed, x.info.ID, r.name)
	}
	if x.trackIndexLocked(t) >= 0 {
		return nil
	}
	g := &media.Gate{}
	g.SetMuted(x.hostMuted)
	x.tracks = append(x.tracks, remoteTrack{up: t, gate: g})
	r.sendAllLocked(TrackPublishedEvent{Participant: x.info.ID, Track: trackInfo(t)})
	if r.mix != nil {
		r.addMixInputLocked(t, x.hostMuted)
	} else {
		r.updateMixLocked()
	}
	r.syncOthersLocked(nil)
	r.startSpeakersLocked()
	return nil
}

// Unpublish takes t out of the room (track_unpublished; listeners
// unsubscribe, the mix drops its input) without closing it. A track the
// publisher does not have is ignored.
func (x *Remote) Unpublish(t *media.UpTrack) {
	r := x.room
	r.mu.Lock()
	defer r.mu.Unlock()
	i := x.trackIndexLocked(t)
	if i < 0 {
		return
	}
	x.tracks = slices.Delete(x.tracks, i, i+1)
	r.unpublishRemoteLocked(x, t)
	r.updateMixLocked()
	r.syncOthersLocked(nil)
}

// SetMuted records the publisher's mute state where it publishes (its
// source track is already muted there, which silences it everywhere) and
// tells this room (muted, by the publisher itself) if what the room sees
// changed.
func (x *Remote) SetMuted(muted bool) {
	r := x.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if x.gone || x.sourceMuted == muted {
		return
	}
	was := x.mutedLocked()
	x.sourceMuted = muted
	if now := x.mutedLocked(); now != was {
		r.sendAllLocked(MutedEvent{Participant: x.info.ID, Muted: now, By: x.info.ID})
	}
}

// Remove takes the remote publisher out of the room: its tracks are
// unpublished (not closed), then participant_left with reason goes to
// everyone. Only the first call does anything.
func (x *Remote) Remove(reason Reason) {
	r := x.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if x.gone {
		return
	}
	r.remotes = slices.DeleteFunc(r.remotes, func(y *Remote) bool { return y == x })
	r.endRemoteLocked(x, true)
	r.sendAllLocked(ParticipantLeftEvent{ID: x.info.ID, Reason: reason})
	r.updateMixLocked()
	r.syncOthersLocked(nil)
}

// endRemoteLocked marks x gone and takes its tracks out of the room;
// tell sends track_unpublished for each.
func (r *Room) endRemoteLocked(x *Remote, tell bool) {
	x.gone = true
	for _, rt := range x.tracks {
		r.removeMixInputLocked(rt.up)
		if tell {
			r.sendAllLocked(TrackUnpublishedEvent{Participant: x.info.ID, Track: rt.up.ID()})
		}
	}
	x.tracks = nil
	close(x.done)
}

// unpublishRemoteLocked takes t, no longer one of x's tracks, out of the
// room's mix and tells everyone.
func (r *Room) unpublishRemoteLocked(x *Remote, t *media.UpTrack) {
	r.removeMixInputLocked(t)
	r.sendAllLocked(TrackUnpublishedEvent{Participant: x.info.ID, Track: t.ID()})
}

// endRemotesLocked ends every remote publisher, silently: the room has
// ended and nobody is left to tell.
func (r *Room) endRemotesLocked() {
	for _, x := range r.remotes {
		r.endRemoteLocked(x, false)
	}
	r.remotes = nil
}

// muteRemoteLocked mutes or unmutes x in this room at a host's request:
// its tracks' gates and this room's mix inputs for them.
func (r *Room) muteRemoteLocked(x *Remote, muted bool) {
	x.hostMuted = muted
	for _, rt := range x.tracks {
		rt.gate.SetMuted(muted)
		r.muteMixInputLocked(rt.up, muted)
	}
}

// mutedLocked reports whether this room hears x as muted.
func (x *Remote) mutedLocked() bool { return x.sourceMuted || x.hostMuted }

func (x *Remote) trackIndexLocked(t *media.UpTrack) int {
	return slices.IndexFunc(x.tracks, func(rt remoteTrack) bool { return rt.up == t })
}

func (r *Room) findRemoteLocked(id string) *Remote {
	for _, x := range r.remotes {
		if x.info.ID == id {
			return x
		}
	}
	return nil
}
