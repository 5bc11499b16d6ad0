package sfu

import (
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/dtlskeys"
	"github.com/lianmai/relay/media"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// The direct send path of a sub connection the relay offers (media's
// direct.go, issue 19): each such connection gets a pion API of its own,
// a copy of the sub settings whose DTLS hooks feed one dtlskeys.Capture,
// and no interceptor (the relay makes the sender reports: media's
// reports.go). Once DTLS is up its SRTP keys go to the connection's
// media.SubConn, and each selected candidate pair tells it whether the
// datagrams can go straight into the relay's send batch. Where the relay
// is the DTLS client, or the pair is TCP or TURN, pion's path carries the
// packets as before. With Config.DisableDirectSend every sub connection
// is made as before (apis.sub, pion's sender-report interceptor).

// The paths of relay_sub_send_path_total.
const (
	pathDirect = "direct"
	pathPion   = "pion"
)

// newOfferedSub makes a sub connection the relay offers: with the direct
// path, or (DisableDirectSend) as before, with a nil SubConn.
func (p *Participant) newOfferedSub(gate *candidateGate) (*webrtc.PeerConnection, *media.SubConn, error) {
	if p.sfu.api.direct == nil {
		conn, err := p.newPeerConnection(Sub, gate, nil)
		return conn, nil, err
	}
	return p.newDirectSub(gate)
}

// newDirectSub makes an offered sub connection with its SubConn.
func (p *Participant) newDirectSub(gate *candidateGate) (*webrtc.PeerConnection, *media.SubConn, error) {
	d := p.sfu.api.direct
	api, capture := d.connAPI()
	var sc *media.SubConn
	conn, err := p.newPeerConnectionWith(api, Sub, gate, func() {
		if sc != nil {
			sc.Stop()
		}
	})
	if err != nil {
		return nil, nil, err
	}
	sc = media.NewSubConn(media.SubConnParams{Batch: d.batch, Reports: d.reports, RTCP: conn})
	ice := conn.SCTP().Transport().ICETransport()
	var secured atomic.Bool // DTLS is up: each path taken from here on is counted
	countPath := func() {
		path := pathPion
		if sc.Direct() {
			path = pathDirect
		}
		p.sfu.cfg.Metrics.SendPaths.WithLabelValues(path).Inc()
	}
	conn.SCTP().Transport().OnStateChange(func(st webrtc.DTLSTransportState) {
		if st != webrtc.DTLSTransportStateConnected {
			return
		}
		keys, err := capture.Keys()
		if err == nil {
			err = sc.SetKeys(keys.Profile, keys.ServerSide())
		} else {
			sc.KeepPionRTCP() // the relay is not the DTLS server: no keys, ever
		}
		if err != nil {
			p.log.Debug("sub stays on pion's send path", "err", err)
		}
		secured.Store(true)
		countPath()
		if err == nil && d.takeover {
			time.AfterFunc(p.sfu.cfg.TakeoverAfter, func() { p.tryTakeOver(conn, sc) })
		}
	})
	ice.OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		if sc.TakenOver() {
			return // pion's side closing: the pair is the relay's now
		}
		p.sfu.countSelected(pair)
		if err := sc.SetPair(pair); err != nil {
			p.log.Debug("sub pair not direct", "pair", pair.String(), "err", err)
		}
		if secured.Load() {
			countPath()
		}
	})
	return conn, sc, nil
}

// connAPI is one sub connection's pion API, whose DTLS hooks feed the
// capture it returns (about 1 µs: BenchmarkDirectSubAPI).
func (d *directAPI) connAPI() (*webrtc.API, *dtlskeys.Capture) {
	capture := &dtlskeys.Capture{}
	se := d.se // a copy: the hooks below are this connection's only
	se.SetDTLSKeyLogWriter(capture)
	se.SetDTLSServerHelloMessageHook(capture.ServerHelloHook)
	// An empty registry, not none: without one pion adds its defaults.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(d.me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return api, capture
}
