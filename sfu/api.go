package sfu

import (
	"fmt"
	"net"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// ReportInterval is how often the relay sends a publisher a receiver
// report: pion's receiver-report interceptor's default, RFC 3550's
// minimum of 5 s cut as WebRTC implementations do.
const ReportInterval = time.Second

// NACKInterval is how often the relay asks a publisher for the packets its
// stream is missing, while it misses any. pion's default, 100 ms, brings most repairs back after
// a listener's ~40 ms playout deadline, too late to play (measured with
// the load generator's loss5 scenario: docs/reliability.md).
const NACKInterval = 20 * time.Millisecond

// ICE consent timing (see newAPI).
const (
	iceDisconnectedTimeout = 5 * time.Second // no packet for this long: disconnected
	iceFailedTimeout       = 5 * time.Second // then this much more: failed
	iceKeepaliveInterval   = 2 * time.Second
)

// srtpProfiles are the SRTP protection profiles the relay offers in DTLS,
// most preferred first. Where the relay is the DTLS server (on sub, which
// it offers), its order decides. AES-128-GCM first: one AES-CTR pass and
// GHASH with AES-NI and CLMUL, against AES-CTR plus HMAC-SHA1 for
// AES-CM, and 10 AES rounds against 14 for AES-256-GCM
// (BenchmarkSRTPEncrypt). AES-CM stays for clients without GCM.
var srtpProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_128_GCM,
	dtls.SRTP_AEAD_AES_256_GCM,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

// apis are the pion APIs of the relay's pub and sub connections: the same
// codecs and settings, different interceptors; and of a cluster edge's
// links (edgeroom.go), which receive as pub does but on a UDP port of
// their own each.
type apis struct {
	pub, sub, link *webrtc.API
	// direct, if not nil, makes the sub connections the relay offers
	// (direct.go): a pion API per connection from these.
	direct *directAPI
	// What pub is made of, for a pub connection with direct ingest,
	// which needs an API of its own (directingest.go).
	me    *webrtc.MediaEngine
	pubIR *interceptor.Registry
	pubSE webrtc.SettingEngine
}

// directAPI is what newDirectSub makes a sub connection's API from: the
// sub settings (copied per connection) and codecs, and no interceptor.
type directAPI struct {
	se       webrtc.SettingEngine
	me       *webrtc.MediaEngine
	batch    *media.Batch    // the relay's UDP port; nil: pion's send path, relay-made reports
	reports  *media.Reporter // the relay's sender-report loop; closed by SFU.Close
	takeover bool            // direct sub connections are taken over once up (takeover.go)
}

// newAPI builds the pion APIs every peer connection of the relay uses;
// with direct, offered sub connections take the direct send path.
func newAPI(cfg ICEConfig, direct bool) (apis, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(media.Opus, webrtc.RTPCodecTypeAudio); err != nil {
		return apis{}, fmt.Errorf("register opus: %w", err)
	}
	// RFC 6464 audio levels from publishers, for the speakers event. Only
	// where the relay receives: forwarded packets carry no extensions.
	err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionRecvonly)
	if err != nil {
		return apis{}, fmt.Errorf("register audio level extension: %w", err)
	}

	// Interceptors, each connection only those it needs (every interceptor
	// runs a ticker goroutine per connection): on sub, sender reports; on
	// pub none: the relay makes its NACKs and receiver reports toward
	// publishers itself, from the sequence numbers its tracks' readers see
	// and one relay-wide loop (media.Feedback). A cluster edge's link
	// keeps pion's NACK generator and receiver reports (few connections,
	// and its tracks are fed by cluster code that does not register with
	// the relay's feedback). NACKs from subscribers are served by the
	// relay's own per-track history (media's history), not by pion's
	// per-sender responder, which would copy every packet once per
	// subscriber.
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorInterval(NACKInterval))
	if err != nil {
		return apis{}, fmt.Errorf("nack generator: %w", err)
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return apis{}, fmt.Errorf("receiver reports: %w", err)
	}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return apis{}, fmt.Errorf("sender reports: %w", err)
	}
	pubIR, linkIR, subIR := &interceptor.Registry{}, &interceptor.Registry{}, &interceptor.Registry{}
	linkIR.Add(gen)
	linkIR.Add(rr)
	subIR.Add(sr)

	se := webrtc.SettingEngine{}
	se.LoggerFactory = newSharedPionLoggers()
	// A peer that vanishes without a word is noticed in about 10 s (pion's
	// default is 30 s), which starts its grace period (resume.go). ICE
	// stays usable after failing: a resume restarts it.
	se.SetICETimeouts(iceDisconnectedTimeout, iceFailedTimeout, iceKeepaliveInterval)
	se.SetSRTPProtectionProfiles(srtpProfiles...)
	if cfg.UDPMux != nil {
		se.SetICEUDPMux(cfg.UDPMux)
	}
	if cfg.TCPMux != nil {
		se.SetICETCPMux(cfg.TCPMux)
	}
	// The relay only listens: it never dials a client's TCP candidates
	// (a client behind a firewall that blocks UDP accepts no connection
	// either, and a relay that dials out could be aimed at anything).
	se.DisableActiveTCP(true)
	// One view of the network interfaces for every connection, read here
	// once: without it each ICE agent lists the interfaces over netlink
	// when it is made, about a tenth of the relay's CPU in a burst of
	// joins (docs/performance.md, "100 concurrent joins").
	ifaces, err := stdnet.NewNet()
	if err != nil {
		return apis{}, fmt.Errorf("listing network interfaces: %w", err)
	}
	se.SetNet(ifaces)
	// A client's candidates make the relay send ICE checks to the addresses
	// they name: refuse those that are never a peer, so that a client
	// cannot aim them at the relay's own machine or a multicast group.
	se.SetRemoteIPFilter(func(ip net.IP) bool { return remoteAllowed(ip, cfg.Loopback) })
	if cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes(networkTypes(cfg, webrtc.NetworkTypeUDP4))
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	} else {
		se.SetNetworkTypes(networkTypes(cfg, webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6))
	}
	if len(cfg.AnnounceIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.AnnounceIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
		})
		if err != nil {
			return apis{}, fmt.Errorf("announce IPs %v: %w", cfg.AnnounceIPs, err)
		}
	}
	// A link's edge end gathers on a port of its own, not the media port:
	// two links between the same two relays (two rooms) would otherwise
	// share one address pair, which the owner's UDP mux cannot tell apart.
	linkSE := se
	linkSE.SetICEUDPMux(nil)
	linkSE.SetICETCPMux(nil)
	if cfg.Loopback {
		linkSE.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		linkSE.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	var d *directAPI
	if direct {
		d = &directAPI{se: se, me: me, batch: media.BatchOf(cfg.UDPMux), reports: media.NewReporter()}
	}
	return apis{
		direct: d,
		link:   webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(linkIR), webrtc.WithSettingEngine(linkSE)),
		pub:    webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(pubIR), webrtc.WithSettingEngine(se)),
		sub:    webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(subIR), webrtc.WithSettingEngine(se)),
		me:     me,
		pubIR:  pubIR,
		pubSE:  se,
	}, nil
}

// networkTypes are udp plus, with a TCP mux, their TCP counterparts.
func networkTypes(cfg ICEConfig, udp ...webrtc.NetworkType) []webrtc.NetworkType {
	types := udp
	if cfg.TCPMux == nil {
		return types
	}
	for _, t := range udp {
		switch t {
		case webrtc.NetworkTypeUDP4:
			types = append(types, webrtc.NetworkTypeTCP4)
		case webrtc.NetworkTypeUDP6:
			types = append(types, webrtc.NetworkTypeTCP6)
		}
	}
	return types
}

// remoteAllowed reports whether a client's ICE candidate address may be
// checked: with loopback only loopback addresses, else any unicast address
// but loopback, link-local and unspecified ones. Private ranges stay:
// clients on the relay's LAN use them.
func remoteAllowed(ip net.IP, loopback bool) bool {
	if loopback {
		return ip.IsLoopback()
	}
	return !ip.IsLoopback() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		!ip.IsLinkLocalUnicast() && !ip.Equal(net.IPv4bcast)
}
