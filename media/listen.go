package media

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/stdnet"
)

// ListenUDP opens the one UDP port all peers' media goes through. addr is
// host:port; an empty or unspecified host listens on every interface (on
// the same port), a specific host on that address only. With loopback,
// loopback interfaces are included. Pion's UDP mux reads the port, and
// every packet passes pion's stack: ListenUDPWith turns on direct ingest,
// with which the relay reads the port and is its own UDP mux (udpmux.go).
func ListenUDP(addr string, loopback bool) (ice.UDPMux, error) {
	return ListenUDPWith(addr, loopback, ListenOptions{})
}

// ListenOptions are the media port's options beyond its address.
type ListenOptions struct {
	// Direct turns on direct ingest (directingest.go, udpread.go): the relay
	// reads the port itself and decrypts registered publishers' media
	// without pion (DirectOf gives the registry), and is the ICE agents'
	// UDP mux in place of pion's (udpmux.go).
	Direct bool
	// Readers is how many sockets (SO_REUSEPORT) and reader goroutines
	// read the port with Direct, per address listened on: 0 means
	// GOMAXPROCS.
	Readers int

	direct *Direct // made by ListenUDPWith
}

// ListenUDPWith is ListenUDP with options.
func ListenUDPWith(addr string, loopback bool, o ListenOptions) (ice.UDPMux, error) {
	if o.Direct {
		o.direct = newDirect()
		if o.Readers <= 0 {
			o.Readers = runtime.GOMAXPROCS(0)
		}
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("UDP address %q: want host:port, e.g. :50000 or 127.0.0.1:0: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("UDP address %q: bad port %q", addr, portStr)
	}
	batch := &Batch{direct: o.direct}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if port == 0 {
			return nil, fmt.Errorf("UDP address %q: listening on every interface needs a fixed port", addr)
		}
		std, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("list network interfaces: %w", err)
		}
		if o.Direct {
			mux, err := listenEveryInterface(std, port, loopback, batch, o)
			if err != nil {
				return nil, err
			}
			return &udpMux{UDPMux: mux, batch: batch, direct: o.direct}, nil
		}
		opts := []ice.UDPMuxFromPortOption{
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6),
			ice.UDPMuxFromPortWithNet(batchNet{Net: std, g: batch, o: o}),
		}
		if loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(port, opts...)
		if err != nil {
			return nil, fmt.Errorf("listen UDP on port %d: %w", port, err)
		}
		return &udpMux{UDPMux: mux, batch: batch, direct: o.direct}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("UDP address %q: host must be an IP address: %w", addr, err)
	}
	network := "udp4"
	if ip.Unmap().Is6() {
		network = "udp6"
	}
	conn, err := listenBatchConn(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), batch, o)
	if err != nil {
		return nil, fmt.Errorf("listen UDP on %s: %w", addr, err)
	}
	if conn.mux != nil {
		return &udpMux{UDPMux: conn.mux, batch: batch, direct: o.direct}, nil
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	return &udpMux{UDPMux: mux, batch: batch, direct: o.direct}, nil
}

// udpMux is the relay's ice.UDPMux and the batch state of its sockets
// (udpbatch.go), which the tracks' readers use to send a fan-out with one
// sendmmsg.
type udpMux struct {
	ice.UDPMux
	batch  *Batch
	direct *Direct // nil without direct ingest
}

// DirectOf is mux's direct ingest registry, or nil if mux does not ingest
// directly (direct ingest off, or not the relay's own mux).
func DirectOf(mux ice.UDPMux) *Direct {
	if m, ok := mux.(*udpMux); ok {
		return m.direct
	}
	return nil
}

// Close closes the port, then stops the fan-out workers (what they hold
// queued is dropped: no peer can be written to any more).
func (m *udpMux) Close() error {
	err := m.UDPMux.Close()
	m.batch.fan.close()
	return err
}

// BatchOf is mux's batch state, or nil if mux is not the relay's own (a
// test's) and writes cannot be batched.
func BatchOf(mux ice.UDPMux) *Batch {
	if m, ok := mux.(*udpMux); ok {
		return m.batch
	}
	return nil
}
