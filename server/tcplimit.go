package server

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxTCPPerAddr is how many TCP media connections (ICE-TCP, TURN
// over TCP and TLS, together) one client address may hold open by
// default. A participant on TCP holds one per peer connection (two), or
// up to six through TURN (three URLs × two) for a moment while ICE picks;
// 64 lets about ten such participants share a NAT address at the worst
// moment and many more once settled, while one address can no longer take
// the relay's file descriptors (each connection is one).
const DefaultMaxTCPPerAddr = 64

// tcpLimit caps the TCP media connections per client address (IPv6 by
// /64, as signaling counts WebSockets), over every TCP media listener.
// A connection over the cap is closed as soon as it is accepted, before
// any byte is read, and counted.
type tcpLimit struct {
	max     int // ≤ 0: no cap
	refused *prometheus.CounterVec
	mu      sync.Mutex
	open    map[netip.Addr]int
}

func newTCPLimit(max int, reg prometheus.Registerer) (*tcpLimit, error) {
	l := &tcpLimit{max: max, open: make(map[netip.Addr]int), refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_tcp_refused_total",
		Help: "TCP media connections (ICE-TCP, TURN over TCP or TLS) closed at once because their address held -max-tcp-per-ip already, by listener.",
	}, []string{"listener"})}
	for _, name := range []string{"ice-tcp", "turn-tcp", "turn-tls"} {
		l.refused.WithLabelValues(name)
	}
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// addrKey is the address a connection counts against: its IP, or its /64
// for IPv6.
func addrKey(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip
}

// take counts a connection from key; false if key is at the cap.
func (l *tcpLimit) take(key netip.Addr) bool {
	if l == nil || l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	l.open[key]++
	return true
}

// give releases a connection taken for key.
func (l *tcpLimit) give(key netip.Addr) {
	if l == nil || l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}
