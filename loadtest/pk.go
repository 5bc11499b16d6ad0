package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/protocol"
)

// pkWait bounds each step of linking two rooms: the invitation reaching
// the other host, and the first packet of each room at the other's host.
const pkWait = 10 * time.Second

// linkRooms links the rooms in pairs (scenario pk), all pairs at once,
// and waits for each link's first packets. A pair that fails is reported
// and left unlinked; the run goes on.
func (r *runner) linkRooms(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i+1 < r.sc.Rooms; i += 2 {
		wg.Go(func() {
			if err := r.link(ctx, i, i+1); err != nil && ctx.Err() == nil {
				r.pkFail(err)
			}
		})
	}
	wg.Wait()
}

// link has the first host of room a invite room b, and the first host of
// b accept; the set-up time is from pk_accept to each host's first packet
// of the other room's first host.
func (r *runner) link(ctx context.Context, a, b int) error {
	r.mu.Lock()
	var ha, hb *participant
	if len(r.hosts[a]) > 0 && len(r.hosts[b]) > 0 {
		ha, hb = r.hosts[a][0], r.hosts[b][0]
	}
	r.mu.Unlock()
	if ha == nil || hb == nil {
		return fmt.Errorf("rooms %d and %d: a room has no host joined to link them", a, b)
	}
	ctx, cancel := context.WithTimeout(ctx, pkWait)
	defer cancel()
	if err := ha.c.PKInvite(ctx, r.roomName(b)); err != nil {
		return fmt.Errorf("room %d invites room %d: %w", a, b, err)
	}
	if err := awaitInvited(ctx, hb, r.roomName(a)); err != nil {
		return fmt.Errorf("room %d's host: %w", b, err)
	}
	accepted := nanotime()
	if err := hb.c.PKAccept(ctx, r.roomName(a)); err != nil {
		return fmt.Errorf("room %d accepts room %d: %w", b, a, err)
	}
	// Each host hears the other room's first host: that host's frame log
	// records when a host of another room first read its packets.
	for _, heard := range []struct {
		by, of *participant
	}{{ha, hb}, {hb, ha}} {
		ns, err := firstSet(ctx, &heard.of.pub.log.remoteHeard)
		if err != nil {
			return fmt.Errorf("room %d's host heard nothing of room %d's host within %s of pk_accept", heard.by.room, heard.of.room, pkWait)
		}
		r.mu.Lock()
		r.pkSetup = append(r.pkSetup, float64(ns-accepted)/1e6)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.pk.Links++
	r.mu.Unlock()
	return nil
}

// awaitInvited reads h's events until pk_invited from room.
func awaitInvited(ctx context.Context, h *participant, room string) error {
	for {
		select {
		case ev := <-h.c.Events():
			if m, ok := ev.(*protocol.PKInvited); ok && m.Room == room {
				return nil
			}
		case <-h.c.Done():
			return errors.New("the relay closed the connection")
		case <-ctx.Done():
			return fmt.Errorf("no pk_invited from %s: %w", room, ctx.Err())
		}
	}
}

// firstSet polls v until it is set (a reader stores the arrival time of a
// first packet there) or ctx ends.
func firstSet(ctx context.Context, v *atomic.Int64) (int64, error) {
	for {
		if ns := v.Load(); ns != 0 {
			return ns, nil
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func (r *runner) pkFail(err error) {
	r.log.Warn("pk link failed", "err", err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pk.Failures) < maxListed {
		r.pk.Failures = append(r.pk.Failures, err.Error())
	}
}
