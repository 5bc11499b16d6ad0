package whip

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/lianmai/relay/signaling"
)

// addrLimits applies signaling's per-address join limits to WHIP and
// WHEP sessions: a join bucket (JoinBurstPerAddr at once, then
// JoinRatePerAddr a second) and at most MaxJoinedPerAddr open sessions
// per address. A session holds no connection of its own (its media is on
// the relay's one UDP port), so the WebSocket connection cap does not
// apply; the room layer's room, participant and seat limits do. Safe for
// concurrent use.
type addrLimits struct {
	rate   float64 // joins a second; 0: off
	burst  float64
	joined int // 0: off

	mu        sync.Mutex
	addrs     map[netip.Addr]*addrCount // guarded by mu; swept when idle
	lastSweep time.Time                 // guarded by mu
}

type addrCount struct {
	open   int
	tokens float64
	last   time.Time
}

// sweepEvery bounds how often idle addresses are forgotten.
const sweepEvery = 10 * time.Second

func newAddrLimits(cfg signaling.Config) *addrLimits {
	l := &addrLimits{addrs: make(map[netip.Addr]*addrCount)}
	// Zero takes signaling's default, negative turns a limit off, as for
	// the WebSocket.
	switch {
	case cfg.JoinRatePerAddr == 0:
		l.rate = signaling.DefaultJoinRatePerAddr
	case cfg.JoinRatePerAddr > 0:
		l.rate = cfg.JoinRatePerAddr
	}
	l.burst = signaling.DefaultJoinBurstPerAddr
	if cfg.JoinBurstPerAddr > 0 {
		l.burst = float64(cfg.JoinBurstPerAddr)
	}
	switch {
	case cfg.MaxJoinedPerAddr == 0:
		l.joined = signaling.DefaultMaxJoinedPerAddr
	case cfg.MaxJoinedPerAddr > 0:
		l.joined = cfg.MaxJoinedPerAddr
	}
	return l
}

// admit counts a new session from addr, or refuses it (429, with when to
// retry). Every admitted session is released once.
func (l *addrLimits) admit(addr netip.Addr, now time.Time) (*httpError, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	c := l.addrs[addr]
	if c == nil {
		c = &addrCount{tokens: l.burst, last: now}
		l.addrs[addr] = c
	}
	if l.joined > 0 && c.open >= l.joined {
		return fail(http.StatusTooManyRequests, fmt.Sprintf("%d participants from your address are in rooms already, the most one address may have", l.joined)), time.Minute
	}
	if l.rate > 0 {
		c.tokens = min(l.burst, c.tokens+now.Sub(c.last).Seconds()*l.rate)
		c.last = now
		if c.tokens < 1 {
			wait := time.Duration((1 - c.tokens) / l.rate * float64(time.Second))
			return fail(http.StatusTooManyRequests, fmt.Sprintf("too many sessions started from your address (at most %g at once, then %g a second); retry in %s", l.burst, l.rate, wait.Round(100*time.Millisecond))), wait
		}
		c.tokens--
	}
	c.open++
	return nil, 0
}

// release forgets one of addr's sessions.
func (l *addrLimits) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.addrs[addr]; c != nil && c.open > 0 {
		c.open--
	}
}

// sweepLocked forgets addresses with nothing open whose bucket has
// refilled.
func (l *addrLimits) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for a, c := range l.addrs {
		if c.open == 0 && (l.rate == 0 || c.tokens+now.Sub(c.last).Seconds()*l.rate >= l.burst) {
			delete(l.addrs, a)
		}
	}
}
