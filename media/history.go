package media

import (
	"sync"

	"github.com/lianmai/relay/bufpool"
)

// historySize is how many of a track's latest packets are kept to answer
// NACKs: 32 × 10 ms = 320 ms, more than a round trip on any network where
// a retransmitted audio packet can still arrive before its playout time.
// A power of two, so that seq % historySize is a mask.
const historySize = 32

// history keeps a track's latest packets for retransmission. The reader
// puts every packet; RTCP loops get what subscribers NACK.
type history struct {
	mu    sync.Mutex
	slots [historySize]struct {
		seq uint16
		pkt *bufpool.Packet // one reference owned by the history
	}
}

// put keeps pkt (taking a reference) in place of the packet it evicts.
func (h *history) put(seq uint16, pkt *bufpool.Packet) {
	pkt.Retain()
	h.mu.Lock()
	s := &h.slots[seq%historySize]
	old := s.pkt
	s.seq, s.pkt = seq, pkt
	h.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// get returns the packet with sequence number seq, with a reference for
// the caller, or nil if it is no longer kept.
func (h *history) get(seq uint16) *bufpool.Packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.slots[seq%historySize]
	if s.pkt == nil || s.seq != seq {
		return nil
	}
	s.pkt.Retain()
	return s.pkt
}

// clear releases every packet kept.
func (h *history) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.slots {
		if p := h.slots[i].pkt; p != nil {
			p.Release()
			h.slots[i].pkt = nil
		}
	}
}
