package media

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Direct ingest (issue 19): a publisher's SRTP packets are decrypted by
// the relay's socket reader itself (udpread.go) and handed to the track
// (UpTrack.Ingest) on the same goroutine, instead of passing pion's UDP
// mux, ICE conn, DTLS/SRTP mux, SRTP session and track buffer with a
// goroutine hand-off at several of them. Only packets that are surely a
// registered publisher's media take this path: the source address of
// the connection's selected candidate pair, an RTP (not RTCP) first and
// second byte (RFC 7983, RFC 5761), an SSRC of a registered track, and a
// packet the connection's keys authenticate. Everything else (STUN, DTLS,
// RTCP, unknown sources, packets that do not authenticate) goes to pion
// as before.

// srtpReplayWindow is the replay window of the relay's own SRTP
// contexts: pion/webrtc's default for its own.
const srtpReplayWindow = 64

// ErrDirectAddrInUse: another connection is registered at the address.
var ErrDirectAddrInUse = errors.New("media: a publisher is already registered for direct ingest at this address")

// Direct is the registry of the publishers whose packets the socket
// readers ingest directly, by remote address. Its zero value is not
// usable: ListenUDPWith makes it.
type Direct struct {
	mu     sync.Mutex                                     // serializes changes of conns
	conns  atomic.Pointer[map[netip.AddrPort]*DirectConn] // copy on write: one load per datagram
	subs   atomic.Pointer[map[netip.AddrPort]*SubConn]    // direct listeners whose RTCP the readers take (subrtcp.go); copy on write
	ufrags atomic.Pointer[map[string]*SubConn]            // taken-over connections by local ICE ufrag (takeover.go); copy on write

	// Counters (udpread.go's readers add to them; the relay's metrics
	// read them).
	packets   atomic.Uint64 // packets ingested directly
	authFails atomic.Uint64 // packets from a registered source that did not decrypt (left to pion)
	handoffs  atomic.Uint64 // datagrams queued to pion's ICE connections (udpmux.go)
	full      atomic.Uint64 // datagrams dropped because their ICE connection's queue was full
	unrouted  atomic.Uint64 // datagrams dropped because no ICE connection had their address or ufrag
	subRTCP   atomic.Uint64 // subscribers' RTCP datagrams served by the readers
}

func newDirect() *Direct {
	d := &Direct{}
	d.conns.Store(&map[netip.AddrPort]*DirectConn{})
	d.subs.Store(&map[netip.AddrPort]*SubConn{})
	d.ufrags.Store(&map[string]*SubConn{})
	return d
}

// DirectStats are Direct's counters.
type DirectStats struct {
	Packets   uint64 // SRTP packets decrypted and ingested by the socket readers
	AuthFails uint64 // packets from a registered publisher that did not decrypt (given to pion)
	Handoffs  uint64 // datagrams the socket readers queued to pion's ICE connections (STUN, DTLS, RTCP, others)
	Dropped   uint64 // datagrams dropped because their ICE connection's queue was full
	Unrouted  uint64 // datagrams dropped because no ICE connection had their source address or STUN ufrag
	SubRTCP   uint64 // subscribers' SRTCP datagrams decrypted and served by the socket readers
}

// Stats reads the counters; all 0 for a nil Direct (direct ingest off).
func (d *Direct) Stats() DirectStats {
	if d == nil {
		return DirectStats{}
	}
	return DirectStats{Packets: d.packets.Load(), AuthFails: d.authFails.Load(),
		Handoffs: d.handoffs.Load(), Dropped: d.full.Load(), Unrouted: d.unrouted.Load(), SubRTCP: d.subRTCP.Load()}
}

// DirectConn is one publisher connection registered for direct ingest:
// its remote address, its SRTP context (the publisher's keys) and its
// tracks by SSRC.
type DirectConn struct {
	d      *Direct
	remote netip.AddrPort // guarded by d.mu after Open

	// mu serializes decryption: the context keeps per-SSRC rollover and
	// replay state. A flow's datagrams reach one socket reader (the
	// kernel hashes the 4-tuple), so it is not contended.
	mu  sync.Mutex
	ctx *srtp.Context
	hdr rtp.Header // scratch for DecryptRTP, reused (its slices keep their capacity)

	tracks atomic.Pointer[[]directTrack] // copy on write under d.mu
	closed atomic.Bool
}

type directTrack struct {
	ssrc uint32
	up   *UpTrack
}

// Open registers a publisher connection whose packets come from remote,
// to be decrypted with the remote side of keys (the publisher's write
// key) under profile; cryptex: the connection negotiated RFC 9335 header
// extension encryption (the relay's description has a=cryptex), so the
// publisher may encrypt its header extensions. It has no track until
// AddTrack. Close it when the connection closes or its selected candidate
// pair changes.
func (d *Direct) Open(remote netip.AddrPort, keys srtp.SessionKeys, profile srtp.ProtectionProfile, cryptex bool) (*DirectConn, error) {
	opts := []srtp.ContextOption{srtp.SRTPReplayProtection(srtpReplayWindow)}
	if cryptex {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	ctx, err := srtp.CreateContext(keys.RemoteMasterKey, keys.RemoteMasterSalt, profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("media: SRTP context for direct ingest: %w", err)
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	c := &DirectConn{d: d, remote: remote, ctx: ctx}
	c.tracks.Store(&[]directTrack{})
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.conns.Load()
	if _, taken := old[remote]; taken {
		return nil, fmt.Errorf("%w: %s", ErrDirectAddrInUse, remote)
	}
	m := make(map[netip.AddrPort]*DirectConn, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[remote] = c
	d.conns.Store(&m)
	return c, nil
}

// AddTrack makes the packets of stream ssrc go to up. Call it once pion
// has set up the track (its OnTrack ran): from then on pion sees none of
// the stream's packets.
func (c *DirectConn) AddTrack(ssrc uint32, up *UpTrack) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	ts := slices.Clone(*c.tracks.Load())
	ts = append(ts, directTrack{ssrc: ssrc, up: up})
	c.tracks.Store(&ts)
}

// RemoveTrack stops the direct ingest of up's packets; they go to pion
// again (whose track has ended, or is about to).
func (c *DirectConn) RemoveTrack(up *UpTrack) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	ts := slices.DeleteFunc(slices.Clone(*c.tracks.Load()), func(t directTrack) bool { return t.up == up })
	c.tracks.Store(&ts)
}

// Move registers the connection at remote instead of where it was: its
// selected candidate pair changed (an ICE restart, a new network path)
// while its DTLS session, and so its keys, stayed. Its SRTP context
// moves with it: pion's own session has not seen the packets taken
// directly, and would guess the rollover counter wrong after a sequence
// number wrap (every 65,536 packets, 11 minutes of 10 ms audio).
func (c *DirectConn) Move(remote netip.AddrPort) error {
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.conns.Load()
	switch {
	case c.closed.Load() || old[c.remote] != c:
		return errors.New("media: direct ingest connection closed")
	case remote == c.remote:
		return nil
	case old[remote] != nil:
		return fmt.Errorf("%w: %s", ErrDirectAddrInUse, remote)
	}
	m := make(map[netip.AddrPort]*DirectConn, len(old))
	for k, v := range old {
		if k != c.remote {
			m[k] = v
		}
	}
	m[remote] = c
	c.remote = remote
	d.conns.Store(&m)
	return nil
}

// Close unregisters the connection: its packets go to pion from the next
// datagram on. Closing twice is a no-op.
func (c *DirectConn) Close() {
	if c.closed.Swap(true) {
		return
	}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.conns.Load()
	if old[c.remote] != c {
		return
	}
	m := make(map[netip.AddrPort]*DirectConn, len(old))
	for k, v := range old {
		if k != c.remote {
			m[k] = v
		}
	}
	d.conns.Store(&m)
}

// isSRTP reports whether b looks like an RTP (not RTCP) packet: RFC 7983
// puts RTP and RTCP's first byte in 128–191, and RFC 5761 RTCP's second
// byte (its packet type) in 192–223.
func isSRTP(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

// ingest decrypts b, a datagram from addr, and hands it to its track, if
// it is a registered publisher's media that authenticates; false leaves
// it to pion. It does not keep b.
func (d *Direct) ingest(b []byte, addr netip.AddrPort) bool {
	if !isSRTP(b) {
		s := (*d.subs.Load())[addr]
		if s == nil {
			if s = d.byUfrag(b); s == nil {
				return false
			}
		}
		if isSRTCP(b) && s.takeRTCP(b) {
			d.subRTCP.Add(1)
			return true
		}
		return s.takeOther(b, addr)
	}
	c := (*d.conns.Load())[addr]
	if c == nil {
		return false
	}
	ssrc := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	var up *UpTrack
	for _, t := range *c.tracks.Load() {
		if t.ssrc == ssrc {
			up = t.up
			break
		}
	}
	if up == nil {
		return false // a stream pion has not announced yet
	}
	pkt := bufpool.Get()
	buf := pkt.Buf()
	if len(b) > len(buf) {
		pkt.Release()
		return false
	}
	c.mu.Lock()
	out, err := c.ctx.DecryptRTP(buf[:0], b, &c.hdr)
	c.mu.Unlock()
	if err != nil || len(out) == 0 || &out[0] != &buf[0] {
		// Not authenticated with these keys (a replay, another stream,
		// a forgery): pion decides.
		pkt.Release()
		d.authFails.Add(1)
		return false
	}
	d.packets.Add(1)
	up.Ingest(pkt, len(out))
	return true
}

// Collectors are Direct's counters as Prometheus metrics
// (docs/metrics.md).
func (d *Direct) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("relay_direct_ingest_packets_total", "Publisher RTP packets the relay's socket readers decrypted and forwarded themselves (direct ingest).", &d.packets),
		counter("relay_direct_ingest_auth_failures_total", "Packets from a publisher registered for direct ingest that its keys did not authenticate; pion got them.", &d.authFails),
		counter("relay_direct_ingest_handoffs_total", "Datagrams the socket readers queued to pion's ICE connections (STUN, DTLS, RTCP, media of connections not registered).", &d.handoffs),
		counter("relay_direct_sub_rtcp_total", "Subscribers' SRTCP datagrams (NACKs, receiver reports) the relay's socket readers decrypted and served themselves, without pion's RTCP readers.", &d.subRTCP),
		counter("relay_direct_ingest_handoff_drops_total", fmt.Sprintf("Datagrams dropped because the ICE connection they were for had %d waiting (its reader is behind).", connQueueMax), &d.full),
		counter("relay_direct_ingest_unrouted_total", "Datagrams dropped because no ICE connection on the media port had written to their source address or had the ufrag their STUN message named.", &d.unrouted),
	}
}
