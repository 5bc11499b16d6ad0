package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/lianmai/relay/dtlskeys"
	"github.com/lianmai/relay/media"
	"github.com/pion/webrtc/v4"
)

// Direct ingest on pub connections (media/directingest.go): once pion has set
// up a published track (its OnTrack ran, which needs the first packets),
// the relay registers the connection's remote address, the publisher's
// SRTP keys and the track's SSRC with the media port's readers, which
// from then on decrypt and forward that track's packets themselves. The
// keys come from pion's DTLS hooks (dtlskeys), which need the relay to be
// the DTLS server: pub connections answer with setup:passive when direct
// ingest is on (browsers and pion clients offer actpass and accept it).
// Whatever does not fit (no keys, a TCP or relayed pair, an address
// taken) keeps pion's path. When the selected candidate pair changes (an
// ICE restart, a network change) the registration moves to the new
// remote address with its SRTP context (pion's own has not followed the
// stream since); a pair that does not fit returns the connection to
// pion's path for good.

// newPubAPI is the pion API of one pub connection with direct ingest: the
// pub API's settings, with the hooks of a capture of its own (a
// SettingEngine's hooks are per API) and the relay as the DTLS server.
func (a apis) newPubAPI() (*webrtc.API, *dtlskeys.Capture, error) {
	capture := &dtlskeys.Capture{}
	se := a.pubSE
	se.SetDTLSKeyLogWriter(capture)
	se.SetDTLSServerHelloMessageHook(capture.ServerHelloHook)
	// The answerer's role: pion's default answer is setup:active (the
	// DTLS client), where no server hello hook runs.
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, nil, fmt.Errorf("answer pub as the DTLS server: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(a.me), webrtc.WithInterceptorRegistry(a.pubIR), webrtc.WithSettingEngine(se)), capture, nil
}

// pubDirect is one pub connection's direct ingest. Its methods are safe
// for concurrent use (each track's OnTrack goroutine registers).
type pubDirect struct {
	d    *media.Direct
	pc   *webrtc.PeerConnection
	keys *dtlskeys.Capture
	log  *slog.Logger

	mu     sync.Mutex
	dc     *media.DirectConn // nil until a track registers, and after the last leaves
	tracks int               // tracks registered on dc
	off    bool              // pion's path for good: keys or pair unusable
	hooked bool              // the pair-change handler is set
}

// add registers t (stream ssrc) for direct ingest if the connection
// allows it, and returns what undoes it (call it after t's ReadLoop
// returned). On pion's path it does nothing.
func (pd *pubDirect) add(ssrc uint32, t *media.UpTrack) (remove func()) {
	noop := func() {}
	if pd == nil {
		return noop
	}
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.off {
		return noop
	}
	if pd.dc == nil {
		dc, err := pd.open()
		if err != nil {
			pd.off = true
			pd.log.Debug("direct ingest off for this pub connection; pion reads it", "err", err)
			return noop
		}
		pd.dc = dc
	}
	dc := pd.dc
	dc.AddTrack(ssrc, t)
	pd.tracks++
	return func() {
		dc.RemoveTrack(t)
		pd.mu.Lock()
		defer pd.mu.Unlock()
		if pd.dc != dc {
			return // closed meanwhile (the pair changed)
		}
		if pd.tracks--; pd.tracks == 0 {
			dc.Close()
			pd.dc = nil
		}
	}
}

// open registers the connection with the media port. pd.mu is held.
func (pd *pubDirect) open() (*media.DirectConn, error) {
	keys, err := pd.keys.Keys()
	if err != nil {
		return nil, err
	}
	ice := pd.pc.SCTP().Transport().ICETransport()
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, fmt.Errorf("no selected candidate pair: %v", err)
	}
	remote, err := directRemote(pair)
	if err != nil {
		return nil, err
	}
	if !pd.hooked {
		pd.hooked = true
		ice.OnSelectedCandidatePairChange(pd.pairChanged)
	}
	cryptex, err := acceptsCryptex(pd.pc.CurrentLocalDescription())
	if err != nil {
		return nil, err
	}
	return pd.d.Open(remote, keys.ServerSide(), keys.Profile, cryptex)
}

// directRemote is the remote address of pair, if its packets reach the
// media port's readers: UDP, on a host candidate of the relay's.
func directRemote(pair *webrtc.ICECandidatePair) (netip.AddrPort, error) {
	if pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ != webrtc.ICECandidateTypeHost {
		return netip.AddrPort{}, fmt.Errorf("the selected pair is %s %s, not UDP on the media port", pair.Local.Protocol, pair.Local.Typ)
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("remote candidate address %q: %w", pair.Remote.Address, err)
	}
	return netip.AddrPortFrom(ip, pair.Remote.Port), nil
}

// acceptsCryptex reports whether the relay's description declares that it
// receives RFC 9335 encrypted header extensions (a=cryptex at the session
// level or on its media sections), as pion decides for its own SRTP
// session: a publisher that negotiated it encrypts its audio level
// extension so.
func acceptsCryptex(local *webrtc.SessionDescription) (bool, error) {
	if local == nil {
		return false, errors.New("no local description")
	}
	sd, err := local.Unmarshal()
	if err != nil {
		return false, fmt.Errorf("parse the local description: %w", err)
	}
	if _, ok := sd.Attribute("cryptex"); ok {
		return true, nil
	}
	for _, m := range sd.MediaDescriptions {
		if _, ok := m.Attribute("cryptex"); ok {
			return true, nil
		}
	}
	return false, nil
}

// pairChanged follows the connection's new selected pair: the
// registration moves to its remote address, or, if the pair does not fit
// (or the address is taken), the connection goes back to pion's path for
// good.
func (pd *pubDirect) pairChanged(pair *webrtc.ICECandidatePair) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.dc == nil {
		return // nothing registered: the next track's open reads the new pair
	}
	err := errors.New("no selected pair")
	if pair != nil {
		var remote netip.AddrPort
		if remote, err = directRemote(pair); err == nil {
			err = pd.dc.Move(remote)
		}
	}
	if err != nil {
		pd.log.Debug("direct ingest off after a change of the selected pair; pion reads the connection", "err", err)
		pd.off = true
		pd.dc.Close()
		pd.dc = nil
	}
}
