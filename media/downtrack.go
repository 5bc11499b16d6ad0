package media

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DownTrack is one published track as one subscriber receives it: the
// relay's own webrtc.TrackLocal. Live packets are written by the
// published track's reader (UpTrack.forward) with a header rewritten for
// this subscriber; retransmissions by whoever reads the subscriber's
// NACKs (pion's RTCP reader, or on the direct path the socket reader of
// its flow: subrtcp.go). There
// is no queue and no writer goroutine per subscriber: a write to a UDP peer
// does not block on that peer, and a hand-off per packet per subscriber
// cost more than the write itself (docs/performance.md).
type DownTrack struct {
	up *UpTrack
	m  *Metrics

	bound atomic.Pointer[binding] // set by Bind, cleared by Unbind
	mung  munger
	gate  *Gate    // nil, or the switch that stops this copy (set once)
	sub   *SubConn // nil, or the connection's direct path and reports (set once)

	// What the sender reports say (reports.go), written by the writers,
	// read by the relay's report loop: packets and payload octets sent
	// (retransmissions included, as pion's sender-report interceptor
	// counts), and the RTP timestamp of the last live packet with when it
	// was sent (rtpClock: timestamp<<32 | Now()/1000 in µs, low 32 bits).
	sentPackets atomic.Uint32
	sentOctets  atomic.Uint32
	rtpClock    atomic.Uint64
	reportSlot  int // guarded by the Reporter's mu

	// Owned by the goroutine that writes this subscriber's live packets
	// (writeLive): the track's reader, or past FanoutThreshold a fan-out
	// worker, one of them for the subscriber's life on the track.
	hdr     rtp.Header
	sampled uint32
	onFirst func() // called at the first packet written, then nil

	// rtxMu serializes the NACK repairs (serveNACK): they come from pion's
	// RTCP reader or, on the direct path, the socket reader of the
	// subscriber's flow (subrtcp.go), and a path change can overlap them.
	rtxMu      sync.Mutex
	rtxHdr     rtp.Header  // guarded by rtxMu (writeRTX)
	rtcpLoopOn atomic.Bool // pion's RTCP reader was started (startRTCPLoop)
}

// binding is what pion negotiated for this track on the subscriber's
// connection.
type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
}

var errNoCodec = errors.New("no common codec: the subscriber did not accept Opus")

// DownTrackParams are what a subscriber's track needs from the room
// layer.
type DownTrackParams struct {
	// OnFirstPacket, if not nil, is called by the track's reader when the
	// first packet has been written to the subscriber (the room layer's
	// join latency). It must not block.
	OnFirstPacket func()
	// Gate, if not nil, stops this copy of the track while it is muted,
	// without muting the track itself: the room layer shares one Gate
	// among the down tracks of one room for a track published in
	// another (a remote publisher muted in this room only).
	Gate *Gate
	// Sub, if not nil, is the subscriber's connection: its direct send
	// path and its sender reports (direct.go, reports.go).
	Sub *SubConn
}

// NewDownTrack creates up as one subscriber will receive it. Add it to the
// subscriber's connection (AddTrack), then Subscribe.
func NewDownTrack(up *UpTrack, p DownTrackParams) *DownTrack {
	return &DownTrack{up: up, m: up.m, onFirst: p.OnFirstPacket, gate: p.Gate, sub: p.Sub}
}

// RTCPReader is where a subscriber's RTCP about a track comes from: pion's
// *webrtc.RTPSender.
type RTCPReader interface {
	ReadRTCP() ([]rtcp.Packet, interceptor.Attributes, error)
}

// Subscribe adds d to its track's fan-out and serves the subscriber's
// NACKs from the track's history: read from sender by a goroutine that
// ends when sender fails (it was removed or its connection closed), or,
// while d's SubConn is direct, by the relay's socket reader, with no
// goroutine of d's (subrtcp.go). false if the track has ended: the
// caller removes d again.
func (d *DownTrack) Subscribe(sender RTCPReader) bool {
	if r := d.reporter(); r != nil {
		r.add(d)
	}
	if d.sub == nil {
		d.startRTCPLoop(sender)
	} else {
		d.sub.in.add(d, sender)
	}
	return d.up.addSubscriber(d)
}

// Unsubscribe takes d out of its track's fan-out at once.
func (d *DownTrack) Unsubscribe() {
	d.up.removeSubscriber(d)
	if d.sub != nil {
		d.sub.in.remove(d)
	}
	if r := d.reporter(); r != nil {
		r.remove(d)
	}
}

// startRTCPLoop starts pion's RTCP reader for d, once.
func (d *DownTrack) startRTCPLoop(sender RTCPReader) {
	if sender != nil && !d.rtcpLoopOn.Swap(true) {
		go d.rtcpLoop(sender)
	}
}

// reporter is where d's sender reports are made, or nil (pion's
// interceptor makes them, or none).
func (d *DownTrack) reporter() *Reporter {
	if d.sub == nil {
		return nil
	}
	return d.sub.reports
}

// ID, StreamID, RID and Kind implement webrtc.TrackLocal: the track id is
// the one in track_published, the stream id the publisher's participant id.
func (d *DownTrack) ID() string                { return d.up.id }
func (d *DownTrack) StreamID() string          { return d.up.streamID }
func (d *DownTrack) RID() string               { return "" }
func (d *DownTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// Bind implements webrtc.TrackLocal.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == Opus.MimeType {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()})
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// BindTaken binds d as the relay negotiated it itself on a taken-over
// connection (takeover.go): sent as ssrc with payload type pt, never
// through pion.
func (d *DownTrack) BindTaken(ssrc uint32, pt uint8) {
	d.bound.Store(&binding{ssrc: ssrc, pt: pt, w: takenWriter{}})
}

// SSRC is what d is sent as, once bound.
func (d *DownTrack) SSRC() (uint32, bool) {
	if b := d.bound.Load(); b != nil {
		return b.ssrc, true
	}
	return 0, false
}

// Unbind implements webrtc.TrackLocal.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	if d.sub.TakenOver() {
		return nil // pion closed its side; the relay still sends as negotiated
	}
	d.bound.Store(nil)
	return nil
}

// writeLive sends the live packet pkt, parsed as f and read at now, to the
// subscriber and returns the payload bytes written, or -1 if nothing was
// written (the drop is counted). Called by the track's reader only, which
// counts what went out once per packet (UpTrack.forward).
func (d *DownTrack) writeLive(pkt *bufpool.Packet, f *rtpFields, now int64) int {
	if d.gate.Muted() {
		return -1 // as a muted track: not a drop (the munger hides the pause)
	}
	b := d.bound.Load()
	if b == nil {
		d.m.drop(DropNotNegotiated)
		return -1
	}
	seq, ts := d.mung.next(f, now)
	n, ok := d.send(&d.hdr, b, pkt.Bytes(), f, seq, ts)
	if !ok {
		return -1
	}
	d.mung.sent(seq, ts, now)
	d.rtpClock.Store(uint64(ts)<<32 | uint64(uint32(now/1000)))
	if d.sampled++; d.sampled%16 == 1 && pkt.ReadAt != 0 {
		d.m.ForwardLatency.Observe(float64(Now()-pkt.ReadAt) / 1e9)
	}
	if d.onFirst != nil {
		first := d.onFirst
		d.onFirst = nil
		first()
	}
	return n
}

// writeRTX retransmits pkt as the subscriber's sequence number seq.
// d.rtxMu is held (serveNACK).
func (d *DownTrack) writeRTX(pkt *bufpool.Packet, seq uint16) {
	if d.gate.Muted() {
		return
	}
	b := d.bound.Load()
	if b == nil {
		d.m.drop(DropNotNegotiated)
		return
	}
	raw := pkt.Bytes()
	f, ok := parseRTP(raw) // the history keeps only packets that parsed
	if !ok {
		d.m.drop(DropMalformed)
		return
	}
	if n, ok := d.send(&d.rtxHdr, b, raw, &f, seq, d.mung.outTS(f.ts)); ok {
		d.m.PacketsOut.Inc()
		d.m.BytesOut.Add(float64(n))
	}
}

// send rewrites h for this subscriber and writes raw's payload: encrypted
// straight into the send batch on the direct path (direct.go), else
// through pion (interceptors, SRTP, the UDP port); it returns the payload
// bytes written. h is owned by the caller (writeLive or writeRTX).
func (d *DownTrack) send(h *rtp.Header, b *binding, raw []byte, f *rtpFields, seq uint16, ts uint32) (int, bool) {
	h.Version = 2
	// pion writes the padding itself from PaddingSize: pass the payload
	// without it.
	h.Padding, h.PaddingSize = f.padding, f.paddingSize
	h.Marker = f.marker
	h.PayloadType = b.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	h.SSRC = b.ssrc
	payload := f.payload(raw)
	if d.sub != nil {
		if handled, ok := d.sub.writeRTP(h, payload); handled {
			if !ok {
				d.m.drop(DropWriteFailed)
				return 0, false
			}
			d.counted(len(payload))
			return len(payload), true
		}
	}
	if _, err := b.w.WriteRTP(h, payload); err != nil {
		d.m.drop(DropWriteFailed)
		return 0, false
	}
	d.counted(len(payload))
	return len(payload), true
}

// PacketsSent is the RTP packets written to d's subscriber so far,
// retransmissions included (what its sender reports count; wraps at 2³²).
func (d *DownTrack) PacketsSent() uint32 { return d.sentPackets.Load() }

// counted adds one packet of n payload octets to what d's sender reports
// say.
func (d *DownTrack) counted(n int) {
	d.sentPackets.Add(1)
	d.sentOctets.Add(uint32(n))
}

// rtcpLoop reads what the subscriber sends about this track and serves its
// NACKs from the publisher's history. It ends when the sender fails.
func (d *DownTrack) rtcpLoop(sender RTCPReader) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			if r := d.reporter(); r != nil {
				r.remove(d) // removed from the connection, or it closed
			}
			return
		}
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				for _, pair := range n.Nacks {
					pair.Range(func(seq uint16) bool {
						d.serveNACK(seq)
						return true
					})
				}
			}
		}
	}
}

// serveNACK retransmits the packet the subscriber knows as seq, if the
// history still has it.
func (d *DownTrack) serveNACK(seq uint16) {
	d.rtxMu.Lock()
	defer d.rtxMu.Unlock()
	m := d.m
	m.NACKsReceived.Inc()
	pkt := d.up.hist.get(d.mung.inSeq(seq))
	if pkt == nil {
		m.NACKsMissed.Inc()
		return
	}
	d.writeRTX(pkt, seq)
	pkt.Release()
	m.NACKsServed.Inc()
}
