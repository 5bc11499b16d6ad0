package sfu

import (
	"github.com/lianmai/relay/media"

	"math"
	"slices"
	"time"
)

// speakersInterval is how often a room looks for speakers: the contract
// allows a speakers event at most 4 times a second.
const speakersInterval = 250 * time.Millisecond

// levelStale: a publisher whose last audio level is older than this is
// silent (DTX sends no packets in silence).
const levelStale = int64(300 * time.Millisecond)

// startSpeakersLocked starts the room's speaker ticker if it is not
// running; it stops by itself once the room has no tracks and nobody is
// listed as speaking.
func (r *Room) startSpeakersLocked() {
	if r.speakersTimer == nil && !r.gone {
		r.speakersTimer = time.AfterFunc(speakersInterval, r.speakersTick)
	}
}

func (r *Room) speakersTick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.speakersTimer = nil
	if r.gone {
		return
	}
	now := media.Now()
	var list []Speaker
	tracks := 0
	for _, q := range r.participants {
		level := 0.0
		for _, t := range q.tracks {
			tracks++
			if !t.Muted() {
				level = max(level, t.Level(now, levelStale))
			}
		}
		if level >= r.sfu.cfg.SpeakerThreshold {
			list = append(list, Speaker{Participant: q.id, Level: math.Round(level*100) / 100})
		}
	}
	for _, x := range r.remotes {
		level := 0.0
		for _, rt := range x.tracks {
			tracks++
			if !x.hostMuted && !rt.up.Muted() {
				level = max(level, rt.up.Level(now, levelStale))
			}
		}
		if level >= r.sfu.cfg.SpeakerThreshold {
			list = append(list, Speaker{Participant: x.info.ID, Level: math.Round(level*100) / 100})
		}
	}
	slices.SortStableFunc(list, func(a, b Speaker) int {
		switch {
		case a.Level > b.Level:
			return -1
		case a.Level < b.Level:
			return 1
		}
		return 0
	})
	if !sameSpeakers(list, r.speakers) {
		r.sfu.cfg.Metrics.Speaking.Add(float64(len(list) - len(r.speakers)))
		r.speakers = list
		r.sendAllLocked(SpeakersEvent{Speakers: slices.Clone(list)})
	}
	if tracks > 0 || len(r.speakers) > 0 {
		r.startSpeakersLocked()
	}
}

// sameSpeakers reports whether two lists name the same participants in the
// same order with levels within 0.05: smaller changes are not worth an
// event.
func sameSpeakers(a, b []Speaker) bool {
	return slices.EqualFunc(a, b, func(x, y Speaker) bool {
		return x.Participant == y.Participant && math.Abs(x.Level-y.Level) < 0.05
	})
}
