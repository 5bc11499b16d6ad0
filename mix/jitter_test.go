package mix

import (
	"testing"
)

// jbFixture drives a jitter buffer as the mixer does: packets carry their
// sequence number as payload, so each pop says which frame it played.
type jbFixture struct {
	j   *jitterBuffer
	m   *Metrics
	buf []byte
}

func newJB(t *testing.T) *jbFixture {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &jbFixture{j: newJitterBuffer(m), m: m, buf: make([]byte, maxPayload)}
}

func (f *jbFixture) push(seq uint16) { f.j.push(seq, []byte{byte(seq >> 8), byte(seq)}) }

// pop returns the action and, for play and FEC, the payload's sequence
// number.
func (f *jbFixture) pop() (action, uint16) {
	act, n := f.j.pop(f.buf)
	if n == 0 {
		return act, 0
	}
	return act, uint16(f.buf[0])<<8 | uint16(f.buf[1])
}

func TestJitterBufferOrder(t *testing.T) {
	type want struct {
		act action
		seq uint16
	}
	tests := []struct {
		name   string
		pushes [][]uint16 // before each pop
		want   []want
	}{
		{"in order", [][]uint16{{10}, {11}, {12}}, []want{{actPlay, 10}, {actPlay, 11}, {actPlay, 12}}},
		{"reordered within the depth", [][]uint16{{10}, {12, 11}, {13}}, []want{{actPlay, 10}, {actPlay, 11}, {actPlay, 12}}},
		{"duplicate dropped", [][]uint16{{10, 10}, {11, 10}, {12}}, []want{{actPlay, 10}, {actPlay, 11}, {actPlay, 12}}},
		{"sequence wraps", [][]uint16{{65534}, {65535}, {0, 1}}, []want{{actPlay, 65534}, {actPlay, 65535}, {actPlay, 0}}},
		{"lost with the next buffered: FEC", [][]uint16{{10}, {12}, {}}, []want{{actPlay, 10}, {actFEC, 12}, {actPlay, 12}}},
		{"lost, next also lost: conceal", [][]uint16{{10, 11}, {14}, {}, {}, {}}, []want{{actPlay, 10}, {actPlay, 11}, {actConceal, 0}, {actFEC, 14}, {actPlay, 14}}},
		{"late packet still plays", [][]uint16{{10}, {}, {11}}, []want{{actPlay, 10}, {actConceal, 0}, {actPlay, 11}}},
		{"nothing ever", [][]uint16{{}, {}}, []want{{actNothing, 0}, {actNothing, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJB(t)
			for i, ps := range tt.pushes {
				for _, s := range ps {
					f.push(s)
				}
				act, seq := f.pop()
				if act != tt.want[i].act || seq != tt.want[i].seq {
					t.Fatalf("pop %d = %d, seq %d; want %d, seq %d", i, act, seq, tt.want[i].act, tt.want[i].seq)
				}
			}
		})
	}
}

func TestJitterBufferDrops(t *testing.T) {
	f := newJB(t)
	f.push(100)
	f.push(100)
	f.pop()
	f.push(99)                                // before the play position: late
	f.push(100)                               // already played: late
	f.j.push(101, make([]byte, maxPayload+1)) // too large for a slot
	f.j.push(101, nil)                        // padding: ignored, not counted
	for r, want := range map[DropReason]float64{DropDuplicate: 1, DropLate: 2, DropTooLarge: 1} {
		if got := counterValue(t, f.m.Dropped(r)); got != want {
			t.Errorf("%s drops = %v, want %v", r, got, want)
		}
	}
	if act, _ := f.pop(); act != actConceal {
		t.Errorf("after only bad packets pop = %d, want conceal", act)
	}
	if f.j.dropped != 4 {
		t.Errorf("dropped = %d, want 4", f.j.dropped)
	}
}

// A publisher pause (DTX, or a muted microphone) then a resume: the
// buffer conceals plcTail frames, then contributes nothing; on resume it
// plays the first packet at once, even after a hole in the numbers.
func TestJitterBufferPauseResume(t *testing.T) {
	for _, hole := range []uint16{0, 3} {
		f := newJB(t)
		seq := uint16(500)
		for range 10 {
			f.push(seq)
			if act, _ := f.pop(); act != actPlay {
				t.Fatal("steady stream not played")
			}
			seq++
		}
		for i := range 200 {
			act, _ := f.pop()
			want := actNothing
			if i < plcTail {
				want = actConceal
			}
			if act != want {
				t.Fatalf("hole %d: pop %d of the pause = %d, want %d", hole, i, act, want)
			}
		}
		seq += hole
		f.push(seq)
		if act, got := f.pop(); act != actPlay || got != seq {
			t.Fatalf("hole %d: resume pop = %d seq %d, want play %d", hole, act, got, seq)
		}
	}
}

// Clock drift: a publisher 0.5% faster or slower than the mixer keeps the
// depth bounded; the faster one loses a frame now and then, the slower one
// gets one concealed.
func TestJitterBufferDrift(t *testing.T) {
	for _, tt := range []struct {
		name string
		rate float64 // packets per tick
	}{{"publisher faster", 1.005}, {"publisher slower", 0.995}} {
		t.Run(tt.name, func(t *testing.T) {
			f := newJB(t)
			const ticks = 20000
			var sent float64
			seq := uint16(1)
			maxD, concealed, played := 0, 0, 0
			for range ticks {
				for sent += tt.rate; sent >= 1; sent-- {
					f.push(seq)
					seq++
				}
				maxD = max(maxD, f.j.depth())
				switch act, _ := f.pop(); act {
				case actConceal:
					concealed++
				case actPlay:
					played++
				}
			}
			drift := counterValue(t, f.m.Dropped(DropDrift)) + counterValue(t, f.m.Dropped(DropOverflow))
			t.Logf("max depth %d, played %d, concealed %d, dropped %v", maxD, played, concealed, drift)
			if maxD > maxDepth {
				t.Errorf("depth reached %d, above %d", maxD, maxDepth)
			}
			extra := int(ticks * 0.005)
			if tt.rate > 1 && (drift < float64(extra)*0.8 || concealed > 2) {
				t.Errorf("faster publisher: %v frames dropped (want about %d), %d concealed", drift, extra, concealed)
			}
			if tt.rate < 1 && (concealed < extra*8/10 || concealed > extra*12/10 || drift > 2) {
				t.Errorf("slower publisher: %d frames concealed (want about %d), %v dropped", concealed, extra, drift)
			}
		})
	}
}

// A burst larger than the ring, or a sender restarting with new numbers,
// starts the buffer over on the new packet.
func TestJitterBufferResync(t *testing.T) {
	for _, jump := range []uint16{ringSize + 5, 40000} {
		f := newJB(t)
		f.push(1000)
		f.pop()
		f.push(1001)
		f.push(1000 + jump)
		if act, got := f.pop(); act != actPlay || got != 1000+jump {
			t.Fatalf("jump %d: pop = %d seq %d, want play %d", jump, act, got, 1000+jump)
		}
		if got := counterValue(t, f.m.Dropped(DropOverflow)); got != 1 {
			t.Errorf("jump %d: %v overflow drops, want 1 (the packet left behind)", jump, got)
		}
	}
}

// A depth above maxDepth (a burst after a stall) drops the oldest frames.
func TestJitterBufferMaxDepth(t *testing.T) {
	f := newJB(t)
	for s := uint16(1); s <= 7; s++ {
		f.push(s)
	}
	if act, got := f.pop(); act != actPlay || got != 4 {
		t.Fatalf("pop = %d seq %d, want play 4 (7 buffered, keep the newest %d)", act, got, maxDepth)
	}
	if got := counterValue(t, f.m.Dropped(DropOverflow)); got != 3 {
		t.Errorf("%v overflow drops, want 3", got)
	}
}
