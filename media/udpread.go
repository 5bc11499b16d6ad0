package media

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The read side of the media socket with direct ingest (directingest.go). The
// relay reads its UDP port itself, with one goroutine per socket: the
// port is opened several times with SO_REUSEPORT (one per core, where the
// platform allows), and the kernel spreads the flows over the sockets by
// a hash of their address pair, so that one publisher's packets always
// reach the same reader, in order, while different publishers' are read,
// decrypted and fanned out on different cores. A datagram that is not a
// registered publisher's media (or a direct listener's RTCP) goes into
// the queue of the ICE connection it is for, through the relay's own UDP
// mux (udpmux.go), on the reader's goroutine.

// socketReaders reads a batchConn's socket and its SO_REUSEPORT siblings.
type socketReaders struct {
	d     *Direct
	mux   *demux          // where what direct ingest leaves goes
	socks []*net.UDPConn  // socks[0] is the batchConn's own; the others are closed by close
	reads []atomic.Uint64 // datagrams read per socket: how the kernel spread the flows
	wg    sync.WaitGroup
	once  sync.Once
}

// errReadersOwnReads: with direct ingest the socket is read by the
// relay's readers only (what they do not take reaches pion through the
// relay's UDP mux); a read of the socket beside them would steal their
// datagrams.
var errReadersOwnReads = errors.New("media: the media socket is read by the relay's socket readers (direct ingest); read the UDP mux's connections instead")

// startReaders makes c's reads go through the relay's readers, which
// route what direct ingest leaves to mux: siblings more sockets on c's
// address (SO_REUSEPORT; fewer where that fails or the platform lacks
// it), and one reader goroutine per socket.
func startReaders(c *batchConn, d *Direct, mux *demux, siblings []*net.UDPConn) *socketReaders {
	r := &socketReaders{d: d, mux: mux, socks: append([]*net.UDPConn{c.UDPConn}, siblings...)}
	r.reads = make([]atomic.Uint64, len(r.socks))
	for i, s := range r.socks {
		r.wg.Add(1)
		go r.readLoop(s, &r.reads[i])
	}
	return r
}

// readLoop reads s until it is closed, a batch at a time (recvmmsg where
// the platform has it): each datagram is ingested directly or routed to
// its ICE connection. The batch's buffers are the reader's own: a
// directly ingested packet is decrypted into a pooled buffer, a routed
// one copied.
func (r *socketReaders) readLoop(s *net.UDPConn, reads *atomic.Uint64) {
	defer r.wg.Done()
	br, err := newBatchReader(s)
	if err != nil {
		return // closed already
	}
	for {
		n, err := br.next()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A deadline set on the socket means nothing to the
				// readers, which own its reads: clear it rather than spin.
				_ = s.SetReadDeadline(time.Time{})
			}
			continue // an ICMP error from an earlier send, and the like
		}
		reads.Add(uint64(n))
		for i := range n {
			r.take(br.datagram(i))
		}
	}
}

// take ingests b directly, or routes a copy to its ICE connection.
func (r *socketReaders) take(b []byte, addr netip.AddrPort) {
	if r.d.ingest(b, addr) {
		return
	}
	r.mux.route(b, addr)
}

// close closes the siblings (the caller closes socks[0]) and waits for
// the readers.
func (r *socketReaders) close() {
	r.once.Do(func() {
		for _, s := range r.socks[1:] {
			_ = s.Close()
		}
		r.wg.Wait()
	})
}

// openSiblings opens up to n more sockets on c's address (SO_REUSEPORT),
// fewer if the platform refuses.
func openSiblings(c *net.UDPConn, n int) []*net.UDPConn {
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil
	}
	network := "udp4"
	if la.IP.To4() == nil {
		network = "udp6"
	}
	var sibs []*net.UDPConn
	for range n {
		s, err := listenUDP(network, la, true)
		if err != nil {
			break
		}
		sibs = append(sibs, s)
	}
	return sibs
}

// ReadFrom implements net.PacketConn for a reader that does not use
// ReadFromAddrPort: with direct ingest it must not read the socket past
// the relay's readers either.
func (c *batchConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.rd != nil {
		return 0, nil, errReadersOwnReads
	}
	return c.UDPConn.ReadFrom(b)
}

// listenBatchConn opens a batched socket on laddr for the UDP mux; with
// o.Direct, also its siblings and readers (o.Readers in all, at least 1),
// and the relay's UDP mux they feed (bc.mux).
func listenBatchConn(network string, laddr *net.UDPAddr, g *Batch, o ListenOptions) (*batchConn, error) {
	reuse := o.Direct && o.Readers > 1
	if reuse && laddr.Port != 0 {
		// SO_REUSEPORT would let a second relay started on the same port
		// (by the same user) join this one's group and take a share of
		// its flows without a word. Bind once without it first, so that a
		// port in use fails here as it does without direct ingest.
		probe, err := net.ListenUDP(network, laddr)
		if err != nil {
			return nil, err
		}
		_ = probe.Close()
	}
	c, err := listenUDP(network, laddr, reuse)
	if err != nil {
		return nil, err
	}
	bc := newBatchConn(c, g)
	if o.Direct {
		bc.mux = newDemux(bc, o.direct)
		bc.rd = startReaders(bc, o.direct, bc.mux, openSiblings(c, o.Readers-1))
	}
	return bc, nil
}
