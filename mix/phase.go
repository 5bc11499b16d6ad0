package mix

import (
	"sync"
	"time"
)

// The mixers of a relay tick in phases of their own. Each mixer runs on
// its own timer, every 10 ms; left to the moment each was started, two
// mixers fall due together as often as not, and then one waits for the
// other's whole tick (0.15–0.25 ms) before it starts: with 20 rooms on a
// core that queue is what made ticks late (docs/performance.md, "Tick
// lateness"). So every mixer takes a slot of the 10 ms frame, the least
// used one, in bit-reversed order (0, 16, 8, 24, 4, …: however many
// mixers run, they are spread evenly), and ticks at the slot's offset on
// a grid of the Unix clock's 10 ms.

// phaseSlots is how many phases the 10 ms frame has: 0.3125 ms apart,
// about one tick's work.
const phaseSlots = 32

// phases counts the mixers in each slot, for the whole process.
var phases struct {
	mu   sync.Mutex
	used [phaseSlots]int
}

// slotOrder lists the slots in bit-reversed order.
var slotOrder = func() (o [phaseSlots]int) {
	for i := range o {
		r := 0
		for b, v := 0, i; b < 5; b, v = b+1, v>>1 {
			r = r<<1 | v&1
		}
		o[i] = r
	}
	return o
}()

// takePhase gives the least used slot, the first in bit-reversed order
// among equals.
func takePhase() int {
	phases.mu.Lock()
	defer phases.mu.Unlock()
	best := slotOrder[0]
	for _, s := range slotOrder {
		if phases.used[s] < phases.used[best] {
			best = s
		}
	}
	phases.used[best]++
	return best
}

// givePhase returns a slot taken by takePhase.
func givePhase(slot int) {
	phases.mu.Lock()
	defer phases.mu.Unlock()
	phases.used[slot]--
}

// phaseStart is the start of a mixer's schedule (its first tick is one
// frame later) for slot at now: the slot's offset on the Unix clock's
// 10 ms grid, no more than a frame before now. It keeps now's monotonic
// reading, so the schedule does not follow wall-clock steps.
func phaseStart(now time.Time, slot int) time.Time {
	offset := time.Duration(slot) * FrameDuration / phaseSlots
	into := time.Duration(now.UnixNano() % int64(FrameDuration))
	start := now.Add(offset - into)
	if start.After(now) {
		start = start.Add(-FrameDuration)
	}
	return start
}
