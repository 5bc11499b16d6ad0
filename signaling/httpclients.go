package signaling

import (
	"net/http"
	"net/netip"
)

// The relay's other HTTP clients (WHIP and WHEP, package whip) follow the
// same origin and client-address rules as the WebSocket.

// OriginChecker returns the check /ws applies to a browser page's Origin
// (see originChecker) for the given allowed origins.
func OriginChecker(origins []string) func(*http.Request) bool {
	return newOriginChecker(origins).check
}

// ClientAddr is the address a request's per-address limits count against
// (see clientAddr).
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	return clientAddr(r, trusted)
}
