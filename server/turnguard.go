package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// mediaGuard keeps the embedded TURN server from being an open relay: its
// allocations exchange datagrams with the relay's own media UDP addresses
// only. The relay's candidates may carry announced (public) IPs instead
// of its own: a datagram a client sends to one goes to the local media
// address with that port, and one from a local media address seems to
// come from the announced IP, so that nothing needs to loop through the
// NAT (which many clouds do not do).
type mediaGuard struct {
	media    []netip.AddrPort // the relay's media UDP addresses
	announce []netip.Addr     // what the relay's candidates carry instead, if set
	ips      []netip.Addr     // every IP a permission may be for: media's and announce
	dropped  prometheus.Counter
	relayed  sync.Map // netip.AddrPort -> struct{}: the open allocations' relayed addresses
}

// newMediaGuard guards media, with the relay's announced IPs; dropped
// counts the datagrams it drops.
func newMediaGuard(media []netip.AddrPort, announce []string, dropped prometheus.Counter) (*mediaGuard, error) {
	if len(media) == 0 {
		return nil, errors.New("TURN: the relay has no media UDP address to relay to")
	}
	g := &mediaGuard{dropped: dropped}
	for _, m := range media {
		m = netip.AddrPortFrom(m.Addr().Unmap(), m.Port())
		g.media = append(g.media, m)
		g.ips = append(g.ips, m.Addr())
	}
	for _, s := range announce {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("TURN: announce IP %q: %w", s, err)
		}
		g.announce = append(g.announce, a.Unmap())
		g.ips = append(g.ips, a.Unmap())
	}
	return g, nil
}

// relayIP is the local IP the relayed sockets use: that of a media
// address, preferring one that is not loopback (the relay's own ICE agent
// refuses loopback peers unless it runs on loopback only).
func (g *mediaGuard) relayIP() netip.Addr {
	for _, m := range g.media {
		if m.Addr().Is4() && !m.Addr().IsLoopback() {
			return m.Addr()
		}
	}
	return g.media[0].Addr()
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func (g *mediaGuard) allowedIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && slices.Contains(g.ips, a.Unmap())
}

// toMedia is where a datagram a client sends to peer goes: peer itself if
// it is a media address, the local media address of peer's port if peer
// is an announced IP; ok is false for any other address.
func (g *mediaGuard) toMedia(peer netip.AddrPort) (netip.AddrPort, bool) {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if slices.Contains(g.media, peer) {
		return peer, true
	}
	if !slices.Contains(g.announce, peer.Addr()) {
		return netip.AddrPort{}, false
	}
	for _, m := range g.media {
		if m.Port() == peer.Port() && m.Addr().Is4() == peer.Addr().Is4() {
			return m, true
		}
	}
	return netip.AddrPort{}, false
}

// fromMedia is how a datagram from src is shown to the client: from the
// announced IP of src's family when the relay announces one; ok is false
// unless src is a media address.
func (g *mediaGuard) fromMedia(src netip.AddrPort) (netip.AddrPort, bool) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if !slices.Contains(g.media, src) {
		return netip.AddrPort{}, false
	}
	for _, a := range g.announce {
		if a.Is4() == src.Addr().Is4() {
			return netip.AddrPortFrom(a, src.Port()), true
		}
	}
	return src, true
}

// guardedConn is an allocation's relayed socket, passing only media
// datagrams.
type guardedConn struct {
	net.PacketConn
	g    *mediaGuard
	addr netip.AddrPort // its local address, in g.relayed while open
	once sync.Once
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.g.relayed.Delete(c.addr) })
	return c.PacketConn.Close()
}

func (c *guardedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		c.g.dropped.Inc()
		return len(p), nil
	}
	dst, ok := c.g.toMedia(ua.AddrPort())
	if !ok {
		c.g.dropped.Inc()
		return len(p), nil // dropped, as UDP may
	}
	return c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(dst))
}

func (c *guardedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if ua, ok := addr.(*net.UDPAddr); ok {
			if src, ok := c.g.fromMedia(ua.AddrPort()); ok {
				return n, net.UDPAddrFromAddrPort(src), nil
			}
		}
		c.g.dropped.Inc()
	}
}

// relayGen makes allocations' relayed sockets: UDP on the relay IP, any
// port, guarded. TCP allocations (RFC 6062) are refused: WebRTC does not
// use them.
type relayGen struct{ guard *mediaGuard }

var errTCPAllocation = errors.New("TURN TCP allocations are not offered")

func (r *relayGen) Validate() error { return nil }

func (r *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	ip := r.guard.relayIP()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	if conf.Network != "" && conf.Network != network {
		return nil, nil, fmt.Errorf("TURN: relayed addresses are %s only, not %s", network, conf.Network)
	}
	pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(conf.RequestedPort))))
	if err != nil {
		return nil, nil, err
	}
	gc := &guardedConn{PacketConn: pc, g: r.guard, addr: unmap(pc.LocalAddr().(*net.UDPAddr).AddrPort())}
	r.guard.relayed.Store(gc.addr, struct{}{})
	return gc, pc.LocalAddr(), nil
}

func (r *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPAllocation
}

func (r *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPAllocation
}
