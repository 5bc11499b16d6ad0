package signaling

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request's limits are counted against: the
// peer's, or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not a trusted proxy (read right to left: each
// proxy appends the address it saw, and only trusted ones are believed).
// IPv6 addresses count by their /64: one host is handed a whole /64 and
// could otherwise open every connection from an address of its own.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		// net/http always sets host:port; a test's request may not.
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a forged or broken entry: stop at the last good one
			}
			addr = hop.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
