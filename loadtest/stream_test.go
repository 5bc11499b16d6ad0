package loadtest

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

// countingDecoder stands in for the Opus decoder.
type countingDecoder struct {
	decoded, concealed int
	fail               bool
}

func (d *countingDecoder) Decode(p []byte) (int, error) {
	if d.fail || len(p) == 0 {
		return 0, errors.New("bad payload")
	}
	d.decoded++
	return 480, nil
}

func (d *countingDecoder) Conceal() error { d.concealed++; return nil }

const (
	testTS0  = 1000
	testSeq0 = 500
	ms       = int64(time.Millisecond)
	t0       = 1000 * ms // send time of frame 0
)

// sentAt is frame k's send time in the scripted streams.
func sentAt(k int64) int64 { return t0 + k*10*ms }

// rtpPacket builds frame k's packet as the relay forwards it.
func rtpPacket(k int64) []byte {
	b := make([]byte, 12+3)
	b[0], b[1] = 0x80, 111
	binary.BigEndian.PutUint16(b[2:], uint16(testSeq0+k))
	binary.BigEndian.PutUint32(b[4:], uint32(testTS0+k*480))
	binary.BigEndian.PutUint32(b[8:], 0xabcdef)
	copy(b[12:], []byte{0xf8, 0xff, 0xfe})
	return b
}

type arrival struct {
	k  int64
	at int64 // ns
}

func TestStutterAccounting(t *testing.T) {
	const frames = 20
	// The script: 3 lost in the network, 5 dropped by the sender, 7 late
	// (55 ms), 9 exactly at the deadline, 11 twice, 13 before 12, 14 and
	// 15 lost in a burst; every other frame 2 ms after its send time.
	var script []arrival
	for k := int64(0); k < frames; k++ {
		switch k {
		case 3, 5, 14, 15:
			continue
		case 7:
			script = append(script, arrival{k, sentAt(k) + 55*ms})
		case 9:
			script = append(script, arrival{k, sentAt(k) + 40*ms})
		case 11:
			script = append(script, arrival{k, sentAt(k) + 2*ms}, arrival{k, sentAt(k) + 5*ms})
		case 12:
			script = append(script, arrival{k, sentAt(k) + 15*ms})
		case 13:
			script = append(script, arrival{k, sentAt(k) + 1*ms})
		default:
			script = append(script, arrival{k, sentAt(k) + 2*ms})
		}
	}
	slices.SortStableFunc(script, func(a, b arrival) int { return int(a.at - b.at) })

	tests := []struct {
		name       string
		start, end int64 // the run's window
		ownEnd     int64 // the receiver's own window end (churn)
		skipBefore int64 // the receiver joined late: arrivals of frames before this are not delivered
		want       streamResult
		received   uint64
		late       uint64
		dups       uint64
		decoded    int // in-window frames the playout decoded
		concealed  int
	}{
		{
			name: "whole stream", start: 0, end: sentAt(frames - 1), ownEnd: never,
			want:     streamResult{expected: 20, senderDropped: 1, lost: 3, stutter: 5},
			received: 16, late: 1, dups: 1, decoded: 15, concealed: 5,
		},
		{
			name: "window from frame 10", start: sentAt(10), end: sentAt(frames - 1), ownEnd: never,
			want:     streamResult{expected: 10, lost: 2, stutter: 2},
			received: 8, dups: 1, decoded: 8, concealed: 2,
		},
		{
			name: "receiver left after frame 8", start: 0, end: sentAt(frames - 1), ownEnd: sentAt(8),
			want:     streamResult{expected: 9, senderDropped: 1, lost: 1, stutter: 3},
			received: 7, late: 1, decoded: 6, concealed: 3,
		},
		{
			name: "receiver joined at frame 6", start: 0, end: sentAt(frames - 1), ownEnd: never, skipBefore: 6,
			want:     streamResult{expected: 14, lost: 2, stutter: 3},
			received: 12, late: 1, dups: 1, decoded: 11, concealed: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newFrameLog("p_pub", 0, testTS0, testSeq0, 100)
			for k := int64(0); k < frames; k++ {
				log.stamp(k, sentAt(k), k == 5)
			}
			run, own := newWindow(tt.start, tt.end), newWindow(0, tt.ownEnd)
			dec := &countingDecoder{}
			var live liveCounters
			st := newStreamStats(log, run, own, 0, newPlayout(log, dec, run, own), &live)
			for _, a := range script {
				if a.k < tt.skipBefore {
					continue
				}
				st.onPacket(a.at, rtpPacket(a.k))
			}
			got := st.finish()
			got.joinNs = 0
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			if st.received != tt.received || st.late != tt.late || st.duplicates != tt.dups {
				t.Errorf("received %d late %d duplicates %d, want %d %d %d",
					st.received, st.late, st.duplicates, tt.received, tt.late, tt.dups)
			}
			if st.onTime+st.late != st.received {
				t.Errorf("on time %d + late %d != received %d", st.onTime, st.late, st.received)
			}
			if int(st.play.decoded) != tt.decoded || int(st.play.concealed) != tt.concealed {
				t.Errorf("playout decoded %d concealed %d, want %d %d", st.play.decoded, st.play.concealed, tt.decoded, tt.concealed)
			}
			// The decoded sample and the lean count agree.
			if int64(st.play.concealed) != got.stutter {
				t.Errorf("playout concealed %d, lean stutter %d", st.play.concealed, got.stutter)
			}
			if live.packets.Load() != st.packets || st.seqMismatch != 0 || st.unknown != 0 {
				t.Errorf("packets %d live %d seq mismatches %d unknown %d", st.packets, live.packets.Load(), st.seqMismatch, st.unknown)
			}
			if live.late.Load() != st.late {
				t.Errorf("live late %d, stream late %d", live.late.Load(), st.late)
			}
		})
	}
}

func TestStreamJoinLatency(t *testing.T) {
	log := newFrameLog("p_pub", 0, testTS0, testSeq0, 100)
	for k := int64(0); k < 10; k++ {
		log.stamp(k, sentAt(k), false)
	}
	tests := []struct {
		name   string
		dialNs int64
		want   int64
	}{
		{"publisher already sending", sentAt(3), sentAt(5) + 2*ms - sentAt(3)},
		{"publisher started after the dial", sentAt(0) - ms, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var live liveCounters
			st := newStreamStats(log, newWindow(0, never), newWindow(0, never), tt.dialNs, nil, &live)
			st.onPacket(sentAt(5)+2*ms, rtpPacket(5))
			if got := st.finish().joinNs; got != tt.want {
				t.Fatalf("join latency %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStreamOddPackets(t *testing.T) {
	log := newFrameLog("p_pub", 0, testTS0, testSeq0, 100)
	log.stamp(0, sentAt(0), false)
	var live liveCounters
	st := newStreamStats(log, newWindow(0, never), newWindow(0, never), 0, nil, &live)

	unknown := rtpPacket(50) // a frame never stamped
	rebased := rtpPacket(0)
	binary.BigEndian.PutUint16(rebased[2:], 7) // the relay rebased its sequence number
	padding := rtpPacket(0)[:12]
	st.onPacket(sentAt(0), unknown)
	st.onPacket(sentAt(0), padding)
	st.onPacket(sentAt(0)+ms, rebased)
	st.onPacket(sentAt(0)+ms, []byte{1, 2, 3})
	if st.unknown != 1 || st.padding != 2 || st.seqMismatch != 1 || st.received != 1 {
		t.Fatalf("unknown %d padding %d seq mismatches %d received %d, want 1 2 1 1", st.unknown, st.padding, st.seqMismatch, st.received)
	}
}

func TestRTPPayload(t *testing.T) {
	ext := []byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 0xaa}
	padded := []byte{0xa0, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa, 0xbb, 0, 0, 3}
	tests := []struct {
		name string
		pkt  []byte
		want []byte
		ok   bool
	}{
		{"plain", rtpPacket(0), []byte{0xf8, 0xff, 0xfe}, true},
		{"header extension", ext, []byte{0xaa}, true},
		{"padding", padded, []byte{0xaa, 0xbb}, true},
		{"short", []byte{0x80, 111}, nil, false},
		{"version 1", append([]byte{0x40}, rtpPacket(0)[1:]...), nil, false},
		{"extension past the end", ext[:14], nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rtpPayload(tt.pkt)
			if ok != tt.ok || string(got) != string(tt.want) {
				t.Fatalf("rtpPayload = %x, %v; want %x, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
