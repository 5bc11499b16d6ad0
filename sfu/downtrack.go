package sfu

import (
	"errors"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack is one published track as one subscriber receives it: the
// relay's own webrtc.TrackLocal. Live packets are written by the
// published track's reader (upTrack.forward) with a header rewritten for
// this subscriber; retransmissions by the down track's RTCP reader. There
// is no queue and no writer goroutine per subscriber: a write to a UDP peer
// does not block on that peer, and a hand-off per packet per subscriber
// cost more than the write itself (docs/performance.md).
type downTrack struct {
	up     *upTrack
	m      *Metrics
	owner  *Participant // the subscriber, for its join latency
	sender *webrtc.RTPSender

	bound atomic.Pointer[binding] // set by Bind, cleared by Unbind

	// seqOffset and tsOffset map the publisher's sequence numbers and
	// timestamps to this subscriber's (out = in + offset). Written by the
	// track's reader, read by the RTCP reader for retransmissions.
	seqOffset atomic.Uint32
	tsOffset  atomic.Uint32

	// Owned by the track's reader (writeLive).
	hdr        rtp.Header
	started    bool
	inSSRC     uint32
	lastOutSeq uint16
	lastOutTS  uint32
	lastWrite  int64 // nanotime of the last live write
	sampled    uint32

	rtxHdr rtp.Header // owned by the RTCP reader (writeRTX)
}

// binding is what pion negotiated for this track on the subscriber's
// connection.
type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
}

var errNoCodec = errors.New("no common codec")

// resumeGap is how long a track may pause before its sequence numbers are
// rebased on resume, so that the subscriber sees a continuous stream
// rather than a burst of loss.
const resumeGap = 200e6 // ns

// minFrameTicks is the least a restarted stream's timestamps advance: one
// 2.5 ms Opus frame, the shortest there is, so that the first packet of
// the new stream never repeats the last timestamp of the old.
const minFrameTicks = 120

func newDownTrack(up *upTrack, owner *Participant) *downTrack {
	return &downTrack{up: up, m: owner.sfu.cfg.Metrics, owner: owner}
}

// ID, StreamID, RID and Kind implement webrtc.TrackLocal: the track id is
// the one in track_published, the stream id the publisher's participant id.
func (d *downTrack) ID() string                { return d.up.id }
func (d *downTrack) StreamID() string          { return d.up.owner.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// Bind implements webrtc.TrackLocal.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == opusCodec.MimeType {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()})
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// writeLive sends the live packet pkt, read at now, to the subscriber and
// returns the payload bytes written, or -1 if nothing was written (the
// drop is counted). Called by the track's reader only, which counts what
// went out once per packet (upTrack.forward).
func (d *downTrack) writeLive(pkt *bufpool.Packet, now int64) int {
	m := d.m
	b := d.bound.Load()
	if b == nil {
		m.dropNotNegotiated.Inc()
		return -1
	}
	raw := pkt.Bytes()
	f, ok := parseRTP(raw)
	if !ok {
		m.dropMalformed.Inc()
		return -1
	}
	switch {
	case !d.started:
		d.started, d.inSSRC, d.lastWrite = true, f.ssrc, now
	case f.ssrc != d.inSSRC:
		// A new stream from the publisher (it reconnected): continue
		// this subscriber's numbering where it stopped.
		d.inSSRC = f.ssrc
		d.seqOffset.Store(uint32(d.lastOutSeq + 1 - f.seq))
		elapsed := max(uint32((now-d.lastWrite)*int64(opusCodec.ClockRate)/1e9), minFrameTicks)
		d.tsOffset.Store(d.lastOutTS + elapsed - f.ts)
	default:
		seq := f.seq + uint16(d.seqOffset.Load())
		if now-d.lastWrite > resumeGap && seq != d.lastOutSeq+1 && seq-d.lastOutSeq < 0x8000 {
			// The stream paused and resumed: hide the gap in sequence
			// numbers (timestamps keep the real time elapsed).
			d.seqOffset.Store(uint32(d.lastOutSeq + 1 - f.seq))
		}
	}
	seq := f.seq + uint16(d.seqOffset.Load())
	n, ok := d.send(&d.hdr, b, raw, f, seq)
	if !ok {
		return -1
	}
	d.lastOutSeq, d.lastOutTS, d.lastWrite = seq, d.hdr.Timestamp, now
	if d.sampled++; d.sampled%16 == 1 && pkt.ReadAt != 0 {
		m.ForwardLatency.Observe(float64(nanotime()-pkt.ReadAt) / 1e9)
	}
	d.owner.firstMediaWritten()
	return n
}

// writeRTX retransmits pkt as the subscriber's sequence number seq.
// Called by the RTCP reader only.
func (d *downTrack) writeRTX(pkt *bufpool.Packet, seq uint16) {
	m := d.m
	b := d.bound.Load()
	if b == nil {
		m.dropNotNegotiated.Inc()
		return
	}
	raw := pkt.Bytes()
	f, ok := parseRTP(raw)
	if !ok {
		m.dropMalformed.Inc()
		return
	}
	if n, ok := d.send(&d.rtxHdr, b, raw, f, seq); ok {
		m.PacketsOut.Inc()
		m.BytesOut.Add(float64(n))
	}
}

// send rewrites h for this subscriber and writes raw's payload through
// pion (interceptors, SRTP, the UDP port); it returns the payload bytes
// written. h is owned by the caller (writeLive or writeRTX).
func (d *downTrack) send(h *rtp.Header, b *binding, raw []byte, f rtpFields, seq uint16) (int, bool) {
	h.Version = 2
	// pion writes the padding itself from PaddingSize: pass the payload
	// without it.
	h.Padding, h.PaddingSize = f.padding, f.paddingSize
	h.Marker = f.marker
	h.PayloadType = b.pt
	h.SequenceNumber = seq
	h.Timestamp = f.ts + d.tsOffset.Load()
	h.SSRC = b.ssrc
	payload := raw[f.payloadOffset : len(raw)-int(f.paddingSize)]
	if _, err := b.w.WriteRTP(h, payload); err != nil {
		d.m.dropWriteFailed.Inc()
		return 0, false
	}
	return len(payload), true
}

// rtcpLoop reads what the subscriber sends about this track and serves its
// NACKs from the publisher's history. It ends when the sender closes.
func (d *downTrack) rtcpLoop() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
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
// history still has it. Called by the RTCP reader only.
func (d *downTrack) serveNACK(seq uint16) {
	m := d.m
	m.NACKsReceived.Inc()
	pkt := d.up.hist.get(seq - uint16(d.seqOffset.Load()))
	if pkt == nil {
		m.NACKsMissed.Inc()
		return
	}
	d.writeRTX(pkt, seq)
	pkt.Release()
	m.NACKsServed.Inc()
}
