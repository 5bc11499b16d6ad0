package media

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/srtp/v3"
)

// A subscriber's RTCP (its NACKs, receiver reports) on the direct path
// (issue 19). Pion hands RTCP to the relay only through each sender: one
// reader goroutine per down track (DownTrack.rtcpLoop) blocked in
// ReadRTCP for the track's life. Once a sub connection is direct (the
// relay holds its keys and its pair is UDP on the relay's port) and
// direct ingest is on, the socket reader that reads the subscriber's
// flow takes its SRTCP itself: it decrypts it with the connection's
// remote key and serves the NACKs in it from the tracks' history, on
// the reader's goroutine, so that a listener costs no goroutine per
// track. A connection that is not direct (TCP, TURN, the relay the DTLS
// client, direct ingest off) has its tracks' pion readers started, once,
// and keeps them: a later direct pair leaves them idle, since the socket
// readers then take the datagrams first.

// subRTCP is a SubConn's share of it.
type subRTCP struct {
	// mu guards what follows it; a flow's datagrams reach one socket
	// reader, so it is not contended.
	mu      sync.Mutex
	ctx     *srtp.Context // the subscriber's SRTCP context (replay window); nil before SetKeys
	tracks  []*DownTrack  // the connection's subscribed down tracks
	viaPion bool          // the tracks' pion RTCP readers run (set once, never cleared)
	readers map[*DownTrack]RTCPReader

	at netip.AddrPort // guarded by SubConn.cfgMu: where the socket readers take its RTCP from; zero: nowhere
}

// setContext gives the subscriber's SRTCP context (once).
func (in *subRTCP) setContext(ctx *srtp.Context) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ctx == nil {
		in.ctx = ctx
	}
}

// add makes d's RTCP, read from sender through pion, the connection's to
// serve: pion's reader starts at once if the connection reads RTCP
// through pion, else when it does.
func (in *subRTCP) add(d *DownTrack, sender RTCPReader) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if slices.Contains(in.tracks, d) {
		return
	}
	in.tracks = append(in.tracks, d)
	if in.viaPion {
		d.startRTCPLoop(sender)
		return
	}
	if in.readers == nil {
		in.readers = map[*DownTrack]RTCPReader{}
	}
	in.readers[d] = sender
}

// remove forgets d (unsubscribed).
func (in *subRTCP) remove(d *DownTrack) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.tracks = slices.DeleteFunc(in.tracks, func(o *DownTrack) bool { return o == d })
	delete(in.readers, d)
}

// all is a copy of the connection's tracks.
func (in *subRTCP) all() []*DownTrack {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.tracks)
}

// KeepPionRTCP makes the connection read its subscriber's RTCP through
// pion from now on, whatever its path: its tracks' pion readers start.
// The room layer calls it when the relay cannot have the connection's
// keys (it is the DTLS client); SubConn calls it itself when its keys or
// its pair cannot be direct.
func (s *SubConn) KeepPionRTCP() {
	if s.taken.Load() != nil {
		return // pion is gone: the socket readers read it
	}
	in := &s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.viaPion {
		return
	}
	in.viaPion = true
	for d, sender := range in.readers {
		d.startRTCPLoop(sender)
	}
	in.readers = nil
}

// ReadsRTCPDirectly reports whether the socket readers take the
// subscriber's RTCP (the connection is direct and registered).
func (s *SubConn) ReadsRTCPDirectly() bool {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return s.in.at.IsValid()
}

// routeRTCPLocked registers the connection with the socket readers at its
// direct route's address, or unregisters it. cfgMu is held.
func (s *SubConn) routeRTCPLocked() {
	var d *Direct
	if s.batch != nil {
		d = s.batch.direct
	}
	r := s.route.Load()
	s.in.mu.Lock()
	keyed := s.in.ctx != nil
	s.in.mu.Unlock()
	want := netip.AddrPort{}
	if d != nil && r != nil && keyed {
		want = r.addr
	}
	if want == s.in.at {
		return
	}
	if s.in.at.IsValid() {
		d.dropSub(s.in.at, s)
		s.in.at = netip.AddrPort{}
	}
	if !want.IsValid() {
		return
	}
	if err := d.addSub(want, s); err != nil {
		s.KeepPionRTCP() // another connection's flow: pion sorts it out
		return
	}
	s.in.at = want
}

// addSub registers s's subscriber RTCP from remote.
func (d *Direct) addSub(remote netip.AddrPort, s *SubConn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, taken := (*d.subs.Load())[remote]; taken && o != s {
		return fmt.Errorf("%w: %s", ErrDirectAddrInUse, remote)
	}
	updateCOW(&d.subs, func(m map[netip.AddrPort]*SubConn) { m[remote] = s })
	return nil
}

// dropSub unregisters s at remote (a no-op if another is there).
func (d *Direct) dropSub(remote netip.AddrPort, s *SubConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if (*d.subs.Load())[remote] != s {
		return
	}
	updateCOW(&d.subs, func(m map[netip.AddrPort]*SubConn) { delete(m, remote) })
}

// updateCOW replaces *p with a copy of it that f changed: the maps the
// socket readers load once per datagram are never written in place. The
// caller serializes the updates.
func updateCOW[K comparable, V any](p *atomic.Pointer[map[K]V], f func(map[K]V)) {
	m := map[K]V{}
	if old := p.Load(); old != nil && *old != nil {
		m = maps.Clone(*old)
	}
	f(m)
	p.Store(&m)
}

// RTCP's transport-layer feedback packet type, and its generic NACK
// format (RFC 4585 §6.1, §6.2.1).
const rtpfbType, genericNACK = 205, 1

// isSRTCP reports whether b looks like an RTCP packet (RFC 7983, RFC 5761):
// a first byte in 128–191 and a packet type in 192–223.
func isSRTCP(b []byte) bool {
	return len(b) >= 8 && b[0] >= 128 && b[0] <= 191 && b[1] >= 192 && b[1] <= 223
}

// takeRTCP serves b, an SRTCP datagram from s's subscriber, if it
// authenticates; false leaves it to pion. It does not keep b.
func (s *SubConn) takeRTCP(b []byte) bool {
	pkt := bufpool.Get()
	defer pkt.Release()
	buf := pkt.Buf()
	if len(b) > len(buf) {
		return false
	}
	in := &s.in
	in.mu.Lock()
	if in.ctx == nil {
		in.mu.Unlock()
		return false
	}
	out, err := in.ctx.DecryptRTCP(buf[:0], b, nil)
	in.mu.Unlock()
	if err != nil || len(out) == 0 || &out[0] != &buf[0] {
		return false // a replay, or not the keys of this connection
	}
	if t := s.taken.Load(); t != nil {
		t.heard.Store(Now())
	}
	s.serveRTCP(out)
	return true
}

// serveRTCP walks a decrypted compound RTCP packet and serves the generic
// NACKs in it (RFC 4585 §6.2.1); the rest (receiver reports, SDES, BYE)
// the relay does not use.
func (s *SubConn) serveRTCP(b []byte) {
	for len(b) >= 4 {
		if b[0]>>6 != 2 {
			return
		}
		n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if n > len(b) {
			return
		}
		if b[1] == rtpfbType && b[0]&0x1f == genericNACK && n >= 12 {
			if d := s.trackBySSRC(binary.BigEndian.Uint32(b[8:12])); d != nil {
				for fci := b[12:n]; len(fci) >= 4; fci = fci[4:] {
					pid := binary.BigEndian.Uint16(fci[0:2])
					blp := binary.BigEndian.Uint16(fci[2:4])
					d.serveNACK(pid)
					for i := range uint16(16) {
						if blp&(1<<i) != 0 {
							d.serveNACK(pid + i + 1)
						}
					}
				}
			}
		}
		b = b[n:]
	}
}

// trackBySSRC is the connection's down track sent as ssrc, or nil.
func (s *SubConn) trackBySSRC(ssrc uint32) *DownTrack {
	in := &s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, d := range in.tracks {
		if b := d.bound.Load(); b != nil && b.ssrc == ssrc {
			return d
		}
	}
	return nil
}
