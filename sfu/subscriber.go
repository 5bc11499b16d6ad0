package sfu

import (
	"github.com/lianmai/relay/bufpool"
)

// queued is one packet for one of a subscriber's down tracks.
type queued struct {
	pkt *bufpool.Packet // one reference, owned by whoever holds the queued
	dt  *downTrack
	// rtxSeq is the subscriber-side sequence number a NACK asked for, or
	// -1 for a packet forwarded live.
	rtxSeq int32
}

// subscriber is the sending side of one participant: every packet for any
// of its down tracks goes through one queue to one writer goroutine, so a
// slow or stalled connection delays only itself.
type subscriber struct {
	queue chan queued   // owned by writeLoop; never closed; readers send without blocking
	done  chan struct{} // closed by stop; ends writeLoop
	m     *Metrics
}

func newSubscriber(size int, m *Metrics) *subscriber {
	return &subscriber{queue: make(chan queued, size), done: make(chan struct{}), m: m}
}

// enqueue hands q to the writer, taking a reference to q.pkt. It never
// blocks: when the queue is full, the oldest packet is dropped instead.
func (s *subscriber) enqueue(q queued) {
	q.pkt.Retain()
	select {
	case s.queue <- q:
		return
	default:
	}
	select {
	case old := <-s.queue:
		old.pkt.Release()
		s.m.dropQueueFull.Inc()
	default:
	}
	select {
	case s.queue <- q:
	default: // other readers refilled it meanwhile
		q.pkt.Release()
		s.m.dropQueueFull.Inc()
	}
}

// writeLoop writes queued packets until stop.
func (s *subscriber) writeLoop() {
	for {
		select {
		case q := <-s.queue:
			q.send()
		case <-s.done:
			for {
				select {
				case q := <-s.queue:
					q.pkt.Release()
				default:
					return
				}
			}
		}
	}
}

// send writes q to its down track and releases its packet.
func (q queued) send() {
	q.dt.write(q)
	q.pkt.Release()
}

// stop ends writeLoop; call once.
func (s *subscriber) stop() { close(s.done) }
