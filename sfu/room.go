package sfu

import (
	"github.com/lianmai/relay/media"

	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Room is a set of participants who hear each other. It exists from its
// first join until its last participant leaves.
type Room struct {
	name string
	sfu  *SFU

	mu           sync.Mutex
	participants []*Participant // in join order
	remotes      []*Remote      // remote publishers (remote.go), in order added
	seats        int            // publishers (hosts and guests)
	audience     int
	gone         bool                      // removed from the relay; a join must find or make another
	edge         atomic.Pointer[EdgeHooks] // an edge room's hooks (edgeroom.go); nil for a room of this relay's own

	// Audience members elsewhere, added to the count clients see
	// (edgeroom.go): on an owner, its edges' listeners (by link); on an
	// edge, the owner's total less this edge's own.
	audienceElsewhere map[*Participant]int
	audienceOffset    int

	proxies int                     // proxy participants among participants (proxy.go)
	tickets map[string]inviteTicket // proxies' invitations, by ticket (proxy.go)

	audienceSent  int // the count last sent
	audienceAt    time.Time
	audienceTimer *time.Timer

	speakers      []Speaker   // as last sent
	speakersTimer *time.Timer // nil when the ticker is stopped

	mix *roomMix // the audience mix, nil when it does not run (mix.go)

	link   *pkLink   // the room's cross-room link or invitation, nil if none (pk.go)
	mirror *pkMirror // while linked: where changes of its publishers go (pkmirror.go)
	pkPrev *pkMirror // guarded by SFU.pkMu, not mu: the last link's mirror, finished before a new one starts

	waves sync.Map // *media.UpTrack → *syncWave: new tracks the audience waits for (publishersfirst.go)
}

// audienceInterval is the least time between two audience events.
const audienceInterval = time.Second

// visible reports whether viewer is told about subject (Presence): hosts
// and guests are visible to all, audience members to hosts only.
func visible(subject, viewer *Participant) bool {
	if subject.hidden {
		return false
	}
	return subject.role.publishes() || viewer.role == RoleHost
}

// join adds p, sends it JoinedEvent and tells those who may see it. false
// if the room is gone (try another).
func (r *Room) join(p *Participant) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return false, nil
	}
	if p.role.publishes() && r.seats >= r.sfu.cfg.Seats {
		return true, fmt.Errorf("%w: all %d seats (publishers) are taken; join as audience", ErrRoomFull, r.sfu.cfg.Seats)
	}
	if len(r.participants)-r.proxies >= r.sfu.cfg.MaxParticipants { // an edge's listeners count there
		return true, fmt.Errorf("%w: the room has its limit of %d participants", ErrRoomFull, r.sfu.cfg.MaxParticipants)
	}
	r.participants = append(r.participants, p)
	if !p.hidden { // a link counts its edge's listeners instead (SetListeners)
		r.countLocked(p.role, +1)
	}
	r.countListenLocked(p, +1)
	r.tellEdgeLocked(p, ListenerJoined)
	if p.role.publishes() {
		r.mirrorLocked(mirrorOp{kind: opJoin, id: p.id, name: p.name})
	}

	// Resumable before joined carries its token: a client may use it at
	// once. (Lock order: room, then sfu.)
	r.sfu.keepResumable(p)
	p.sink.Send(r.joinedEventLocked(p, p.joinReqID))
	for _, q := range r.participants {
		if q != p && visible(p, q) {
			q.sink.Send(ParticipantJoinedEvent{Participant: p.info()})
		}
	}
	if p.listening() == ListenMix {
		if r.mix != nil {
			p.sink.Send(r.mixPublishedLocked())
		} else {
			r.updateMixLocked() // its start tells p
		}
	}
	r.audienceChangedLocked()
	return true, nil
}

// joinedEventLocked is the room as p sees it now.
func (r *Room) joinedEventLocked(p *Participant, reqID string) JoinedEvent {
	ev := JoinedEvent{RequestID: reqID, Room: r.name, Self: p.info(), Audience: r.audienceCountLocked(), ResumeToken: p.resumeToken, Listen: p.listening()}
	for _, q := range r.participants {
		if q == p || !visible(q, p) {
			continue
		}
		st := State{Info: q.info(), Muted: q.mutedLocked(), Tracks: []TrackInfo{}}
		for _, t := range q.tracks {
			st.Tracks = append(st.Tracks, trackInfo(t))
		}
		ev.Others = append(ev.Others, st)
	}
	for _, x := range r.remotes {
		st := State{Info: x.info, Muted: x.mutedLocked(), Tracks: []TrackInfo{}}
		for _, rt := range x.tracks {
			st.Tracks = append(st.Tracks, trackInfo(rt.up))
		}
		ev.Others = append(ev.Others, st)
	}
	return ev
}

// trackInfo is t as clients see it.
func trackInfo(t *media.UpTrack) TrackInfo { return TrackInfo{ID: t.ID(), Kind: t.Kind()} }

// countLocked updates seats, audience and the participant gauges.
func (r *Room) countLocked(role Role, delta int) {
	if role.publishes() {
		r.seats += delta
	} else {
		r.audience += delta
	}
	r.sfu.cfg.Metrics.Participants.WithLabelValues(string(role)).Add(float64(delta))
}

// remove takes p out of the room and tells the others; false if it was
// already gone. The last one out removes the room.
func (r *Room) remove(p *Participant, reason Reason) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return false
	}
	p.gone = true
	if p.grace != nil {
		p.grace.Stop()
	}
	r.participants = slices.DeleteFunc(r.participants, func(q *Participant) bool { return q == p })
	r.forgetListenersLocked(p)
	switch {
	case p.via != nil: // a proxy (proxy.go): in the count, in no gauge
		r.audience--
		r.proxies--
		if reason == ReasonKicked && p.ticket != "" {
			delete(r.tickets, p.ticket)
		}
	case p.hidden:
		r.dropProxiesLocked(p, reason) // a link takes its edge's listeners with it
	default:
		r.countLocked(p.role, -1)
		r.countListenLocked(p, -1)
	}
	r.tellEdgeLocked(p, ListenerLeft)
	tell := reason != ReasonShutdown
	if p.micTimer != nil {
		p.micTimer.Stop()
	}
	r.endTracksLocked(p, tell)
	ending := r.pkHostLeftLocked() // the last host out ends the room's link (and its mirror: p leaves the other room with it)
	if p.role.publishes() {
		r.mirrorLocked(mirrorOp{kind: opLeave, id: p.id, reason: reason})
	}
	r.updateMixLocked() // p may have been its last listener
	for _, q := range r.participants {
		// Across nodes, the link's end takes p out of the other room
		// (reason pk_ended, as on one node), not the link's participant.
		if tell && visible(p, q) && !(ending && q.ownOnly) {
			q.sink.Send(ParticipantLeftEvent{ID: p.id, Reason: reason})
		}
	}
	if p.role == RoleHost && tell && !r.hasHostLocked() {
		r.rejectPendingLocked()
	}
	if len(r.participants) == 0 {
		r.gone = true
		r.endRemotesLocked()
		if r.audienceTimer != nil {
			r.audienceTimer.Stop()
		}
		if r.speakersTimer != nil {
			r.speakersTimer.Stop()
		}
		r.sfu.cfg.Metrics.Speaking.Sub(float64(len(r.speakers)))
		r.sfu.removeRoom(r)
		return true
	}
	if tell {
		r.audienceChangedLocked()
	}
	return true
}

// publish adds t to p's tracks and tells everyone; false if p may not
// publish (any more).
func (r *Room) publish(p *Participant, t *media.UpTrack) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publishLocked(p, t)
}

func (r *Room) publishLocked(p *Participant, t *media.UpTrack) bool {
	if p.gone || !p.role.publishes() {
		return false
	}
	p.tracks = append(p.tracks, t)
	t.SetMuted(p.mutedLocked())
	r.mirrorLocked(mirrorOp{kind: opPublish, id: p.id, track: t})
	r.sfu.cfg.Metrics.Tracks.Inc()
	r.sendAllLocked(TrackPublishedEvent{Participant: p.id, Track: trackInfo(t)})
	if r.mix != nil {
		r.addMixInputLocked(t, t.Muted())
	} else {
		r.updateMixLocked() // the first track of a room with mix listeners starts it
	}
	r.syncNewTrackLocked(p, t)
	r.startSpeakersLocked()
	return true
}

// unpublish ends t, if p still has it, and tells everyone.
func (r *Room) unpublish(p *Participant, t *media.UpTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(p.tracks, t)
	if i < 0 {
		return
	}
	p.tracks = slices.Delete(p.tracks, i, i+1)
	r.endTrackLocked(p, t, true)
	r.updateMixLocked() // the room's last track stops it
	r.syncOthersLocked(p)
}

// endTracksLocked ends all of p's tracks at once (forwarding stops now;
// the others' sub connections renegotiate soon).
func (r *Room) endTracksLocked(p *Participant, tell bool) {
	if len(p.tracks) == 0 {
		return
	}
	for _, t := range p.tracks {
		r.endTrackLocked(p, t, tell)
	}
	p.tracks = nil
	r.updateMixLocked() // the room's last tracks stop it
	r.syncOthersLocked(p)
}

func (r *Room) endTrackLocked(p *Participant, t *media.UpTrack, tell bool) {
	r.mirrorLocked(mirrorOp{kind: opUnpublish, id: p.id, track: t})
	r.removeMixInputLocked(t)
	t.Close()
	r.sfu.cfg.Metrics.Tracks.Dec()
	if tell {
		r.sendAllLocked(TrackUnpublishedEvent{Participant: p.id, Track: t.ID()})
	}
}

// syncOthersLocked asks everyone but p to bring their sub connection in
// line with the room's tracks.
func (r *Room) syncOthersLocked(p *Participant) {
	for _, q := range r.participants {
		if q != p {
			q.requestSync()
		}
	}
}

// wantTrack is a track a participant should receive, with the gate its
// down track must have: nil for the room's own tracks, the room's gate
// for a remote publisher's (remote.go).
type wantTrack struct {
	up   *media.UpTrack
	gate *media.Gate
}

// tracksFor is the set of live tracks p should receive, each with its
// gate: the mix's alone if p listens to it, everyone else's otherwise
// (and while a mix that failed to start does not run). ok is false once
// p is gone.
func (r *Room) tracksFor(p *Participant) (map[*media.UpTrack]*media.Gate, bool) {
	list, ok := r.tracksInOrderFor(p)
	if !ok {
		return nil, false
	}
	want := make(map[*media.UpTrack]*media.Gate, len(list))
	for _, t := range list {
		want[t.up] = t.gate
	}
	return want, true
}

// tracksInOrderFor is tracksFor as a list: publishers in join order, each
// one's tracks in publish order, then the remote publishers'.
func (r *Room) tracksInOrderFor(p *Participant) ([]wantTrack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.gone {
		return nil, false
	}
	if p.listening() == ListenMix && r.mix != nil {
		return []wantTrack{{up: r.mix.up}}, true
	}
	var want []wantTrack
	for _, q := range r.participants {
		if q != p {
			for _, t := range q.tracks {
				want = append(want, wantTrack{up: t})
			}
		}
	}
	for _, x := range r.remotes {
		if p.ownOnly {
			break
		}
		for _, rt := range x.tracks {
			want = append(want, wantTrack{up: rt.up, gate: rt.gate})
		}
	}
	return want, true
}

func (r *Room) sendAllLocked(ev Event) {
	for _, q := range r.participants {
		q.sink.Send(ev)
	}
}

// audienceChangedLocked sends the audience count to everyone if it
// changed, at most once per audienceInterval.
func (r *Room) audienceChangedLocked() {
	if h := r.edge.Load(); h != nil && h.OnAudience != nil {
		h.OnAudience(r.audience)
	}
	if r.audienceCountLocked() == r.audienceSent || r.audienceTimer != nil {
		return
	}
	if wait := audienceInterval - time.Since(r.audienceAt); wait > 0 {
		r.audienceTimer = time.AfterFunc(wait, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.audienceTimer = nil
			if !r.gone {
				r.audienceChangedLocked()
			}
		})
		return
	}
	r.audienceSent, r.audienceAt = r.audienceCountLocked(), time.Now()
	r.sendAllLocked(AudienceEvent{Count: r.audienceSent})
}

// snapshot lists the room's participants.
func (r *Room) snapshot() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.participants)
}
