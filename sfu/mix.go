package sfu

import (
	"fmt"

	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/media"
)

// Listen is what an audience member's sub connection carries.
type Listen string

// Listening choices.
const (
	ListenTracks Listen = "tracks" // one track per published track (hosts and guests always)
	ListenMix    Listen = "mix"    // one track: the room's audience mix
)

// MixParticipant is the participant id of the mix in track_published and
// track_unpublished, and the MediaStream id of its track on sub.
const MixParticipant = "mix"

// Mixer is one room's audience mix as the room layer drives it: every
// published track of the room is an input, and the mixed packets come out
// through the out function given to Config.NewMixer. The implementation
// (package mix, libopus) is handed in by the relay's constructor, so that
// sfu does not depend on cgo.
//
// The room calls every method with its lock held: none may block for
// long or call back into the sfu.
type Mixer interface {
	// AddInput adds an input for one published track.
	AddInput() MixInput
	// RemoveInput takes an input out of the mix at once. Its WriteRTP may
	// still be called once, concurrently or after (by a track's reader
	// that loaded the tap just before it was removed): that must be
	// harmless.
	RemoveInput(MixInput)
	// Close stops the mixer; out is not called after Close returns.
	Close()
}

// MixInput is one published track's input to a Mixer. WriteRTP is called
// by the track's reader (media.Tap); SetMuted by the room when the
// publisher is muted or unmuted (the reader then stops or resumes writing).
type MixInput interface {
	media.Tap
	SetMuted(muted bool)
}

// NewMixerFunc starts a room's mixer, which hands each mixed RTP packet
// (pkt holding n bytes, with one reference that passes to out) to out,
// from one goroutine, never two calls at once.
type NewMixerFunc func(out func(pkt *bufpool.Packet, n int)) (Mixer, error)

// roomMix is a room's running mix: the mixer, the published track its
// packets go out on, and an input per published track. Guarded by the
// room's mu.
type roomMix struct {
	mixer  Mixer
	up     *media.UpTrack
	inputs map[*media.UpTrack]MixInput
}

// validListen checks a join's choice; "" means the relay's default.
func validListen(l Listen) error {
	switch l {
	case "", ListenTracks, ListenMix:
		return nil
	}
	return fmt.Errorf("%w: listen must be %q or %q, not %q", ErrBadRequest, ListenMix, ListenTracks, l)
}

// listening is what p's sub connection carries in its current role:
// hosts and guests always get tracks. Guarded by room.mu.
func (p *Participant) listening() Listen {
	if p.role.publishes() {
		return ListenTracks
	}
	return p.listen
}

// countListenLocked moves p in the listeners gauge.
func (r *Room) countListenLocked(p *Participant, delta int) {
	r.sfu.cfg.Metrics.Listeners.WithLabelValues(string(p.listening())).Add(float64(delta))
}

// mixWantedLocked reports whether the room needs its mix: someone listens
// to it and some track is published.
func (r *Room) mixWantedLocked() bool {
	listener, track := false, false
	for _, q := range r.participants {
		listener = listener || q.listening() == ListenMix
		track = track || len(q.tracks) > 0
	}
	for _, x := range r.remotes {
		track = track || len(x.tracks) > 0
	}
	return listener && track
}

// updateMixLocked starts or stops the room's mix as mixWantedLocked says.
// A mixer that fails to start is logged and counted; the mix listeners
// then get the publishers' tracks (tracksFor) until a later change starts
// it.
func (r *Room) updateMixLocked() {
	want := r.mixWantedLocked()
	switch {
	case want && r.mix == nil && r.sfu.cfg.NewMixer != nil:
		r.startMixLocked()
	case !want && r.mix != nil:
		r.stopMixLocked()
	}
}

func (r *Room) startMixLocked() {
	up := media.NewUpTrack(media.UpTrackParams{
		ID:       newID("t_"),
		Kind:     "audio",
		StreamID: MixParticipant,
		Batch:    media.BatchOf(r.sfu.cfg.ICE.UDPMux),
		Local:    true,
		Metrics:  r.sfu.cfg.Metrics.Media,
	})
	mixer, err := r.sfu.cfg.NewMixer(up.Forward)
	if err != nil {
		up.Close()
		r.sfu.cfg.Metrics.MixStartErrors.Inc()
		r.sfu.log.Error("cannot start the room's audience mix; its mix listeners get separate tracks meanwhile", "room", r.name, "err", err)
		return
	}
	r.mix = &roomMix{mixer: mixer, up: up, inputs: make(map[*media.UpTrack]MixInput)}
	r.sfu.cfg.Metrics.MixRooms.Inc()
	for _, q := range r.participants {
		for _, t := range q.tracks {
			r.addMixInputLocked(t, t.Muted())
		}
	}
	for _, x := range r.remotes {
		for _, rt := range x.tracks {
			r.addMixInputLocked(rt.up, x.hostMuted)
		}
	}
	for _, q := range r.participants {
		if q.listening() == ListenMix {
			q.sink.Send(r.mixPublishedLocked())
			q.requestSync()
		}
	}
}

// stopMixLocked stops the mix: its inputs leave the tracks, the mixer
// closes, and its listeners are told and renegotiate.
func (r *Room) stopMixLocked() {
	mx := r.mix
	r.mix = nil
	for t, in := range mx.inputs {
		t.RemoveTap(in)
		mx.mixer.RemoveInput(in)
	}
	mx.mixer.Close()
	mx.up.Close()
	mx.up.ReleaseHistory() // out is not called after Close: nothing puts any more
	r.sfu.cfg.Metrics.MixRooms.Dec()
	for _, q := range r.participants {
		if q.listening() == ListenMix {
			q.sink.Send(TrackUnpublishedEvent{Participant: MixParticipant, Track: mx.up.ID()})
			q.requestSync()
		}
	}
}

// addMixInputLocked makes t an input of the running mix, muted or not.
// t may be tapped by other rooms' mixes too (a linked room's publisher).
func (r *Room) addMixInputLocked(t *media.UpTrack, muted bool) {
	in := r.mix.mixer.AddInput()
	in.SetMuted(muted)
	r.mix.inputs[t] = in
	t.AddTap(in)
}

// removeMixInputLocked takes t out of the running mix, if any.
func (r *Room) removeMixInputLocked(t *media.UpTrack) {
	if r.mix == nil {
		return
	}
	in, ok := r.mix.inputs[t]
	if !ok {
		return
	}
	t.RemoveTap(in)
	r.mix.mixer.RemoveInput(in)
	delete(r.mix.inputs, t)
}

// muteMixInputLocked follows t's mute in the running mix, at once (the
// reader stops writing to the input anyway; the mixer also drops what it
// holds of it).
func (r *Room) muteMixInputLocked(t *media.UpTrack, muted bool) {
	if r.mix == nil {
		return
	}
	if in, ok := r.mix.inputs[t]; ok {
		in.SetMuted(muted)
	}
}

func (r *Room) mixPublishedLocked() TrackPublishedEvent {
	return TrackPublishedEvent{Participant: MixParticipant, Track: trackInfo(r.mix.up)}
}

// listenChangedLocked brings q in line after its role changed what it
// receives (was: before the change): it is told the mix track came or
// went, its sub connection renegotiates, and the mix starts or stops.
func (r *Room) listenChangedLocked(q *Participant, was Listen) {
	now := q.listening()
	if now == was {
		return
	}
	if r.mix != nil {
		if now == ListenMix {
			q.sink.Send(r.mixPublishedLocked())
		} else {
			q.sink.Send(TrackUnpublishedEvent{Participant: MixParticipant, Track: r.mix.up.ID()})
		}
	}
	q.requestSync()
	r.updateMixLocked() // a start or stop tells q itself; q was told of the old state above
}
