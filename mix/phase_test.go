package mix

import (
	"testing"
	"time"
)

// TestPhases: mixers take the least used slot in bit-reversed order, so
// any number of them is spread over the frame; a slot given back is taken
// again first.
func TestPhases(t *testing.T) {
	phases.mu.Lock()
	saved := phases.used
	phases.used = [phaseSlots]int{}
	phases.mu.Unlock()
	t.Cleanup(func() {
		phases.mu.Lock()
		phases.used = saved
		phases.mu.Unlock()
	})

	var got []int
	for range 4 {
		got = append(got, takePhase())
	}
	if want := []int{0, 16, 8, 24}; !equalInts(got, want) {
		t.Fatalf("first four slots %v, want %v (half, quarter, three quarters of the frame apart)", got, want)
	}
	givePhase(16)
	if s := takePhase(); s != 16 {
		t.Fatalf("after slot 16 was given back, took %d, want 16", s)
	}
	for range phaseSlots - 4 {
		takePhase()
	}
	// Every slot is used once now: the 33rd mixer shares slot 0.
	if s := takePhase(); s != 0 {
		t.Fatalf("with every slot used once, took %d, want 0", s)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPhaseStart: a schedule starts at its slot's offset on the 10 ms
// grid, at most a frame before now, so the first tick (a frame after the
// start) is in the next 10 ms.
func TestPhaseStart(t *testing.T) {
	base := time.Unix(1_700_000_000, 0) // on the grid
	for _, c := range []struct {
		now  time.Duration // after base
		slot int
		want time.Duration // start, after base
	}{
		{now: 2 * time.Millisecond, slot: 0, want: 0},
		{now: 2 * time.Millisecond, slot: 16, want: -5 * time.Millisecond},
		{now: 7 * time.Millisecond, slot: 16, want: 5 * time.Millisecond},
		{now: 5 * time.Millisecond, slot: 16, want: 5 * time.Millisecond},
		{now: 13 * time.Millisecond, slot: 8, want: 12500 * time.Microsecond},
	} {
		now := base.Add(c.now)
		got := phaseStart(now, c.slot).Sub(base)
		if got != c.want {
			t.Errorf("phaseStart(base+%v, slot %d) = base+%v, want base+%v", c.now, c.slot, got, c.want)
		}
		if first := base.Add(got + FrameDuration); !first.After(now) || first.After(now.Add(FrameDuration)) {
			t.Errorf("now base+%v, slot %d: first tick at base+%v, want within the next frame", c.now, c.slot, first.Sub(base))
		}
	}
}
