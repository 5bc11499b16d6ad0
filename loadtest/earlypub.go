package loadtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
)

// How a mic guest negotiates its pub connection (Scenario.MicPub).
const (
	// MicPubEarly: with its mic_request (the early pub, docs/protocol.md):
	// the connection is up when the host accepts, and sends Opus silence
	// until then, as a browser page does with its microphone track
	// disabled; the relay drops it.
	MicPubEarly = "early"
	// MicPubAfter: after role_changed to guest, as a version 1 client does.
	MicPubAfter = "after"
)

// earlyPub is a mic guest's pub connection negotiated while its request
// is pending.
type earlyPub struct {
	done chan struct{} // closed when pub and err are set
	pub  *client.Publisher
	pk   *opusgen.Packetizer // owned by the silence sender until it has returned
	err  error

	stopOnce sync.Once
	stop     chan struct{} // closed by halt: ends the silence
	silenced chan struct{} // closed when the silence sender has returned (or never started)
}

// startEarlyPub opens p's pub connection in the background and, once it
// is up, sends silence every 10 ms until live or halt.
func (p *participant) startEarlyPub(ctx context.Context, seed int64) (*earlyPub, error) {
	src, err := opusgen.NewSilentSource(1)
	if err != nil {
		return nil, fmt.Errorf("opus source: %w (is libopus-dev installed?)", err)
	}
	silence, err := src.NextFrame()
	if err != nil {
		return nil, fmt.Errorf("encode silence: %w", err)
	}
	e := &earlyPub{done: make(chan struct{}), stop: make(chan struct{}), silenced: make(chan struct{})}
	go func() {
		defer close(e.done)
		e.pub, e.err = p.openPub(ctx, seed)
		if e.err != nil {
			close(e.silenced)
			return
		}
		e.pk, _, _ = newPacketizer(uint32(seed))
		go e.sendSilence(silence)
	}()
	return e, nil
}

func (e *earlyPub) sendSilence(frame []byte) {
	defer close(e.silenced)
	tick := time.NewTicker(time.Duration(frameInterval))
	defer tick.Stop()
	for {
		_ = e.pub.WriteRTP(e.pk.Packet(frame))
		select {
		case <-tick.C:
		case <-e.stop:
			return
		}
	}
}

// live waits for the connection, ends the silence and hands over the
// connection and its packetizer (the voice continues its RTP stream).
func (e *earlyPub) live(ctx context.Context) (*client.Publisher, *opusgen.Packetizer, error) {
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("early pub: %w", ctx.Err())
	}
	if e.err != nil {
		return nil, nil, fmt.Errorf("early pub: %w", e.err)
	}
	e.halt()
	return e.pub, e.pk, nil
}

// halt ends the silence, once the connection attempt is over.
func (e *earlyPub) halt() {
	<-e.done
	e.stopOnce.Do(func() { close(e.stop) })
	<-e.silenced
}
