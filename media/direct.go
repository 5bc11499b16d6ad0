package media

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct send path (issue 19, docs/performance.md "The packet path").
// Through pion a forwarded copy passes the interceptor chain, the SRTP
// session (a pooled buffer, a marshal, the session lock, the cipher), the
// ICE conn, the candidate pair and the UDP mux before the batched socket
// copies it into a sendmmsg batch. On the direct path a down track
// marshals its rewritten packet into a slot of the send batch and
// encrypts it there, in place, with one SRTP context per sub connection.
// It needs the connection's SRTP keys (package dtlskeys: the relay is the
// DTLS server on sub) and a selected candidate pair that is UDP on one of
// the relay's batched sockets; anything else keeps pion's path.

// SubConn is what the down tracks of one sub connection share: its direct
// send path (an SRTP context and where the datagrams go) and where its
// sender reports are written. The room layer makes one per sub connection
// and passes it in DownTrackParams; a nil *SubConn is pion's path alone.
type SubConn struct {
	batch *Batch // the relay's UDP port; nil: never direct

	// mu guards ctx and hdr: a connection's down tracks are written by
	// their tracks' readers, fan-out workers and NACK repairs at once. It
	// is held for one encryption (a fraction of a µs), never across a
	// write to the network.
	mu  sync.Mutex
	ctx *srtp.Context // set once by SetKeys
	hdr rtp.Header    // EncryptRTP's parse of the header, reused

	// route is where datagrams go directly: nil while the keys or the
	// selected pair are missing or unsuitable (pion's path). Replaced
	// whole by SetKeys, SetRoute and Stop, read once per packet.
	route   atomic.Pointer[directRoute]
	cfgMu   sync.Mutex   // serializes SetKeys, SetRoute and Stop
	pair    *directRoute // guarded by cfgMu: the usable selected pair, or nil
	stopped bool         // guarded by cfgMu: the connection closed

	rtcp    RTCPWriter // sender reports go out through it (reports.go); guarded by mu: a takeover clears it
	reports *Reporter  // nil: no relay-made sender reports

	// The subscriber's RTCP (subrtcp.go): read by the relay's socket
	// readers while the connection is direct, else through pion.
	in subRTCP

	taken atomic.Pointer[taken] // set by TakeOver (takeover.go)
	nom   nomination            // the relay's nomination of a new pair (takeover.go)
}

// directRoute is one selected UDP pair on a batched socket.
type directRoute struct {
	conn *batchConn
	addr netip.AddrPort // the client's candidate
}

// Errors of the direct path's set-up; each leaves the connection on
// pion's path.
var (
	ErrNoBatch    = errors.New("media: the relay has no batched UDP port: direct sending is off")
	ErrNotOurPort = errors.New("media: the selected pair is not UDP on the relay's media port")
)

// SubConnParams are what NewSubConn needs.
type SubConnParams struct {
	// Batch is the relay's UDP port (BatchOf); nil: pion's path only.
	Batch *Batch
	// Reports, if not nil, sends the connection's sender reports through
	// RTCP (with pion's SRTCP): the connection then needs no sender-report
	// interceptor.
	Reports *Reporter
	RTCP    RTCPWriter
}

// NewSubConn makes the shared state of one sub connection's down tracks.
func NewSubConn(p SubConnParams) *SubConn {
	s := &SubConn{batch: p.Batch, reports: p.Reports, rtcp: p.RTCP}
	if p.Batch == nil || p.Batch.direct == nil {
		s.in.viaPion = true // no socket readers to take the RTCP
	}
	return s
}

// SetKeys gives the connection its SRTP keys under profile, as the DTLS
// server (dtlskeys.Keys.ServerSide): the local key encrypts what the
// direct path sends, the remote key decrypts the subscriber's RTCP where
// the socket readers take it (subrtcp.go). On an error the connection
// stays on pion's path, its RTCP included.
func (s *SubConn) SetKeys(profile srtp.ProtectionProfile, keys srtp.SessionKeys) error {
	if s.batch == nil {
		return ErrNoBatch
	}
	ctx, err := srtp.CreateContext(keys.LocalMasterKey, keys.LocalMasterSalt, profile)
	if err != nil {
		s.KeepPionRTCP()
		return fmt.Errorf("media: SRTP context for the direct path: %w", err)
	}
	in, err := srtp.CreateContext(keys.RemoteMasterKey, keys.RemoteMasterSalt, profile, srtp.SRTCPReplayProtection(srtpReplayWindow))
	if err != nil {
		s.KeepPionRTCP()
		return fmt.Errorf("media: SRTCP context for the subscriber's RTCP: %w", err)
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.mu.Lock()
	if s.ctx == nil {
		s.ctx = ctx
	}
	s.mu.Unlock()
	s.in.setContext(in)
	s.publishLocked()
	return nil
}

// SetRoute sets the connection's selected candidate pair: local is the
// relay's address, remote the client's; udp is false for a TCP pair, and
// relayed true when either end is a TURN relay. The path goes direct if
// local is one of the relay's batched sockets; otherwise pion's path is
// used (ErrNotOurPort) until a later pair qualifies.
func (s *SubConn) SetRoute(local, remote netip.AddrPort, udp, relayed bool) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if s.taken.Load() != nil {
		return nil // the relay owns the route now (takeover.go); pion's pair changes as it closes
	}
	s.pair = nil
	defer s.publishLocked()
	if s.batch == nil {
		return ErrNoBatch
	}
	if !remote.IsValid() {
		return ErrNotOurPort // no pair (yet): nothing is decided
	}
	if !udp || relayed || !unmapped(remote).Addr().Is4() {
		s.KeepPionRTCP()
		return ErrNotOurPort
	}
	c := s.batch.connAt(local)
	if c == nil || !c.batchable {
		s.KeepPionRTCP()
		return ErrNotOurPort
	}
	s.pair = &directRoute{conn: c, addr: unmapped(remote)}
	return nil
}

// SetPair is SetRoute from pion's selected pair (nil: none).
func (s *SubConn) SetPair(pair *webrtc.ICECandidatePair) error {
	var local, remote netip.AddrPort
	if pair == nil || pair.Local == nil || pair.Remote == nil {
		return s.SetRoute(local, remote, false, false)
	}
	if ip, err := netip.ParseAddr(pair.Local.Address); err == nil {
		local = netip.AddrPortFrom(ip, pair.Local.Port)
	}
	if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil {
		remote = netip.AddrPortFrom(ip, pair.Remote.Port)
	}
	udp := pair.Local.Protocol == webrtc.ICEProtocolUDP && pair.Remote.Protocol == webrtc.ICEProtocolUDP
	relayed := pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay
	return s.SetRoute(local, remote, udp, relayed)
}

// Stop puts the connection back on pion's path for good (it is closing),
// and ends its tracks' sender reports.
func (s *SubConn) Stop() {
	s.cfgMu.Lock()
	at := s.in.at
	s.stopped = true
	s.publishLocked()
	s.cfgMu.Unlock()
	if s.taken.Load() != nil {
		if at.IsValid() {
			s.batch.silence(at, false)
		}
		s.batch.direct.dropUfrags(s)
		s.nom.mu.Lock()
		if s.nom.nominee.IsValid() {
			s.batch.direct.dropSub(s.nom.nominee, s)
			s.nom.nominee = netip.AddrPort{}
		}
		s.nom.mu.Unlock()
	}
	if s.reports != nil {
		for _, d := range s.in.all() {
			s.reports.remove(d)
		}
	}
}

// Direct reports whether the connection's packets take the direct path.
func (s *SubConn) Direct() bool { return s != nil && s.route.Load() != nil }

// publishLocked stores the route packets take. cfgMu is held.
func (s *SubConn) publishLocked() {
	s.mu.Lock()
	keyed := s.ctx != nil
	s.mu.Unlock()
	if s.stopped || !keyed || s.pair == nil {
		s.route.Store(nil)
	} else {
		s.route.Store(s.pair)
	}
	s.routeRTCPLocked()
}

// writeRTP sends h and payload on the direct path: handled is false if the
// connection is not on it (the caller writes through pion); ok is false if
// the packet was dropped (counted by the caller).
func (s *SubConn) writeRTP(h *rtp.Header, payload []byte) (handled, ok bool) {
	r := s.route.Load()
	if r == nil {
		return false, false
	}
	if l, buf := r.conn.reserve(r.addr); l != nil {
		n := s.encrypt(buf, h, payload)
		r.conn.commit(l, n)
		return true, n > 0
	}
	// No batch open (a lone subscriber, a NACK repair): one datagram of
	// its own, from a pooled buffer, sent at once with the socket's raw
	// single write (a write marked as a system call would wake sysmon for
	// every packet of a track with one listener).
	pkt := bufpool.Get()
	defer pkt.Release()
	buf := pkt.Buf()
	n := s.encrypt(buf, h, payload)
	if n == 0 {
		return true, false
	}
	_, err := r.conn.writeOwn(buf[:n], r.addr)
	return true, err == nil
}

// srtpOverhead is the most SRTP adds to a packet with the relay's
// profiles: a 16-byte GCM tag (AES-CM-80: 10 bytes).
const srtpOverhead = 16

// encrypt marshals h, payload and h's padding into dst and encrypts them
// in place; it returns the datagram's length, 0 if it does not fit or the
// cipher refused it.
func (s *SubConn) encrypt(dst []byte, h *rtp.Header, payload []byte) int {
	size := h.MarshalSize() + len(payload) + int(h.PaddingSize)
	if size+srtpOverhead > len(dst) {
		return 0
	}
	n, err := h.MarshalTo(dst)
	if err != nil {
		return 0
	}
	n += copy(dst[n:], payload)
	if h.PaddingSize > 0 { // as pion marshals it: zeros, the last one the count
		pad := dst[n : n+int(h.PaddingSize)]
		clear(pad)
		if h.Padding {
			pad[len(pad)-1] = h.PaddingSize
		}
		n += len(pad)
	}
	s.mu.Lock()
	out, err := s.ctx.EncryptRTP(dst[:n], dst[:n], &s.hdr)
	s.mu.Unlock()
	if err != nil || len(out) > len(dst) || &out[0] != &dst[0] {
		return 0
	}
	return len(out)
}
