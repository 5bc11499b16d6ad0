package loadtest

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// finish hands what the run measured to package report once every
// participant has closed, and returns the report it builds.
func (r *runner) finish(before, start, end report.Snapshot) *report.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &report.Measurements{
		StartedAt:    r.startedAt,
		FinishedAt:   time.Now(),
		Machine:      machine(),
		Target:       report.Target{URL: r.cfg.URL, MetricsURL: r.metricsURL, PID: r.cfg.RelayPID},
		Before:       before,
		AudienceRamp: r.audRamp,
		Start:        start,
		End:          end,
		Joins: report.Joins{
			Planned:   r.sc.Participants(),
			Attempted: r.joins.attempted,
			Succeeded: r.joins.succeeded,
			Failed:    r.joins.failed,
			Failures:  r.joins.failures,
		},
		JoinedMs:       r.joins.joinedMs,
		ConnectedMs:    r.joins.connectedMs,
		Churn:          r.churn,
		Mic:            r.mic,
		MicGrantMs:     r.micGrant,
		MicReleaseMs:   r.micRel,
		MicPublishMs:   r.micPublish,
		MicHostHeardMs: r.micHeard,
		PK:             r.pk,
		PKSetupMs:      r.pkSetup,
		LoadgenRSS:     selfRSS(),
		GOMAXPROCS:     runtime.GOMAXPROCS(0),
		ForeignTracks:  r.foreignTracks.Load(),
		Series:         r.series,
		Warnings:       r.warnings,
	}
	sc, err := json.Marshal(r.sc)
	if err != nil {
		// Cannot happen (Scenario is plain data); the figures still matter.
		m.Warnings = append(m.Warnings, fmt.Sprintf("the scenario could not be recorded: %v", err))
	}
	m.Scenario = sc
	r.tallyAudioLocked(m)
	m.Cluster = r.cluster.measurementsLocked()
	return report.Build(m)
}

// tallyAudioLocked adds up every participant's streams into m: the audio
// counts, the latency histograms, and the join latency samples. r.mu is
// held; every reader has ended.
func (r *runner) tallyAudioLocked(m *report.Measurements) {
	a := &m.Audio
	pubs := make(map[string]*participant)
	for _, p := range r.parts {
		if p.pub != nil {
			pubs[p.pub.log.id] = p
			a.Publishers++
			a.FramesSent += p.pub.sent.Load()
			a.FramesDropped += p.pub.dropped.Load()
			u := &a.Uplink
			u.Packets += p.up.originals.Load()
			u.Lost += p.up.lost.Load()
			u.NACKs += p.up.nackedPackets.Load()
			u.NACKedPackets += p.up.nackedSeqs.Load()
			u.Retransmissions += p.up.resent.Load()
			u.RetransmissionsLost += p.up.resentLost.Load()
			m.PacerLate.Merge(&p.pub.lateness)
		}
	}
	for _, p := range r.parts {
		if p.sink {
			continue // hears nothing by design: the relay's figures count it
		}
		got := make(map[string]bool)
		decoded := false
		streams, mixes := p.snapshotStreams()
		for _, st := range streams {
			res := st.finish()
			r.cluster.addStreamLocked(p, st, res)
			if st.packets > 0 {
				got[st.log.id] = true
			}
			if res.joinNs >= 0 {
				m.FirstPacketMs = append(m.FirstPacketMs, float64(res.joinNs)/1e6)
			}
			a.Streams++
			a.PacketsReceived += st.packets
			a.ExpectedFrames += res.expected
			a.LostFrames += res.lost
			a.StutterFrames += res.stutter
			m.SenderDropped += res.senderDropped
			a.LateFrames += st.late
			a.Duplicates += st.duplicates
			a.SeqMismatches += st.seqMismatch
			a.UnknownPackets += st.unknown
			m.Received += st.received
			m.OneWay.Merge(&st.lat)
			if p.role == roleHost && r.sc.PK {
				if st.log.room == p.room {
					m.PKLocalHost.Merge(&st.lat)
				} else {
					m.PKRemoteHost.Merge(&st.lat)
				}
			}
			a.RepairedFrames += st.repaired
			if st.repair != nil {
				m.Repair.Merge(st.repair)
			}
			if st.play != nil {
				decoded = true
				addPlayout(&a.Decoded, st.play)
			}
		}
		if len(got) > 0 {
			a.Receivers++
		}
		if decoded {
			a.Decoded.Receivers++
		}
		r.cluster.addParticipantLocked(p, streams, mixes)
		r.tallyMixLocked(m, p, mixes, pubs, len(got) > 0)
		if p.listen != ListenMix {
			r.missingLocked(a, p, pubs, got)
		}
	}
}

// addPlayout adds one decoded stream's counts to its class's sample.
func addPlayout(d *report.Decoded, p *playout) {
	d.Streams++
	d.FramesDecoded += p.decoded
	d.FramesConcealed += p.concealed
	d.DecodeErrors += p.errors
}

// tallyMixLocked adds p's mix streams into m.Audio.Mix and checks that a
// listener who asked for the mix got it. r.mu is held; every reader has
// ended.
func (r *runner) tallyMixLocked(m *report.Measurements, p *participant, mixes []*mixStats, pubs map[string]*participant, gotTracks bool) {
	x := &m.Audio.Mix
	heard, decoded := false, false
	for _, st := range mixes {
		res := st.finish()
		x.Streams++
		x.PacketsReceived += st.packets
		x.ExpectedPackets += res.expectedPackets
		x.LostPackets += res.lost
		x.SkippedFrames += res.skipped
		x.ExpectedFrames += res.expectedFrames
		x.StutterFrames += res.stutter
		x.LateFrames += st.late
		x.Duplicates += st.duplicates
		x.UnknownPackets += st.unknown
		m.MixReceived += st.received
		m.MixLateness.Merge(&st.lateness)
		if st.started {
			heard = true
			if res.firstNs >= 0 && r.roomSendingBeforeLocked(p.room, p.dialNs, pubs) {
				m.MixFirstPacketMs = append(m.MixFirstPacketMs, float64(res.firstNs)/1e6)
			}
		}
		if st.play != nil {
			decoded = true
			addPlayout(&x.Decoded, st.play)
		}
	}
	if heard {
		x.Receivers++
	}
	if decoded {
		x.Decoded.Receivers++
	}
	if p.listen != ListenMix {
		return
	}
	x.Listeners++
	if gotTracks {
		x.TracksInstead++
	}
	end, ok := r.expectsFlow(p)
	if heard || !ok {
		return
	}
	for _, pub := range pubs {
		if pub != p && pub.room == p.room && sendingThrough(pub, end) {
			x.MissingListeners++
			if len(x.Missing) < maxListed {
				x.Missing = append(x.Missing, fmt.Sprintf("%s (%s, room %d) asked for the mix and got none while %s (%s) was sending", p.name, p.id, p.room, pub.name, pub.id))
			}
			return
		}
	}
}

// roomSendingBeforeLocked says whether a publisher of room was sending
// before ns, so that the first packet after a dial at ns measures the join
// and not a publisher's start.
func (r *runner) roomSendingBeforeLocked(room int, ns int64, pubs map[string]*participant) bool {
	for _, pub := range pubs {
		if first := pub.pub.log.first.Load(); pub.room == room && first != 0 && first < ns {
			return true
		}
	}
	return false
}

// missingSlack is how long a publisher must have been sending, and a
// receiver connected, before its window ended for the pair to be expected
// to flow.
const missingSlack = int64(3 * time.Second)

// missingLocked counts the publishers of p's room that p should have
// received and did not: they were sending, and p connected, for
// missingSlack before p's window ended, and were still sending then.
func (r *runner) missingLocked(a *report.Audio, p *participant, pubs map[string]*participant, got map[string]bool) {
	end, ok := r.expectsFlow(p)
	if !ok {
		return
	}
	for id, pub := range pubs {
		if pub == p || pub.room != p.room || got[id] || !sendingThrough(pub, end) {
			continue
		}
		a.MissingPublishers++
		if len(a.Missing) < maxListed {
			a.Missing = append(a.Missing, fmt.Sprintf("%s (%s, room %d) got nothing from %s (%s)", p.name, p.id, p.room, pub.name, id))
		}
	}
}

// expectsFlow returns where p's window ended and whether p was connected
// for missingSlack before then: long enough to be expected to hear its room.
func (r *runner) expectsFlow(p *participant) (end int64, ok bool) {
	end = min(r.win.end.Load(), p.own.end.Load())
	return end, end != never && p.id != "" && p.joinedNs <= end-missingSlack
}

// sendingThrough says whether pub had been sending for missingSlack by
// end and still was at end.
func sendingThrough(pub *participant, end int64) bool {
	first, stop := pub.pub.log.first.Load(), pub.pub.log.stop.Load()
	return first != 0 && first <= end-missingSlack && (stop == 0 || stop >= end)
}
