package sfu

import (
	"net/netip"

	"github.com/pion/webrtc/v4"
)

// Selected transports, the label of ICEConfig.Selected: how a
// participant's sub connection reaches the relay.
const (
	TransportUDP   = "udp"   // straight to the media UDP port
	TransportTCP   = "tcp"   // straight to the ICE-TCP port
	TransportRelay = "relay" // through a TURN server (the embedded one, or the client's own)
)

// watchSelected counts each candidate pair conn selects in
// cfg.ICE.Selected, by transport. Only the sub connection is counted:
// every participant has exactly one.
func (s *SFU) watchSelected(conn *webrtc.PeerConnection) {
	if s.cfg.ICE.Selected == nil {
		return
	}
	conn.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(s.countSelected)
}

// countSelected counts pair in cfg.ICE.Selected, if set.
func (s *SFU) countSelected(pair *webrtc.ICECandidatePair) {
	if s.cfg.ICE.Selected != nil {
		s.cfg.ICE.Selected.WithLabelValues(s.transportOf(pair)).Inc()
	}
}

// transportOf names a selected pair's path. The relay's own candidate is
// always a host one (UDP or TCP); the client's is a relay candidate when
// it goes through TURN, or, when its first check arrived before the
// candidate was signaled, a peer-reflexive one whose address is an
// allocation of the embedded TURN server (ICEConfig.Relayed).
func (s *SFU) transportOf(pair *webrtc.ICECandidatePair) string {
	if pair.Remote != nil {
		if pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
			return TransportRelay
		}
		if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil && s.cfg.ICE.Relayed != nil &&
			s.cfg.ICE.Relayed(netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)) {
			return TransportRelay
		}
	}
	if pair.Local != nil && pair.Local.Protocol == webrtc.ICEProtocolTCP {
		return TransportTCP
	}
	return TransportUDP
}
