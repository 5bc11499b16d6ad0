package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/auth"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
)

// participant is one synthetic peer: a client that receives every track
// the relay forwards it and, for hosts and guests, publishes a voice.
type participant struct {
	r      *runner
	room   int
	name   string
	role   string
	listen string // join's listen field: ListenMix or ListenTracks for the audience, "" (omitted) for publishers
	decode bool   // decode and conceal (the stutter sample)
	sink   bool   // its sockets drop media: counted by the relay, not in the receive figures
	node   int    // the relay it dials in a cluster run (runner.dialURL)
	landed string // the URL its join landed on (client.URL, after redirects); set by dial

	c        *client.Client // nil before dial and after close (so that a long run does not keep the closed connections)
	id       string         // the participant id the relay gave; set by dial
	dialNs   int64          // when the WebSocket dial started
	joinedNs int64          // when joined arrived
	own      *window        // its own measurement window; churn and mic end it early

	pub *publisher // nil unless publishing; set before any receiver can see its track
	up  *uplink    // the pub connection's way to the relay (injected network loss); set by dial

	mu      sync.Mutex     // guards streams and mixes
	streams []*streamStats // one per publisher's track received; each owned by its reader until wg is done
	mixes   []*mixStats    // one per mix track received (one, unless the relay renegotiated it); owned likewise

	wg      sync.WaitGroup // the track acceptor and the readers
	done    chan struct{}  // closed by close; ends the track acceptor
	closing atomic.Bool    // set by whoever takes the participant down (churn, mic, teardown)
}

// markClosing claims the participant for closing; false if someone else
// already has.
func (p *participant) markClosing() bool { return p.closing.CompareAndSwap(false, true) }

// dial joins the participant's room. On success the client runs and
// tracks are accepted until close.
func (p *participant) dial(ctx context.Context) error {
	cfg := client.Config{
		URL:         p.r.dialURL(p.node),
		Room:        p.r.roomName(p.room),
		Name:        p.name,
		Role:        p.role,
		Listen:      p.listen,
		Token:       p.r.cfg.Token,
		Loopback:    p.r.cfg.Loopback,
		DisableNACK: !p.nack(),
		Logger:      p.r.clientLog.With("participant", p.name),
	}
	if p.role == roleAudience {
		applyTransport(&cfg, p.r.sc.Transport)
		if p.sink {
			cfg.OnUDPSocket = dropMedia
		}
		if !p.decode && p.r.sc.BareReceivers {
			cfg.DisableNACK, cfg.NoRTCPReports = true, true
		}
	}
	cfg.TLSConfig = p.r.cfg.TLSConfig
	p.up = &uplink{}
	cfg.SendInterceptor = p.up
	if len(p.r.cfg.TokenSecret) > 0 {
		tok, err := auth.Mint([]byte(p.r.cfg.TokenSecret), cfg.Room, p.name, p.role, p.r.deadline+time.Hour, time.Now())
		if err != nil {
			return fmt.Errorf("minting a token: %w", err)
		}
		cfg.Token = tok
	}
	p.dialNs = nanotime()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	p.joinedNs = nanotime()
	p.c, p.id, p.landed = c, c.ID(), c.URL()
	p.done = make(chan struct{})
	p.wg.Add(1)
	go p.acceptTracks()
	return nil
}

// nack says whether the participant negotiates NACK: publishers and the
// decoded sample as the scenario says; lean receivers only with
// lean_nack. Chrome does not negotiate NACK for audio either, and leaving
// it out spares the lean receive path pion's NACK generator (about 7% of
// the load generator's CPU).
func (p *participant) nack() bool {
	if p.role == roleAudience && !p.decode {
		return p.r.sc.LeanNACK
	}
	return *p.r.sc.NACK
}

// acceptTracks starts a reader for every track the relay forwards.
func (p *participant) acceptTracks() {
	defer p.wg.Done()
	for {
		select {
		case rt := <-p.c.Tracks():
			p.wg.Add(1)
			go p.read(rt)
		case <-p.done:
			return
		}
	}
}

// read is a track's reader: the lean receive path. One Read into a reused
// buffer and a few header bytes parsed per packet; nothing decoded unless
// this participant is in the stutter sample.
func (p *participant) read(rt *client.RemoteTrack) {
	defer p.wg.Done()
	buf := make([]byte, maxPayload) // owned by this reader; reused for every packet
	if rt.StreamID == mixStreamID {
		p.readMix(rt, buf)
		return
	}
	log := p.r.frameLog(rt.StreamID)
	if log == nil {
		// Not one of ours (another load generator's, or a publisher that
		// left): drain it so pion does not buffer it.
		p.r.foreignTracks.Add(1)
		p.r.log.Debug("track from a publisher this run did not start", "stream", rt.StreamID, "track", rt.TrackID, "receiver", p.name)
		for {
			if _, _, err := rt.Track.Read(buf); err != nil {
				return
			}
		}
	}
	var play *playout
	if p.decode {
		if dec := p.newDecoder(); dec != nil {
			play = newPlayout(log, dec, p.r.win, p.own)
		}
	}
	st := newStreamStats(log, p.r.win, p.own, p.dialNs, play, &p.r.live)
	switch {
	case p.role == roleHost && log.room == p.room:
		st.heard = &log.hostHeard // for mic cycling: when a host first hears a guest
	case p.role == roleHost:
		st.heard = &log.remoteHeard // for pk: when a linked room's host first hears it
	}
	p.mu.Lock()
	p.streams = append(p.streams, st)
	p.mu.Unlock()
	pump(rt, buf, st.onPacket)
}

// pump reads rt's packets into buf and hands each to onPacket with its
// arrival time, until the track ends.
func pump(rt *client.RemoteTrack, buf []byte, onPacket func(now int64, raw []byte)) {
	for {
		n, _, err := rt.Track.Read(buf)
		if err != nil {
			return
		}
		onPacket(nanotime(), buf[:n])
	}
}

// readMix is the reader of the room's mix: the same lean path as a
// publisher's track, measured against the mix's own clock (mixStats).
func (p *participant) readMix(rt *client.RemoteTrack, buf []byte) {
	st := newMixStats(p.r.win, p.own, p.dialNs, p.r.maxFrames, &p.r.live)
	if p.decode {
		if dec := p.newDecoder(); dec != nil {
			st.play = newPlayout(st, dec, p.r.win, p.own)
		}
	}
	p.mu.Lock()
	p.mixes = append(p.mixes, st)
	p.mu.Unlock()
	pump(rt, buf, st.onPacket)
}

// newDecoder returns an Opus decoder for the stutter sample, or nil (with
// a warning) if libopus cannot make one.
func (p *participant) newDecoder() *opusgen.Decoder {
	dec, err := opusgen.NewDecoder(1)
	if err != nil {
		p.r.log.Warn("no decoder; this receiver is left out of the decoded sample", "err", err)
		return nil
	}
	return dec
}

// startPublishing opens the pub peer connection, waits for it to connect
// and starts the pacer, which sends at most maxFrames frames.
func (p *participant) startPublishing(ctx context.Context, seed int64, maxFrames int) error {
	v, err := p.encodeVoice(seed)
	if err != nil {
		return err
	}
	pub, err := p.openPub(ctx, seed)
	if err != nil {
		return err
	}
	pk, _, _ := newPacketizer(uint32(seed))
	p.startPacing(pub, v, pk, seed, maxFrames)
	return nil
}

// encodeVoice encodes the participant's voice loop.
func (p *participant) encodeVoice(seed int64) (*voice, error) {
	return encodeVoice(seed, int(p.r.sc.AudioLoop.D()/time.Duration(frameInterval)))
}

// openPub opens the pub peer connection and waits for it to connect.
func (p *participant) openPub(ctx context.Context, seed int64) (*client.Publisher, error) {
	p.up.setLoss(uplinkImpairment(p.r.sc, uint64(seed)))
	pub, err := p.c.Publish(ctx)
	if err != nil {
		return nil, err
	}
	if err := pub.Connected(ctx); err != nil {
		return nil, err
	}
	return pub, nil
}

// startPacing starts the pacer on pub, which sends at most maxFrames
// frames of v, packetized by pk from its next packet on (frame 0).
func (p *participant) startPacing(pub *client.Publisher, v *voice, pk *opusgen.Packetizer, seed int64, maxFrames int) {
	seq0, ts0 := pk.Next()
	log := newFrameLog(p.c.ID(), p.room, ts0, seq0, maxFrames)
	p.r.addFrameLog(log)
	p.up.setLog(log)
	p.pub = newPublisher(pub, log, v, pk, pacerImpairment(p.r.sc, uint64(seed)))
	go p.pub.run()
}

// endWindow closes the participant's measurement window now; packets
// for frames sent later no longer count.
func (p *participant) endWindow() { p.own.end.CompareAndSwap(never, nanotime()) }

// close stops publishing, leaves (or, past ctx, drops) and waits for
// every goroutine the participant started. Then it lets go of the client:
// what the report needs (streams, frame log, counters) stays, the closed
// peer connections do not, or a soak's churn would pile them up.
func (p *participant) close(ctx context.Context) error {
	if p.c == nil {
		return nil
	}
	if p.pub != nil {
		p.pub.halt()
	}
	close(p.done)
	err := p.c.Leave(ctx)
	_ = p.c.Close()
	p.wg.Wait()
	p.c = nil
	if p.pub != nil {
		p.pub.pub = nil
	}
	if err != nil {
		return fmt.Errorf("%s leaving: %w", p.name, err)
	}
	return nil
}

// snapshotStreams returns the publishers' streams and the mix streams;
// call after close.
func (p *participant) snapshotStreams() ([]*streamStats, []*mixStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streams, p.mixes
}
