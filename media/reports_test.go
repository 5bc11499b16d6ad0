package media

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestReporterSkipsEmptySlots: with one track the sender-report loop
// wakes once per interval for it, not once per slot; a second track in
// another slot gets its tick; Close ends the loop.
func TestReporterSkipsEmptySlots(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := NewReporter()
	defer r.Close()
	waitPasses := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for r.passes.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d ticks after 10 s, want %d", r.passes.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	r.add(&DownTrack{}) // slot 0; no binding yet, so its reports are skipped
	waitPasses(1)
	// Six slot lengths: a ticker would have run six more times. (Timers
	// fire late, never early: a loaded machine cannot make this fail.)
	time.Sleep(6 * ReportInterval / reportSlots)
	if n := r.passes.Load(); n != 1 {
		t.Errorf("%d ticks with one track in slot 0, %v after its tick; want 1", n, 6*ReportInterval/reportSlots)
	}
	r.add(&DownTrack{}) // slot 1: reached after slot 0's next round
	waitPasses(3)
}
