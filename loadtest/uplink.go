package loadtest

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// uplink is a publisher's network on the way to the relay: the client's
// SendInterceptor, so it sits between pion's NACK responder and SRTP. A
// packet it drops (loss_at "network") is lost on the wire after the
// responder kept it; the relay's NACK makes the responder write it again,
// through the uplink, where it may be lost again like any packet. It counts
// what it passed and dropped, and the sequence numbers the relay NACKed.
//
// Originals are written by the publisher's pacer, retransmissions by
// pion's RTCP reader goroutine: mu serializes the two.
type uplink struct {
	mu      sync.Mutex
	im      *impairment // nil: no loss; set before Publish, then read under mu
	log     *frameLog   // the publisher's, to mark lost frames; set before the pacer starts; guarded by mu
	started bool        // an original has been written; guarded by mu
	highest uint16      // highest sequence number written; guarded by mu
	highK   int64       // its frame index in log; guarded by mu

	originals     atomic.Uint64 // first transmissions
	lost          atomic.Uint64 // of those, dropped
	resent        atomic.Uint64 // retransmissions (a sequence number written before)
	resentLost    atomic.Uint64 // of those, dropped
	nackedSeqs    atomic.Uint64 // sequence numbers asked for in NACKs, repeats included
	nackedPackets atomic.Uint64 // RTCP NACK packets received
}

// setLoss sets the loss the uplink applies; call before Publish.
func (u *uplink) setLoss(im *impairment) {
	u.mu.Lock()
	u.im = im
	u.mu.Unlock()
}

// setLog gives the uplink the publisher's frame log, before the pacer
// writes frame 0.
func (u *uplink) setLog(l *frameLog) {
	u.mu.Lock()
	u.log = l
	u.started = false // frame indices count from the log's first frame (an early pub sent silence before)
	u.mu.Unlock()
}

// drop decides the fate of a packet written with sequence number seq and
// counts it. A lost original is marked in the frame log, so that
// receivers can tell a repaired frame.
func (u *uplink) drop(seq uint16) bool {
	u.mu.Lock()
	original := !u.started || int16(seq-u.highest) > 0
	if original {
		switch {
		case u.log == nil:
		case !u.started:
			u.highK = int64(seq - u.log.seq0)
		default:
			u.highK += int64(int16(seq - u.highest))
		}
		u.started, u.highest = true, seq
	}
	lost := u.im != nil && u.im.drop()
	if lost && original && u.log != nil {
		u.log.markUplinkLost(u.highK)
	}
	u.mu.Unlock()
	switch {
	case original && lost:
		u.originals.Add(1)
		u.lost.Add(1)
	case original:
		u.originals.Add(1)
	case lost:
		u.resent.Add(1)
		u.resentLost.Add(1)
	default:
		u.resent.Add(1)
	}
	return lost
}

// NewInterceptor implements interceptor.Factory; the client calls it once,
// for the pub peer connection.
func (u *uplink) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &uplinkInterceptor{u: u}, nil
}

type uplinkInterceptor struct {
	interceptor.NoOp
	u *uplink
}

// BindLocalStream wraps the writer nearest the network: what it does not
// pass is never encrypted nor sent.
func (i *uplinkInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if i.u.drop(h.SequenceNumber) {
			return len(payload) + h.MarshalSize(), nil
		}
		return w.Write(h, payload, a)
	})
}

// BindRTCPReader counts the relay's NACKs as they arrive, before the
// responder answers them. The parsed packets are cached in the attributes,
// so the interceptors after this one do not parse them again.
func (i *uplinkInterceptor) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := r.Read(b, a)
		if err != nil {
			return n, attr, err
		}
		if attr == nil {
			attr = make(interceptor.Attributes)
		}
		pkts, err := attr.GetRTCPPackets(b[:n])
		if err != nil {
			return n, attr, nil // not ours to judge; the responder will say
		}
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				i.u.nackedPackets.Add(1)
				for _, pair := range nack.Nacks {
					// The pair's packet id plus one per bit of its bitmask.
					i.u.nackedSeqs.Add(1 + uint64(bits.OnesCount16(uint16(pair.LostPackets))))
				}
			}
		}
		return n, attr, nil
	})
}
