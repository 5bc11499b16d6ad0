package signaling

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Refusal reasons: the values of relay_connections_refused_total's reason
// label.
const (
	refusedPending      = "pending_per_address" // too many connections from one address that have not joined
	refusedJoinRate     = "join_rate"           // joins from one address faster than its rate and burst
	refusedJoined       = "joined_per_address"  // too many joined participants from one address
	refusedCapacity     = "connection_cap"      // the relay's connection cap (from its file descriptor limit)
	refusedNearCapacity = "near_capacity"       // a join while the relay is near its cap
)

var refusalReasons = []string{refusedPending, refusedJoinRate, refusedJoined, refusedCapacity, refusedNearCapacity}

// nearCapacity is the share of MaxConnections past which /readyz fails and
// joins are refused, so that a load balancer steers new clients elsewhere
// while the relay can still serve the ones it has.
const nearCapacity = 0.95

// sweepEvery bounds how often the limiter forgets idle addresses.
const sweepEvery = 10 * time.Second

// connLimiter counts connections per client address and in all, and the
// joins each address makes. Safe for concurrent use.
type connLimiter struct {
	cfg Config // the limits (negative: off)

	mu        sync.Mutex
	addrs     map[netip.Addr]*addrState // guarded by mu; an address with nothing open and a full bucket is swept
	conns     int                       // guarded by mu; open WebSockets
	lastSweep time.Time                 // guarded by mu
}

// addrState is one client address's count.
type addrState struct {
	pending int // open, not joined
	joined  int // open and joined
	// The join bucket: JoinBurstPerAddr at once, JoinRatePerAddr per
	// second after that.
	tokens float64
	last   time.Time
}

func newConnLimiter(cfg Config) *connLimiter {
	return &connLimiter{cfg: cfg, addrs: make(map[netip.Addr]*addrState)}
}

// refusal says why a connection or join was refused and what the client
// should do.
type refusal struct {
	reason     string
	message    string
	retryAfter time.Duration
}

// open admits a new WebSocket from addr, or says why not. Every admitted
// connection is closed with close.
func (l *connLimiter) open(addr netip.Addr, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max := l.cfg.MaxConnections; max > 0 && l.conns >= max {
		return &refusal{reason: refusedCapacity, retryAfter: 5 * time.Second,
			message: fmt.Sprintf("the relay has its limit of %d connections; connect to another relay or retry shortly", max)}
	}
	st := l.stateLocked(addr, now)
	if max := l.cfg.MaxPendingPerAddr; max > 0 && st.pending >= max {
		return &refusal{reason: refusedPending, retryAfter: l.cfg.JoinTimeout,
			message: fmt.Sprintf("%d connections from your address have not joined yet; join on one of them, or close them and retry", max)}
	}
	st.pending++
	l.conns++
	return nil
}

// join decides whether a connection from addr may join now: it checks the
// relay's load and the address's joined count, and takes a token from its
// join bucket. On success the connection counts as joined from now on, so
// that a join racing on another connection sees it; call unjoin if the
// join then fails.
func (l *connLimiter) join(addr netip.Addr, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max := l.cfg.MaxConnections; max > 0 && float64(l.conns) > nearCapacity*float64(max) {
		return &refusal{reason: refusedNearCapacity, retryAfter: 5 * time.Second,
			message: "the relay is near its connection limit and takes no new joins; connect to another relay or retry shortly"}
	}
	st := l.stateLocked(addr, now)
	if max := l.cfg.MaxJoinedPerAddr; max > 0 && st.joined >= max {
		return &refusal{reason: refusedJoined, retryAfter: time.Minute,
			message: fmt.Sprintf("%d participants from your address are in rooms already, the most one address may have", max)}
	}
	if rate := l.cfg.JoinRatePerAddr; rate > 0 {
		burst := float64(l.cfg.JoinBurstPerAddr)
		st.tokens = min(burst, st.tokens+now.Sub(st.last).Seconds()*rate)
		st.last = now
		if st.tokens < 1 {
			wait := time.Duration((1 - st.tokens) / rate * float64(time.Second))
			return &refusal{reason: refusedJoinRate, retryAfter: wait,
				message: fmt.Sprintf("too many joins from your address (at most %d at once, then %g a second); retry in %s", l.cfg.JoinBurstPerAddr, rate, wait.Round(100*time.Millisecond))}
		}
		st.tokens--
	}
	st.pending--
	st.joined++
	return nil
}

// unjoin moves one of addr's connections back from joined to pending: its
// join failed after join admitted it.
func (l *connLimiter) unjoin(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.addrs[addr]; st != nil {
		st.joined--
		st.pending++
	}
}

// close forgets a connection from addr that open admitted.
func (l *connLimiter) close(addr netip.Addr, wasJoined bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns--
	if st := l.addrs[addr]; st != nil {
		if wasJoined {
			st.joined--
		} else {
			st.pending--
		}
	}
}

// load is the open connections and the cap (0: none).
func (l *connLimiter) load() (conns, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, l.cfg.MaxConnections
}

// stateLocked is addr's state, made with a full join bucket if it has
// none; it sweeps idle addresses now and then so that the map holds only
// addresses with something open or a bucket still refilling.
func (l *connLimiter) stateLocked(addr netip.Addr, now time.Time) *addrState {
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.lastSweep = now
		for a, st := range l.addrs {
			if st.pending == 0 && st.joined == 0 && l.refilled(st, now) {
				delete(l.addrs, a)
			}
		}
	}
	st := l.addrs[addr]
	if st == nil {
		st = &addrState{tokens: float64(l.cfg.JoinBurstPerAddr), last: now}
		l.addrs[addr] = st
	}
	return st
}

// refilled reports whether st's join bucket would be full at now, so that
// forgetting it gives the address nothing it would not have anyway.
func (l *connLimiter) refilled(st *addrState, now time.Time) bool {
	rate := l.cfg.JoinRatePerAddr
	return rate <= 0 || st.tokens+now.Sub(st.last).Seconds()*rate >= float64(l.cfg.JoinBurstPerAddr)
}
