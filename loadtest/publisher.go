package loadtest

import (
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/loadtest/report"
	"github.com/pion/rtp"
)

// frameInterval is the Opus frame duration and the pacing period.
const frameInterval = int64(10 * time.Millisecond)

// maxQueued bounds the frames a publisher holds back for injected jitter
// (jitter is at most 2 s: 200 frames).
const maxQueued = 256

// publisher sends one participant's voice on its pub peer connection:
// frame k is due at start + k*10ms on the monotonic clock, so pacing never
// drifts however late a wake-up is. Each frame is stamped in the frame log
// when it is due and read, then (unless injected loss drops it) written at
// once or, with injected jitter, after its random hold, in order.
type publisher struct {
	pub   *client.Publisher // nil once the participant closed
	log   *frameLog
	voice *voice
	pk    *opusgen.Packetizer
	im    *impairment
	extID uint8 // negotiated audio level extension id, 0 for none

	// Owned by the pacer goroutine; read after ended is closed.
	lateness report.Hist // how late each frame's wake-up was, before any injected jitter

	sent        atomic.Uint64 // frames written
	dropped     atomic.Uint64 // frames dropped by injected loss
	writeErrors atomic.Uint64

	stop  chan struct{} // closed by halt; ends the pacer
	ended chan struct{} // closed by the pacer when it returns
}

// pending is a frame held back by injected jitter.
type pending struct {
	at  int64
	pkt *rtp.Packet
}

func newPublisher(pub *client.Publisher, log *frameLog, v *voice, pk *opusgen.Packetizer, im *impairment) *publisher {
	return &publisher{
		pub: pub, log: log, voice: v, pk: pk, im: im,
		extID: pub.AudioLevelExtensionID(),
		stop:  make(chan struct{}),
		ended: make(chan struct{}),
	}
}

// run paces frames until halt or the frame log is full.
func (p *publisher) run() {
	defer close(p.ended)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// queue is a FIFO ring of frames held back by jitter; owned here.
	var queue [maxQueued]pending
	head, size := 0, 0
	var lastAt int64
	start := nanotime()
	for k := int64(0); ; {
		due := start + k*frameInterval
		wake := due
		if size > 0 && queue[head].at < wake {
			wake = queue[head].at
		}
		if !sleepUntil(timer, wake, p.stop) {
			return
		}
		now := nanotime()
		for size > 0 && queue[head].at <= now {
			p.write(queue[head].pkt)
			queue[head] = pending{}
			head, size = (head+1)%maxQueued, size-1
		}
		if now < due {
			continue
		}
		p.lateness.Add(now - due)
		i := int(k % int64(len(p.voice.frames)))
		pkt := p.pk.Packet(p.voice.frames[i])
		pkt.Marker = k == 0
		if p.extID != 0 {
			// RFC 6464: voice activity bit and level; errors only for bad ids.
			_ = pkt.Header.SetExtension(p.extID, []byte{0x80 | p.voice.levels[i]})
		}
		drop := p.im.drop()
		if !p.log.stamp(k, now, drop) {
			return
		}
		k++
		if drop {
			p.dropped.Add(1)
			continue
		}
		d := p.im.delay()
		if d == 0 && size == 0 {
			p.write(pkt)
			continue
		}
		at := max(now+d, lastAt)
		lastAt = at
		if size == maxQueued { // cannot happen with jitter <= 2 s; keep order, send now
			p.write(pkt)
			continue
		}
		queue[(head+size)%maxQueued] = pending{at: at, pkt: pkt}
		size++
	}
}

func (p *publisher) write(pkt *rtp.Packet) {
	if err := p.pub.WriteRTP(pkt); err != nil {
		p.writeErrors.Add(1)
		return
	}
	p.sent.Add(1)
}

// halt stops the pacer and waits for it; the frame log records when.
func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.ended
	p.log.stop.CompareAndSwap(0, nanotime())
}

// newPacketizer returns a packetizer and the RTP timestamp and sequence
// number of the next packet it makes, which is sent as frame 0. The
// packetizer starts at a random sequence number and timestamp and does not
// expose them, so one packet is made and thrown away to learn them; frame
// 0 gets the marker bit by hand instead (the start of the talkspurt).
func newPacketizer(ssrc uint32) (pk *opusgen.Packetizer, ts0 uint32, seq0 uint16) {
	pk = opusgen.NewPacketizer(111, ssrc)
	probe := pk.Packet(nil)
	return pk, probe.Timestamp + opusgen.FrameSamples, probe.SequenceNumber + 1
}
