package media

import (
	"sync"

	"github.com/pion/rtcp"
)

// lossWindow is how many of a publisher's latest sequence numbers the
// relay remembers as received or not: the receive log of pion's NACK
// generator (512), so that a lost packet is asked for as long as pion
// asked for it. A multiple of 64 (one word of the bitmap each).
const lossWindow = 512

// receiveStats is what the relay learns of a publisher's stream from the
// packets it receives: which of the latest lossWindow sequence numbers
// arrived (for NACKs) and the reception statistics of RFC 3550 6.4.1 and
// appendix A.3 (for receiver reports). The track's reader updates it with
// every packet; the feedback loop (feedback.go) reads it every tick.
type receiveStats struct {
	mu sync.Mutex // taken by the reader per packet and by the feedback loop per tick

	started   bool
	ssrc      uint32
	clockRate int64 // RTP timestamp units per second

	// The receive bitmap: bit seq%lossWindow is set when seq arrived.
	// Every sequence number after lastConsecutive up to end that is not
	// set is missing; so are none before (arrived, or too old to ask).
	bits            [lossWindow / 64]uint64
	end             uint16 // the highest sequence number received
	lastConsecutive uint16

	cycles   uint32 // wraps of the sequence number, times 1<<16
	base     uint32 // the first sequence number received (extended)
	received uint32 // packets received, not counting duplicates in the window

	// At the last receiver report (RFC 3550 A.3).
	expectedPrior, receivedPrior uint32

	// Interarrival jitter (RFC 3550 A.8) in timestamp units times 16.
	jitter      uint32
	lastTransit int64

	lsr   uint32 // the middle 32 bits of the last sender report's NTP time
	lsrAt int64  // Now() when it arrived; 0: no sender report yet
}

// newReceiveStats is the statistics of a stream of clock rate clockRate.
func newReceiveStats(clockRate uint32) *receiveStats {
	return &receiveStats{clockRate: int64(clockRate)}
}

func (s *receiveStats) has(seq uint16) bool {
	pos := seq % lossWindow
	return s.bits[pos/64]&(1<<(pos%64)) != 0
}

func (s *receiveStats) set(seq uint16) {
	pos := seq % lossWindow
	s.bits[pos/64] |= 1 << (pos % 64)
}

func (s *receiveStats) unset(seq uint16) {
	pos := seq % lossWindow
	s.bits[pos/64] &^= 1 << (pos % 64)
}

// packet records the arrival at now (Now's clock) of the packet with
// ssrc, seq and RTP timestamp ts. A new SSRC starts the statistics over.
func (s *receiveStats) packet(ssrc uint32, seq uint16, ts uint32, now int64) (gap bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// gap: the stream missed nothing before this packet and misses
	// something after it, which the feedback loop must learn of.
	complete := !s.started || s.lastConsecutive == s.end
	defer func() { gap = complete && s.started && s.lastConsecutive != s.end }()
	// The arrival in timestamp units: microseconds first, so that the
	// product stays far from overflowing (Now counts from process start).
	arrival := now / 1000 * s.clockRate / 1_000_000
	transit := arrival - int64(ts)
	if !s.started || ssrc != s.ssrc {
		s.startLocked(ssrc, seq, transit)
		return
	}
	diff := seq - s.end
	switch {
	case diff == 0:
		return // a duplicate
	case diff < 0x8000: // after end (modulo wraps)
		if diff > lossWindow {
			clear(s.bits[:])
		} else {
			for i := s.end + 1; i != seq; i++ {
				s.unset(i) // what the bitmap held for these was a window ago
			}
		}
		if seq < s.end {
			s.cycles += 1 << 16
		}
		s.end = seq
		switch {
		case s.lastConsecutive+1 == seq:
			s.lastConsecutive = seq
		case seq-s.lastConsecutive > lossWindow:
			// Too old to ask for: forget them, keeping what arrived since.
			s.lastConsecutive = seq - lossWindow
			s.fixLastConsecutive()
		}
	default: // before end: late, or a retransmission
		if s.end-seq >= lossWindow {
			return // too old to know whether it is a duplicate; not counted
		}
		if s.has(seq) {
			return // a duplicate
		}
		if s.lastConsecutive+1 == seq {
			s.lastConsecutive = seq
			defer s.fixLastConsecutive()
		}
	}
	s.set(seq)
	s.received++
	d := transit - s.lastTransit
	s.lastTransit = transit
	if d < 0 {
		d = -d
	}
	// J += (|D| - J) / 16, kept times 16 (RFC 3550 A.8).
	s.jitter += uint32(d) - (s.jitter+8)>>4
	return gap // set by the deferred check
}

// startLocked starts the statistics over at a stream's first packet.
// s.mu must be held.
func (s *receiveStats) startLocked(ssrc uint32, seq uint16, transit int64) {
	clear(s.bits[:])
	s.started, s.ssrc = true, ssrc
	s.end, s.lastConsecutive = seq, seq
	s.cycles, s.base, s.received = 0, uint32(seq), 1
	s.expectedPrior, s.receivedPrior = 0, 0
	s.jitter, s.lastTransit = 0, transit
	s.lsr, s.lsrAt = 0, 0
	s.set(seq)
}

// fixLastConsecutive moves lastConsecutive past every sequence number
// after it that arrived.
func (s *receiveStats) fixLastConsecutive() {
	i := s.lastConsecutive + 1
	for i != s.end+1 && s.has(i) {
		i++
	}
	s.lastConsecutive = i - 1
}

// senderReport records a sender report of ssrc with NTP time ntp that
// arrived at now, for the next receiver report's LSR and DLSR.
func (s *receiveStats) senderReport(ssrc uint32, ntp uint64, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || ssrc != s.ssrc {
		return // no packet of that stream yet, or an old one's
	}
	s.lsr = uint32(ntp >> 16)
	s.lsrAt = now
}

// missingLocked appends to dst, and returns, the sequence numbers still
// missing in the window: those after lastConsecutive up to end that did
// not arrive. s.mu must be held.
func (s *receiveStats) missingLocked(dst []uint16) []uint16 {
	if !s.started || s.end-s.lastConsecutive >= 0x8000 {
		return dst
	}
	for i := s.lastConsecutive + 1; i != s.end+1; i++ {
		if !s.has(i) {
			dst = append(dst, i)
		}
	}
	return dst
}

// reportLocked is the reception report block for now (Now's clock), and
// starts the next report's interval. s.mu must be held.
func (s *receiveStats) reportLocked(now int64) rtcp.ReceptionReport {
	extMax := s.cycles | uint32(s.end)
	expected := extMax - s.base + 1
	lost := int64(expected) - int64(s.received)
	expInterval := expected - s.expectedPrior
	recvInterval := s.received - s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	var fraction uint8
	if lostInterval := int64(expInterval) - int64(recvInterval); expInterval != 0 && lostInterval > 0 {
		fraction = uint8(min(lostInterval<<8/int64(expInterval), 255))
	}
	r := rtcp.ReceptionReport{
		SSRC:               s.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(min(max(lost, 0), 0x7fffff)), // duplicates may make it negative; reported as 0
		LastSequenceNumber: extMax,
		Jitter:             s.jitter >> 4,
	}
	if s.lsrAt != 0 {
		r.LastSenderReport = s.lsr
		// DLSR in units of 1/65536 s.
		r.Delay = uint32((now - s.lsrAt) * 65536 / 1_000_000_000)
	}
	return r
}
