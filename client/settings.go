package client

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// opusPayloadType is the payload type the client registers Opus under, the
// one browsers use.
const opusPayloadType = 111

// opusCapability is the Opus codec as the client registers and publishes
// it: 48 kHz stereo, 10 ms frames allowed, in-band FEC, and NACK feedback
// unless disabled.
func opusCapability(withNACK bool) webrtc.RTPCodecCapability {
	var fb []webrtc.RTCPFeedback
	if withNACK {
		fb = []webrtc.RTCPFeedback{{Type: "nack"}}
	}
	return webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeOpus,
		ClockRate:    48000,
		Channels:     2,
		SDPFmtpLine:  "minptime=10;useinbandfec=1",
		RTCPFeedback: fb,
	}
}

// newAPI builds the pion API for one peer connection. forSub adds
// cfg.ReceiveInterceptor first in the chain, so that it sits between the
// network and the NACK generator and receiver reports: packets it drops
// look lost to them. It also turns off SRTP replay protection then, which
// would otherwise refuse the retransmission of a packet SRTP already saw.
// For pub it adds cfg.SendInterceptor first: pion's chain wraps the
// writer in registration order, so the first interceptor writes straight
// to SRTP and the wire, after the NACK responder has stored the packet.
func newAPI(cfg *Config, knet *killNet, log *slog.Logger, forSub bool, servers []protocol.ICEServer) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: opusCapability(!cfg.DisableNACK),
		PayloadType:        opusPayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	// Offered so that a relay measuring speakers can negotiate it; see
	// Publisher.AudioLevelExtensionID.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register audio level extension: %w", err)
	}

	reg := &interceptor.Registry{}
	if forSub && cfg.ReceiveInterceptor != nil {
		reg.Add(cfg.ReceiveInterceptor)
	}
	if !forSub && cfg.SendInterceptor != nil {
		reg.Add(cfg.SendInterceptor)
	}
	if !cfg.DisableNACK {
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, fmt.Errorf("nack generator: %w", err)
		}
		resp, err := nack.NewResponderInterceptor()
		if err != nil {
			return nil, fmt.Errorf("nack responder: %w", err)
		}
		reg.Add(resp)
		reg.Add(gen)
	}
	if !cfg.NoRTCPReports {
		if err := webrtc.ConfigureRTCPReports(reg); err != nil {
			return nil, fmt.Errorf("rtcp reports: %w", err)
		}
	}

	se := webrtc.SettingEngine{}
	se.SetNet(knet)
	if forSub && cfg.ReceiveInterceptor != nil {
		// A packet the interceptor drops has already passed SRTP, so its
		// retransmission (same SSRC and sequence number) would be refused
		// as a replay and the simulated loss could never be repaired.
		se.DisableSRTPReplayProtection(true)
	}
	se.LoggerFactory = pionLoggerFactory{log: log}
	if cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if len(cfg.NetworkTypes) > 0 {
		se.SetNetworkTypes(cfg.NetworkTypes)
	}
	if cfg.TLSConfig != nil && !cfg.IgnoreICEServers {
		se.SetICEProxyDialer(newTURNDialer(cfg.TLSConfig, servers))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

var errNetKilled = errors.New("client: network dropped")

// killNet is the network pion's ICE agents use. It remembers every UDP
// socket they open so that Drop can close them all before the peer
// connections are closed: then nothing (no DTLS close_notify, no SCTP
// abort) reaches the relay, as when a peer vanishes.
type killNet struct {
	transport.Net

	onUDP func(*net.UDPConn) error // Config.OnUDPSocket, nil if not set

	mu     sync.Mutex
	killed bool
	conns  []io.Closer // every socket opened, closed or not; closing twice is harmless
}

func newKillNet(onUDP func(*net.UDPConn) error) (*killNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("network interfaces: %w", err)
	}
	return &killNet{Net: n, onUDP: onUDP}, nil
}

func (n *killNet) track(c io.Closer) error {
	if u, ok := c.(*net.UDPConn); ok && n.onUDP != nil {
		if err := n.onUDP(u); err != nil {
			_ = c.Close()
			return fmt.Errorf("client: preparing a UDP socket (Config.OnUDPSocket): %w", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.killed {
		_ = c.Close()
		return errNetKilled
	}
	n.conns = append(n.conns, c)
	return nil
}

func (n *killNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return c, n.track(c)
}

func (n *killNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return c, n.track(c)
}

func (n *killNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.DialUDP(network, laddr, raddr)
	if err != nil {
		return nil, err
	}
	return c, n.track(c)
}

// kill closes every socket and refuses new ones.
func (n *killNet) kill() {
	n.mu.Lock()
	n.killed = true
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
