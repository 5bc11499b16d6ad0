package sfu

import (
	"net/netip"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestTransportOf(t *testing.T) {
	relayed := netip.MustParseAddrPort("10.0.0.5:40000")
	s := &SFU{cfg: Config{ICE: ICEConfig{Relayed: func(a netip.AddrPort) bool { return a == relayed }}}}
	host := func(p webrtc.ICEProtocol) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Typ: webrtc.ICECandidateTypeHost, Protocol: p, Address: "10.0.0.5", Port: 50000}
	}
	remote := func(typ webrtc.ICECandidateType, addr string, port uint16) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Typ: typ, Protocol: webrtc.ICEProtocolUDP, Address: addr, Port: port}
	}
	for _, tt := range []struct {
		name          string
		local, remote *webrtc.ICECandidate
		want          string
	}{
		{"udp host", host(webrtc.ICEProtocolUDP), remote(webrtc.ICECandidateTypeHost, "192.0.2.7", 5000), TransportUDP},
		{"udp srflx", host(webrtc.ICEProtocolUDP), remote(webrtc.ICECandidateTypeSrflx, "192.0.2.7", 5000), TransportUDP},
		{"ice-tcp", host(webrtc.ICEProtocolTCP), remote(webrtc.ICECandidateTypePrflx, "192.0.2.7", 5000), TransportTCP},
		{"turn candidate", host(webrtc.ICEProtocolUDP), remote(webrtc.ICECandidateTypeRelay, "198.51.100.1", 6000), TransportRelay},
		{"embedded turn seen as prflx", host(webrtc.ICEProtocolUDP), remote(webrtc.ICECandidateTypePrflx, "10.0.0.5", 40000), TransportRelay},
		{"prflx elsewhere", host(webrtc.ICEProtocolUDP), remote(webrtc.ICECandidateTypePrflx, "10.0.0.5", 40001), TransportUDP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.transportOf(webrtc.NewICECandidatePair(tt.local, tt.remote)); got != tt.want {
				t.Errorf("transportOf = %q, want %q", got, tt.want)
			}
		})
	}
}
