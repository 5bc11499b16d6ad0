package loadtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/protocol"
)

// micWait bounds each wait for the relay's answer in a mic cycle.
const micWait = 5 * time.Second

// micFrameSlack is how much longer than mic_hold a mic guest's frame log
// lasts (its pacer stops when the log is full).
const micFrameSlack = 10 * time.Second

// errMicUnsupported: the relay answered bad_request to mic_request.
var errMicUnsupported = errors.New("relay does not implement the mic workflow")

// micRoom cycles one audience member of room through the mic every
// mic_cycle_every until ctx ends: a fresh audience member joins, asks for
// the mic, the room's first host accepts, it publishes for mic_hold,
// releases the mic and leaves. A relay that answers bad_request to
// mic_request stops mic cycling for the run (reported as unsupported).
func (r *runner) micRoom(ctx context.Context, room int) {
	r.mu.Lock()
	var host *participant
	if len(r.hosts[room]) > 0 {
		host = r.hosts[room][0]
	}
	r.mu.Unlock()
	if host == nil {
		r.micFail(fmt.Errorf("room %d: no host joined to accept mic requests", room))
		return
	}
	hostDone := make(chan struct{})
	go func() { defer close(hostDone); r.acceptMicRequests(ctx, host) }()
	defer func() { <-hostDone }()

	for n := 1; ; n++ {
		if err := sleepCtx(ctx, r.sc.MicCycleEvery.D()); err != nil || r.micUnsupported() {
			return
		}
		release, err := r.admit(ctx)
		if err != nil {
			return
		}
		// Tracks, not the mix: it is about to publish, and publishers hear tracks.
		p, err := r.join(ctx, joinSpec{room: room, role: roleAudience, name: fmt.Sprintf("m%d", n), listen: ListenTracks})
		release()
		if err != nil {
			continue
		}
		p.markClosing() // the cycle closes it, not churn
		if err := r.micCycle(ctx, p, room, n); err != nil && ctx.Err() == nil {
			r.micFail(err)
		}
		p.endWindow()
		_ = sleepCtx(ctx, tail)
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = p.close(lctx)
		cancel()
		r.up.Add(-1)
	}
}

// micCycle takes p through one request, grant, publish and release.
func (r *runner) micCycle(ctx context.Context, p *participant, room, n int) error {
	r.mu.Lock()
	r.mic.Attempts++
	r.mu.Unlock()
	id := fmt.Sprintf("mic-%d-%d", room, n)
	seed := r.sc.Seed*1000 + int64(500+room*100+n)
	// The voice is encoded before the request: its encoding (about 28 ms
	// here) is the load generator's cost, not the path measured.
	v, err := p.encodeVoice(seed)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.sc.JoinTimeout.D())
	var early *earlyPub
	defer func() {
		cancel()
		if early != nil {
			early.halt()
		}
	}()
	t0 := nanotime()
	if err := p.c.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicRequest, ID: id}}); err != nil {
		return fmt.Errorf("%s mic_request: %w", p.name, err)
	}
	if r.sc.MicPub == MicPubEarly {
		if early, err = p.startEarlyPub(pctx, seed); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if err := r.awaitRole(ctx, p, id, roleGuest); err != nil {
		return fmt.Errorf("%s mic_request: %w", p.name, err)
	}
	granted := nanotime()
	// A mic guest's frame log covers its hold and some slack, not the
	// whole run: a long soak cycles hundreds of guests.
	maxFrames := int((r.sc.MicHold.D() + micFrameSlack) / time.Duration(frameInterval))
	var pub *client.Publisher
	var pk *opusgen.Packetizer
	if early != nil {
		pub, pk, err = early.live(pctx)
	} else if pub, err = p.openPub(pctx, seed); err == nil {
		pk, _, _ = newPacketizer(uint32(seed))
	}
	if err != nil {
		return fmt.Errorf("%s publishing as guest: %w", p.name, err)
	}
	p.startPacing(pub, v, pk, seed, maxFrames)
	r.mu.Lock()
	r.mic.Granted++
	r.micGrant = append(r.micGrant, float64(granted-t0)/1e6)
	r.mu.Unlock()

	_ = sleepCtx(ctx, r.sc.MicHold.D())
	p.pub.halt()
	// Stop the microphone, then release it a moment later, as a client
	// that wants its last words heard does: the relay ends the track the
	// moment it handles mic_release, and on loopback it may read the
	// release before the last packet, which sits in its UDP socket at the
	// same time (docs/protocol.md, mic_release).
	_ = sleepCtx(ctx, tail)
	// On the mic to the host's first packet of it: the guest's pub
	// connection (offer, answer, ICE, DTLS), the relay announcing the track
	// and renegotiating the host's sub connection, and forwarding.
	first, heard := p.pub.log.first.Load(), p.pub.log.hostHeard.Load()
	r.mu.Lock()
	if first != 0 {
		r.micPublish = append(r.micPublish, float64(first-granted)/1e6)
	}
	if heard != 0 {
		r.micHeard = append(r.micHeard, float64(heard-granted)/1e6)
	}
	r.mu.Unlock()
	if heard == 0 && ctx.Err() == nil {
		r.micFail(fmt.Errorf("%s: no host of room %d heard it during its %s on the mic", p.name, room, r.sc.MicHold.D()))
	}
	t1 := nanotime()
	relID := id + "-release"
	if err := p.c.Send(&protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicRelease, ID: relID}}); err != nil {
		return fmt.Errorf("%s mic_release: %w", p.name, err)
	}
	if err := r.awaitRole(ctx, p, relID, roleAudience); err != nil {
		return fmt.Errorf("%s mic_release: %w", p.name, err)
	}
	r.mu.Lock()
	r.mic.Released++
	r.micRel = append(r.micRel, float64(nanotime()-t1)/1e6)
	r.mu.Unlock()
	return nil
}

// awaitRole waits for role_changed to role for p, or the error the
// message id caused.
func (r *runner) awaitRole(ctx context.Context, p *participant, id, role string) error {
	ctx, cancel := context.WithTimeout(ctx, micWait)
	defer cancel()
	for {
		select {
		case ev := <-p.c.Events():
			switch m := ev.(type) {
			case *protocol.RoleChanged:
				if m.Participant == p.c.ID() && m.Role == role {
					return nil
				}
			case *protocol.Error:
				if m.ID != id && m.ID != "" {
					continue
				}
				if m.Code == protocol.CodeBadRequest {
					r.markMicUnsupported(m.Message)
					return fmt.Errorf("%w: bad_request: %s", errMicUnsupported, m.Message)
				}
				return fmt.Errorf("relay error %s: %s", m.Code, m.Message)
			case *protocol.MicRejected:
				if m.Participant == "" || m.Participant == p.c.ID() {
					return fmt.Errorf("mic_rejected (reason %q)", m.Reason)
				}
			case map[string]any: // a client that predates the typed message
				if m["type"] == protocol.TypeMicRejected {
					return fmt.Errorf("mic_rejected (reason %v)", m["reason"])
				}
			}
		case <-p.c.Done():
			return errors.New("the relay closed the connection")
		case <-ctx.Done():
			return fmt.Errorf("no role_changed to %s within %s", role, micWait)
		}
	}
}

// acceptMicRequests is the host's side: it accepts every mic_requested.
func (r *runner) acceptMicRequests(ctx context.Context, host *participant) {
	for {
		select {
		case ev := <-host.c.Events():
			var who string
			switch m := ev.(type) {
			case *protocol.MicRequested:
				who = m.Participant
			case map[string]any: // a client that predates the typed message
				if m["type"] == protocol.TypeMicRequested {
					who, _ = m["participant"].(string)
				}
			case *protocol.Error:
				if !r.micUnsupported() {
					r.micFail(fmt.Errorf("host %s: relay error %s: %s", host.name, m.Code, m.Message))
				}
			}
			if who == "" {
				continue
			}
			msg := &protocol.Targeted{Header: protocol.Header{Type: protocol.TypeMicAccept, ID: "accept-" + who}, Participant: who}
			c := host.c // host.c is cleared when the host closes
			accept := func() {
				if ctx.Err() != nil {
					return
				}
				if err := c.Send(msg); err != nil {
					r.micFail(fmt.Errorf("host %s mic_accept: %w", host.name, err))
				}
			}
			if d := r.sc.MicAcceptDelay.D(); d > 0 {
				// A host takes a moment to decide; the early pub uses it.
				time.AfterFunc(d, accept)
			} else {
				accept()
			}
		case <-host.c.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}

func (r *runner) micFail(err error) {
	r.log.Warn("mic cycle failed", "err", err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mic.Failures) < maxListed {
		r.mic.Failures = append(r.mic.Failures, err.Error())
	}
}

func (r *runner) micUnsupported() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mic.Unsupported
}

func (r *runner) markMicUnsupported(msg string) {
	r.mu.Lock()
	first := !r.mic.Unsupported
	r.mic.Unsupported = true
	r.mu.Unlock()
	if first {
		r.warn("mic cycling skipped: the relay answered mic_request with bad_request (%q); it does not implement the mic workflow yet", msg)
	}
}
