package loadtest

import "time"

// epoch is the origin of every timestamp the load generator keeps. Times
// are int64 nanoseconds since epoch on Go's monotonic clock, so that they
// never jump with the wall clock and cost no allocation to take.
var epoch = time.Now()

// nanotime returns monotonic nanoseconds since epoch.
func nanotime() int64 { return int64(time.Since(epoch)) }

// never is a time that no deadline or window end reaches.
const never = int64(1<<63 - 1)

// sleepUntil sleeps until the monotonic time at (ns since epoch), or until
// done is closed. It returns false if done was closed. t is reused across
// calls by the caller (one timer per loop, no allocation per wait).
func sleepUntil(t *time.Timer, at int64, done <-chan struct{}) bool {
	d := time.Duration(at - nanotime())
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-done:
		t.Stop()
		return false
	}
}
