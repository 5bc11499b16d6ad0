package media

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/bufpool"
)

// The read side of the media socket with direct ingest (directingest.go). The
// relay reads its UDP port itself, with one goroutine per socket: the
// port is opened several times with SO_REUSEPORT (one per core, where the
// platform allows), and the kernel spreads the flows over the sockets by
// a hash of their address pair, so that one publisher's packets always
// reach the same reader, in order, while different publishers' are read,
// decrypted and fanned out on different cores. A datagram that is not a
// registered publisher's media is handed to pion's UDP mux, whose single
// read loop takes it from a queue instead of the socket.

// handoffQueue is how many datagrams may wait for pion's read loop: STUN,
// DTLS and RTCP, a few per connection per second; past it they are
// dropped (and counted) rather than stalling the media readers.
const handoffQueue = 1024

// socketReaders reads a batchConn's socket and its SO_REUSEPORT siblings.
type socketReaders struct {
	d     *Direct
	socks []*net.UDPConn  // socks[0] is the batchConn's own; the others are closed by close
	queue chan datagram   // to pion's read loop (read); closed once every reader has returned
	reads []atomic.Uint64 // datagrams read per socket: how the kernel spread the flows
	wg    sync.WaitGroup
	once  sync.Once
}

// datagram is one datagram for pion's read loop, copied into a pooled
// buffer owned by the queue until read takes it.
type datagram struct {
	pkt  *bufpool.Packet
	n    int
	addr netip.AddrPort
}

// startReaders makes c's reads go through the relay's readers: siblings
// more sockets on c's address (SO_REUSEPORT; fewer where that fails or
// the platform lacks it), and one reader goroutine per socket.
func startReaders(c *batchConn, d *Direct, siblings []*net.UDPConn) *socketReaders {
	r := &socketReaders{d: d, socks: append([]*net.UDPConn{c.UDPConn}, siblings...), queue: make(chan datagram, handoffQueue)}
	r.reads = make([]atomic.Uint64, len(r.socks))
	for i, s := range r.socks {
		r.wg.Add(1)
		go r.readLoop(s, &r.reads[i])
	}
	return r
}

// readLoop reads s until it is closed, a batch at a time (recvmmsg where
// the platform has it): each datagram is ingested directly or handed to
// pion. The batch's buffers are the reader's own: a directly ingested
// packet is decrypted into a pooled buffer, a handed-off one copied.
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

// take ingests b directly, or hands a copy to pion's read loop.
func (r *socketReaders) take(b []byte, addr netip.AddrPort) {
	if r.d.ingest(b, addr) {
		return
	}
	pkt := bufpool.Get()
	m := copy(pkt.Buf(), b)
	select {
	case r.queue <- datagram{pkt: pkt, n: m, addr: addr}:
		r.d.handoffs.Add(1)
	default:
		pkt.Release()
		r.d.full.Add(1)
	}
}

// read is pion's read: the next datagram handed off, copied into b.
func (r *socketReaders) read(b []byte) (int, netip.AddrPort, error) {
	dg, ok := <-r.queue
	if !ok {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	pkt := dg.pkt
	pkt.SetLen(dg.n)
	n := copy(b, pkt.Bytes())
	pkt.Release()
	return n, dg.addr, nil
}

// close closes the siblings (the caller closes socks[0]), waits for the
// readers, and ends the queue, releasing what pion did not read.
func (r *socketReaders) close() {
	r.once.Do(func() {
		for _, s := range r.socks[1:] {
			_ = s.Close()
		}
		r.wg.Wait()
		close(r.queue)
		for dg := range r.queue {
			dg.pkt.Release()
		}
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
	if c.rd == nil {
		return c.UDPConn.ReadFrom(b)
	}
	n, addr, err := c.rd.read(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// listenBatchConn opens a batched socket on laddr for the UDP mux; with
// o.Direct, also its siblings and readers (o.Readers in all, at least 1).
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
		bc.rd = startReaders(bc, o.direct, openSiblings(c, o.Readers-1))
	}
	return bc, nil
}
