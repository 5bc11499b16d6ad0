package media

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/lianmai/relay/bufpool"
)

// The relay's own UDP mux (issue 19): with direct ingest, the ICE
// agents' connections on the media port are fed by the relay's socket
// readers (udpread.go) themselves. A datagram that direct ingest does not
// take goes, on the reader's goroutine, into the queue of the ICE
// connection it is for, which pion's candidate reads: no read loop of
// pion's UDPMuxDefault between them, and no goroutine per connection
// (pion's mux keeps one per connection, waiting for it to close).
//
// It implements pion's ice.UDPMux. Which connection a datagram is for:
//
//   - a STUN message whose USERNAME names a connection's local ufrag
//     (a connectivity check: "<our ufrag>:<theirs>"): that connection,
//     whatever its source address. An ICE restart gives the connection a
//     new ufrag; the peer's checks from its old address then reach the
//     new connection, not the one the address was last written from;
//   - otherwise the connection that last wrote to the source address
//     (STUN responses, DTLS, SRTP, SRTCP). A connection writes to an
//     address when its agent sends it a check or answers an
//     authenticated one, so an address is registered only by the agent
//     (as in pion's mux), never by a datagram alone: a forged check can
//     reach a connection, but cannot take an address from it;
//   - otherwise none: the datagram is dropped and counted (unrouted).
//
// A connection's queue is bounded: a datagram that finds it full is
// dropped and counted, and the reader goes on.

// Bounds of a connection's queue. It holds what the connection's agent
// has not read yet: STUN, DTLS and RTCP, a few datagrams a second, and a
// publisher's media before direct ingest takes it (50 to 100 a second per
// track). It starts small and grows as needed, so that an idle listener
// costs a few hundred bytes; pion's queue had no bound.
const (
	connQueueMin = 8
	connQueueMax = 256
)

// demux is the relay's UDP mux on one socket (one local address) with
// direct ingest: the socket's readers route to it, its connections write
// through the socket's batching.
type demux struct {
	bc    *batchConn   // the socket; closed by Close
	d     *Direct      // counters
	local *net.UDPAddr // bc's address, the only one GetConn accepts

	mu     sync.RWMutex                // guards what follows; route read-locks it per datagram
	ufrags [2]map[string]*muxConn      // live connections by local ufrag: [0] IPv4, [1] IPv6
	addrs  map[netip.AddrPort]*muxConn // remote address (addrKey) → the connection that last wrote to it
	closed bool
}

// errWrongLocalAddr: GetConn was asked for an address the mux does not
// listen on.
var errWrongLocalAddr = errors.New("media: the UDP mux does not listen on this address")

func newDemux(bc *batchConn, d *Direct) *demux {
	local, _ := bc.LocalAddr().(*net.UDPAddr)
	return &demux{
		bc: bc, d: d, local: local,
		ufrags: [2]map[string]*muxConn{{}, {}},
		addrs:  map[netip.AddrPort]*muxConn{},
	}
}

// addrKey is a's form as a key: IPv4 unmapped, and no zone (a mux is on
// one local address, so one interface: a zone adds nothing, and the
// kernel's numeric one differs from pion's named one).
func addrKey(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// family is the index of a's family in demux.ufrags.
func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 0
	}
	return 1
}

// GetConn returns a connection for ufrag's agent on addr, which must be
// the mux's own address: a new handle on the ufrag's connection of
// addr's family, made if there is none. Each handle is closed once; the
// connection closes with its last handle (or RemoveConnByUfrag).
func (m *demux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || m.local == nil || addrKey(ua.AddrPort()) != addrKey(m.local.AddrPort()) {
		return nil, fmt.Errorf("%w: asked for %v, listening on %v", errWrongLocalAddr, addr, m.local)
	}
	fam := family(ua.AddrPort().Addr())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, io.ErrClosedPipe // what pion's mux returns
	}
	c := m.ufrags[fam][ufrag]
	if c == nil {
		c = &muxConn{m: m, ufrag: ufrag, fam: fam}
		c.q.init()
		m.ufrags[fam][ufrag] = c
	}
	c.refs++
	return newMuxHandle(c), nil
}

// RemoveConnByUfrag closes and forgets ufrag's connections (both
// families): their readers get net.ErrClosed, their addresses are free.
// Pion's agent calls it on an ICE restart (for the old ufrag) and when
// it closes.
func (m *demux) RemoveConnByUfrag(ufrag string) {
	var gone []*muxConn
	m.mu.Lock()
	for fam := range m.ufrags {
		if c := m.ufrags[fam][ufrag]; c != nil {
			m.removeLocked(c)
			gone = append(gone, c)
		}
	}
	m.mu.Unlock()
	for _, c := range gone {
		c.q.close()
	}
}

// GetListenAddresses is the socket's address.
func (m *demux) GetListenAddresses() []net.Addr {
	return []net.Addr{m.bc.LocalAddr()}
}

// Close closes every connection and the socket (its readers end first,
// so that nothing is queued after the queues are emptied).
func (m *demux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var gone []*muxConn
	for fam := range m.ufrags {
		for _, c := range m.ufrags[fam] {
			m.removeLocked(c)
			gone = append(gone, c)
		}
	}
	m.mu.Unlock()
	err := m.bc.Close()
	for _, c := range gone {
		c.q.close()
	}
	return err
}

// removeLocked takes c out of the mux: its ufrag and its addresses. m.mu
// must be held; the caller closes c's queue after releasing it.
func (m *demux) removeLocked(c *muxConn) {
	if c.gone.Load() {
		return
	}
	c.gone.Store(true)
	if m.ufrags[c.fam][c.ufrag] == c {
		delete(m.ufrags[c.fam], c.ufrag)
	}
	c.mu.Lock()
	for _, a := range c.remotes {
		if m.addrs[a] == c {
			delete(m.addrs, a)
		}
	}
	c.remotes = nil
	c.mu.Unlock()
}

// release is a handle of c closing: c closes with its last.
func (m *demux) release(c *muxConn) {
	m.mu.Lock()
	c.refs--
	last := c.refs == 0 && !c.gone.Load()
	if last {
		m.removeLocked(c)
	}
	m.mu.Unlock()
	if last {
		c.q.close()
	}
}

// register makes key (an addrKey) c's: datagrams from it go to c from now
// on, and no longer to the connection that had it.
func (m *demux) register(c *muxConn, key netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.gone.Load() {
		return
	}
	if old := m.addrs[key]; old != nil && old != c {
		old.forget(key)
	}
	m.addrs[key] = c
	c.mu.Lock()
	c.remotes = append(c.remotes, key)
	c.mu.Unlock()
}

// route queues b, a datagram from from that direct ingest did not take,
// on its connection; or drops it, counted. It is called by the socket
// readers and does not keep b (the datagram is copied into a pooled
// buffer that the queue owns until a read takes it).
func (m *demux) route(b []byte, from netip.AddrPort) {
	key := addrKey(from)
	var c *muxConn
	m.mu.RLock()
	if u, ok := stunLocalUfrag(b); ok {
		c = m.ufrags[family(key.Addr())][string(u)]
	}
	if c == nil {
		c = m.addrs[key]
	}
	m.mu.RUnlock()
	if c == nil {
		m.d.unrouted.Add(1)
		return
	}
	pkt := bufpool.Get()
	pkt.SetLen(copy(pkt.Buf(), b))
	switch c.q.push(pkt, from) {
	case pushQueued:
		m.d.handoffs.Add(1)
	case pushFull:
		pkt.Release()
		m.d.full.Add(1)
	case pushClosed: // closed since the lookup: as if it had not been found
		pkt.Release()
		m.d.unrouted.Add(1)
	}
}
