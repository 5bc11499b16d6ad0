package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// churnRoom makes one room's audience leave and rejoin at churn_per_min
// until ctx ends: every interval (exponentially distributed around the
// mean, as independent users would) a random audience member closes its
// window, leaves after the tail, and a new one joins in its place.
func (r *runner) churnRoom(ctx context.Context, room int) {
	rng := rand.New(rand.NewPCG(uint64(r.sc.Seed), uint64(room)+7))
	mean := time.Duration(float64(time.Minute) / r.sc.ChurnPerMin)
	for n := 1; ; n++ {
		wait := time.Duration(rng.ExpFloat64() * float64(mean))
		if err := sleepCtx(ctx, wait); err != nil {
			return
		}
		victim := r.pickAudience(room, rng)
		if victim == nil {
			continue
		}
		victim.endWindow()
		_ = sleepCtx(ctx, tail)
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := victim.close(lctx)
		cancel()
		r.up.Add(-1)
		r.mu.Lock()
		r.churn.Leaves++
		if err != nil {
			r.churn.LeaveErrors++
		}
		r.mu.Unlock()
		if err != nil {
			r.log.Debug("churn leave", "err", err)
		}

		release, err := r.admit(ctx)
		if err != nil {
			return
		}
		_, err = r.join(ctx, joinSpec{room: room, role: roleAudience, name: churnName(victim.name, n), listen: victim.listen, decode: victim.decode, node: victim.node})
		release()
		if err == nil {
			r.mu.Lock()
			r.churn.Rejoins++
			r.mu.Unlock()
		}
	}
}

// churnName names the n-th replacement in a room after the audience
// member it replaces: a11 → a11-c7 → a11-c19, never a11-c7-c19, so that a
// long soak's names stay within the relay's 64 characters.
func churnName(victim string, n int) string {
	base, _, _ := strings.Cut(victim, "-c")
	return fmt.Sprintf("%s-c%d", base, n)
}

// pickAudience removes a random audience member of room from the churn
// pool and claims it for closing; nil if there is none.
func (r *runner) pickAudience(room int, rng *rand.Rand) *participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.audience[room]
	for len(list) > 0 {
		i := rng.IntN(len(list))
		p := list[i]
		list[i] = list[len(list)-1]
		list = list[:len(list)-1]
		r.audience[room] = list
		if p.markClosing() {
			return p
		}
	}
	return nil
}
