package media

import "time"

// epoch anchors Now to the monotonic clock.
var epoch = time.Now()

// Now is monotonic nanoseconds since the process started: the clock of
// bufpool.Packet.ReadAt and of the audio level's freshness.
func Now() int64 { return int64(time.Since(epoch)) }
