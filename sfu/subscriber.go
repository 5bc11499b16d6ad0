package sfu

// subscriber is the sending side of one participant: what its down tracks
// share. Its packets are written where they arise: live ones by each
// published track's reader (upTrack.forward), retransmissions by each down
// track's RTCP reader (downTrack.serveNACK). It has no queue and no writer
// goroutine: a write to a UDP peer does not block on that peer, and a
// hand-off per packet per subscriber cost more than the write itself
// (docs/performance.md).
type subscriber struct {
	m *Metrics
}

// newSubscriber makes a participant's subscriber.
func newSubscriber(m *Metrics) *subscriber { return &subscriber{m: m} }
