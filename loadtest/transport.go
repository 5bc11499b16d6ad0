package loadtest

import (
	"fmt"
	"strings"

	"github.com/lianmai/relay/client"
	"github.com/pion/webrtc/v4"
)

// How the audience's peer connections reach the relay (Scenario.Transport,
// issue 15): the relay's CPU per forwarded packet and the added latency of
// each fallback path against plain UDP.
const (
	TransportUDP     = "udp"      // ICE over UDP to the media port (the default)
	TransportTCP     = "tcp"      // ICE-TCP only (the relay's -tcp port), as behind a UDP-blocking firewall
	TransportTURNUDP = "turn-udp" // relay candidates only, through the relay's TURN server over UDP
	TransportTURNTCP = "turn-tcp" // the same over TCP
	TransportTURNTLS = "turn-tls" // the same over TLS (turns:); the load generator must trust its certificate (-tls-ca)
)

// transports are the valid values of Scenario.Transport, in order.
var transports = []string{TransportUDP, TransportTCP, TransportTURNUDP, TransportTURNTCP, TransportTURNTLS}

// applyTransport makes cfg, an audience member's client, reach the relay
// over tr only. Publishers are left as they are (UDP, and with the relay's
// TURN on, its servers at the lowest priority): the figures are about
// the fan-out side.
func applyTransport(cfg *client.Config, tr string) {
	turnURLs := func(scheme, transport string) func(string) bool {
		return func(u string) bool {
			return strings.HasPrefix(u, scheme+":") && strings.HasSuffix(u, "?transport="+transport)
		}
	}
	switch tr {
	case TransportTCP:
		cfg.NetworkTypes = []webrtc.NetworkType{webrtc.NetworkTypeTCP4}
		cfg.IgnoreICEServers = true
	case TransportTURNUDP:
		cfg.ICETransportPolicy, cfg.ICEServerURLs = webrtc.ICETransportPolicyRelay, turnURLs("turn", "udp")
	case TransportTURNTCP:
		cfg.ICETransportPolicy, cfg.ICEServerURLs = webrtc.ICETransportPolicyRelay, turnURLs("turn", "tcp")
	case TransportTURNTLS:
		cfg.ICETransportPolicy, cfg.ICEServerURLs = webrtc.ICETransportPolicyRelay, turnURLs("turns", "tcp")
	}
}

// transportHint is what a relay must run for the audience to connect
// over tr, for the message of a failed probe join.
func transportHint(tr string) string {
	switch tr {
	case TransportTCP:
		return " With transport tcp the relay must listen for ICE-TCP (-tcp, on by default)."
	case TransportTURNUDP, TransportTURNTCP, TransportTURNTLS:
		return fmt.Sprintf(" With transport %s the relay must run its TURN server on %s (-turn with -turn-%s)%s.",
			tr, strings.TrimPrefix(tr, "turn-"), strings.TrimPrefix(tr, "turn-"),
			map[bool]string{true: ", and this load generator trust its certificate (-tls-ca)"}[tr == TransportTURNTLS])
	}
	return ""
}
