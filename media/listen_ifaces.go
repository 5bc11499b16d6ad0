package media

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
)

// The media port on every interface with direct ingest: one socket (and
// its readers, and one of the relay's UDP muxes) per interface address,
// combined by pion's MultiUDPMuxDefault (which starts no goroutine). The
// addresses are those pion's NewMultiUDPMuxFromPort listens on without
// direct ingest, so that the relay offers the same candidates either way.

// listenEveryInterface opens port on every address interfaceAddrs gives.
// Port 0 (tests only: ListenUDPWith refuses it) gives each address a port
// of its own.
func listenEveryInterface(n transport.Net, port int, loopback bool, batch *Batch, o ListenOptions) (ice.UDPMux, error) {
	addrs, err := interfaceAddrs(n, loopback)
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("listen UDP on port %d: no network interface is up with an address to listen on (loopback counts only with -loopback)", port)
	}
	muxes := make([]ice.UDPMux, 0, len(addrs))
	for _, a := range addrs {
		network := "udp4"
		if a.Is6() {
			network = "udp6"
		}
		laddr := &net.UDPAddr{IP: a.AsSlice(), Port: port, Zone: a.Zone()}
		bc, err := listenBatchConn(network, laddr, batch, o)
		if err != nil {
			for _, m := range muxes {
				_ = m.Close()
			}
			return nil, fmt.Errorf("listen UDP on %s: %w", laddr, err)
		}
		muxes = append(muxes, bc.mux)
	}
	return ice.NewMultiUDPMuxDefault(muxes...), nil
}

// interfaceAddrs are the addresses of n's interfaces that pion's
// NewMultiUDPMuxFromPort listens on for IPv4 and IPv6: those of
// interfaces that are up; loopback ones only with loopback; no
// IPv4-compatible IPv6 (::/96, ::1 among them) or site-local IPv6
// (fec0::/10), which RFC 8445 keeps out of candidates; link-local IPv6
// with its interface as zone.
func interfaceAddrs(n transport.Net, loopback bool) ([]netip.Addr, error) {
	ifaces, err := n.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 && !loopback {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue // as pion: an interface whose addresses cannot be read is skipped
		}
		for _, addr := range addrs {
			var ip net.IP
			zone := iface.Name
			switch v := addr.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip, zone = v.IP, v.Zone
			default:
				continue
			}
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			a = a.Unmap()
			if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) && zone != "" {
				a = a.WithZone(zone)
			}
			if a.IsLoopback() && !loopback || a.Is6() && !candidateIPv6(a) {
				continue
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// candidateIPv6 reports whether a (IPv6) may be a candidate: not
// IPv4-compatible (its first 12 bytes zero, ::1 included) nor site-local
// (fec0::/10), as pion decides.
func candidateIPv6(a netip.Addr) bool {
	b := a.As16()
	zeros := true
	for _, x := range b[:12] {
		zeros = zeros && x == 0
	}
	return !zeros && (b[0] != 0xfe || b[1]&0xc0 != 0xc0)
}
