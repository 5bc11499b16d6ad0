package loadtest

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/lianmai/relay/internal/opusgen"
)

// mixPacket builds a packet of the mix as the relay sends it: the mixer's
// own sequence number and timestamp.
func mixPacket(seq uint16, ts uint32, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	b[0], b[1] = 0x80, 111
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x6d6978)
	copy(b[12:], payload)
	return b
}

// mixArrival is one scripted packet of the mix: the mixer's frame n
// (sequence seq0+n, timestamp ts0+480·tsFrame) arriving at ms after the
// first packet's arrival.
type mixArrival struct {
	seqN, tsFrame int64
	at            int64 // ns
}

// steadyMix is the mixer's frames 0..n-1, each arriving late ms after
// its due time (the first exactly on it: it sets the clock).
func steadyMix(n int64, late int64) []mixArrival {
	var s []mixArrival
	for k := range n {
		d := late
		if k == 0 {
			d = 0
		}
		s = append(s, mixArrival{k, k, t0 + k*10*ms + d})
	}
	return s
}

// edit applies changes to a script and sorts it by arrival.
func edit(s []mixArrival, change func([]mixArrival) []mixArrival) []mixArrival {
	s = change(slices.Clone(s))
	slices.SortStableFunc(s, func(a, b mixArrival) int { return int(a.at - b.at) })
	return s
}

// drop removes the packet of sequence offset n.
func drop(s []mixArrival, n int64) []mixArrival {
	return slices.DeleteFunc(s, func(a mixArrival) bool { return a.seqN == n })
}

func TestMixStats(t *testing.T) {
	const frames = 20
	steady := steadyMix(frames, 2*ms)
	tests := []struct {
		name       string
		seq0       uint16
		script     []mixArrival
		start, end int64 // the run's window; end 0 means the due time of frame 19
		want       mixResult
		received   uint64
		late       uint64
		dups       uint64
		unknown    uint64
		maxLate    int64 // the lateness histogram's maximum
	}{
		{
			name: "steady", seq0: 100, script: steady,
			want:     mixResult{expectedPackets: 20, expectedFrames: 20},
			received: 20, maxLate: 2 * ms,
		},
		{
			name: "sequence numbers wrap, one lost across the wrap", seq0: 65530,
			script:   edit(steady, func(s []mixArrival) []mixArrival { return drop(s, 7) }),
			want:     mixResult{expectedPackets: 20, lost: 1, expectedFrames: 20, stutter: 1},
			received: 19, maxLate: 2 * ms,
		},
		{
			name: "NACK retransmissions arrive as duplicates", seq0: 65534,
			script: edit(steady, func(s []mixArrival) []mixArrival {
				return append(s, mixArrival{1, 1, t0 + 10*ms + 25*ms}, mixArrival{2, 2, t0 + 20*ms + 30*ms})
			}),
			want:     mixResult{expectedPackets: 20, expectedFrames: 20},
			received: 20, dups: 2, maxLate: 2 * ms,
		},
		{
			name: "a loss repaired in time is no loss", seq0: 9,
			script: edit(steady, func(s []mixArrival) []mixArrival {
				return append(drop(s, 4), mixArrival{4, 4, t0 + 40*ms + 30*ms})
			}),
			want:     mixResult{expectedPackets: 20, expectedFrames: 20},
			received: 20, maxLate: 30 * ms,
		},
		{
			name: "late, exactly on the deadline and reordered", seq0: 1,
			script: edit(steady, func(s []mixArrival) []mixArrival {
				s[9].at = t0 + 90*ms + 55*ms   // late
				s[10].at = t0 + 100*ms + 40*ms // on the deadline: played
				s[12].at = t0 + 120*ms - 9*ms  // before 11: early counts 0
				return s
			}),
			want:     mixResult{expectedPackets: 20, expectedFrames: 20, stutter: 1},
			received: 20, late: 1, maxLate: 55 * ms,
		},
		{
			name: "the mixer skips a tick: a frame missing, no sequence number", seq0: 300,
			script: func() []mixArrival {
				var s []mixArrival
				for n := int64(0); n < frames-1; n++ {
					k := n
					if n >= 10 {
						k++ // timestamps jump by 960 after frame 9
					}
					s = append(s, mixArrival{n, k, t0 + k*10*ms + min(n, 1)*ms})
				}
				return s
			}(),
			want:     mixResult{expectedPackets: 19, skipped: 1, expectedFrames: 20, stutter: 1},
			received: 19, maxLate: ms,
		},
		{
			name: "the mix stops halfway: every later frame stutters", seq0: 5,
			script:   steadyMix(10, ms),
			want:     mixResult{expectedPackets: 10, expectedFrames: 20, stutter: 10},
			received: 10, maxLate: ms,
		},
		{
			name: "window from frame 5 to 14", seq0: 5, script: steady,
			start: t0 + 50*ms, end: t0 + 140*ms,
			want:     mixResult{expectedPackets: 10, expectedFrames: 10},
			received: 10, maxLate: 2 * ms,
		},
		{
			name: "a restarted mixer's sequence numbers are not placed", seq0: 5,
			script: edit(steady, func(s []mixArrival) []mixArrival {
				return append(s, mixArrival{30000, 12, t0 + 125*ms})
			}),
			want:     mixResult{expectedPackets: 20, expectedFrames: 20},
			received: 20, unknown: 1, maxLate: 2 * ms,
		},
		{
			name: "a timestamp beyond what the run holds is not placed", seq0: 5,
			script: edit(steady, func(s []mixArrival) []mixArrival {
				return append(drop(s, 12), mixArrival{12, 1_000_000, t0 + 125*ms})
			}),
			want:     mixResult{expectedPackets: 20, lost: 1, expectedFrames: 20, stutter: 1},
			received: 19, unknown: 1, maxLate: 2 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const ts0 = 4294967000 // wraps after a few frames
			end := tt.end
			if end == 0 {
				end = t0 + (frames-1)*10*ms
			}
			var live liveCounters
			m := newMixStats(newWindow(tt.start, end), newWindow(0, never), t0-100*ms, 1000, &live)
			for _, a := range tt.script {
				m.onPacket(a.at, mixPacket(tt.seq0+uint16(a.seqN), uint32(ts0+a.tsFrame*480), []byte{0xf8, 0xff, 0xfe}))
			}
			got := m.finish()
			if got.firstNs != 100*ms {
				t.Errorf("first packet %d ns after the dial, want %d", got.firstNs, 100*ms)
			}
			got.firstNs = 0
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			if m.received != tt.received || m.late != tt.late || m.duplicates != tt.dups || m.unknown != tt.unknown {
				t.Errorf("received %d late %d duplicates %d unknown %d, want %d %d %d %d",
					m.received, m.late, m.duplicates, m.unknown, tt.received, tt.late, tt.dups, tt.unknown)
			}
			if m.onTime+m.late != m.received {
				t.Errorf("on time %d + late %d != received %d", m.onTime, m.late, m.received)
			}
			if m.lateness.Count() != m.received || m.lateness.Max() != tt.maxLate {
				t.Errorf("lateness: %d values, max %d ns; want %d values, max %d", m.lateness.Count(), m.lateness.Max(), m.received, tt.maxLate)
			}
			if live.packets.Load() != m.packets || live.late.Load() != m.late {
				t.Errorf("live packets %d late %d, stream %d %d", live.packets.Load(), live.late.Load(), m.packets, m.late)
			}
		})
	}
}

func TestMixStatsOddPackets(t *testing.T) {
	var live liveCounters
	m := newMixStats(newWindow(0, never), newWindow(0, never), 0, 100, &live)
	m.onPacket(t0, mixPacket(1, 1000, nil)) // padding: does not start the clock
	m.onPacket(t0, []byte{0x80, 111, 0})    // too short
	if m.started || m.padding != 2 || m.packets != 2 {
		t.Fatalf("started %v padding %d packets %d, want false 2 2", m.started, m.padding, m.packets)
	}
	m.onPacket(t0+ms, mixPacket(2, 1480, []byte{1}))
	// Reordered ahead of the first packet: placed, not counted.
	m.onPacket(t0+2*ms, mixPacket(1, 1000, []byte{1}))
	if at, _ := m.frameAt(0); !m.started || at != t0+ms || m.received != 1 || m.unknown != 0 {
		t.Fatalf("started %v clock at %d received %d unknown %d", m.started, at, m.received, m.unknown)
	}
	if r := (&mixStats{}).finish(); r != (mixResult{firstNs: -1}) {
		t.Fatalf("a stream that never started: %+v", r)
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range [][3]int64{{0, 480, 0}, {479, 480, 0}, {480, 480, 1}, {-1, 480, -1}, {-480, 480, -1}, {-481, 480, -2}} {
		if got := floorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

// TestMixDecodedSample plays real Opus frames of the mix through libopus:
// a frame that never arrives and one that arrives after its deadline are
// concealed, and the decoded sample agrees with the lean count.
func TestMixDecodedSample(t *testing.T) {
	const frames = 30
	src, err := opusgen.NewSource(12, 1)
	if err != nil {
		t.Fatal(err)
	}
	payloads := make([][]byte, frames)
	for k := range payloads {
		if payloads[k], err = src.NextFrame(); err != nil {
			t.Fatal(err)
		}
	}
	dec, err := opusgen.NewDecoder(1)
	if err != nil {
		t.Fatal(err)
	}
	var live liveCounters
	run, own := newWindow(0, t0+(frames-1)*10*ms), newWindow(0, never)
	m := newMixStats(run, own, 0, 1000, &live)
	m.play = newPlayout(m, dec, run, own)
	var script []mixArrival
	for k := int64(0); k < frames; k++ {
		at := t0 + k*10*ms + 3*ms
		switch k {
		case 0:
			at = t0
		case 10:
			continue // lost
		case 20:
			at += 60 * ms // after its deadline
		}
		script = append(script, mixArrival{k, k, at})
	}
	slices.SortStableFunc(script, func(a, b mixArrival) int { return int(a.at - b.at) })
	for _, a := range script {
		m.onPacket(a.at, mixPacket(uint16(7+a.seqN), uint32(90000+a.tsFrame*480), payloads[a.tsFrame]))
	}
	res := m.finish()
	p := m.play
	if p.decoded != frames-2 || p.concealed != 2 || p.errors != 0 {
		t.Fatalf("decoded %d concealed %d errors %d, want %d 2 0", p.decoded, p.concealed, p.errors, frames-2)
	}
	if res.stutter != int64(p.concealed) || res.lost != 1 || m.late != 1 {
		t.Fatalf("lean count: stutter %d lost %d late %d; the decoder concealed %d", res.stutter, res.lost, m.late, p.concealed)
	}
}
