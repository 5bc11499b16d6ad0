package media

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Batched UDP writes. Every peer's media leaves through the same UDP
// socket(s), one sendto per datagram: on a VM that is the largest single
// cost of a forwarded packet (docs/performance.md). A track's reader writes
// one packet to every subscriber in a row (UpTrack.forward), so it opens a
// batch around the fan-out: while any batch is open, what pion writes to
// the socket is copied aside, and when a batch ends everything set aside
// goes out with one sendmmsg per socket.
//
// Only the writes pion makes while a batch is open wait, and only until
// that batch ends (microseconds); a batch that fills is sent at once.
// Writes outside any batch (ICE, DTLS, RTCP) go straight to the socket.

// maxBatch is how many datagrams one sendmmsg carries at most; a fan-out
// to more subscribers sends several. It bounds the time in one raw
// syscall (udpbatch_linux.go), which a GC stop-the-world waits for: about
// 3 µs per datagram on the VM of docs/performance.md, so ~100 µs.
const maxBatch = 32

// Batch is the relay's batch state, shared by all its UDP sockets: a
// track's reader opens a batch around a fan-out (UpTrack.writeAll).
type Batch struct {
	open  atomic.Int32                 // batches begun and not yet ended
	mu    sync.Mutex                   // serializes add
	conns atomic.Pointer[[]*batchConn] // copy-on-write: read per batch without a lock
	fan   fanPool                      // the relay's fan-out workers (fanout_workers.go)
}

// begin opens a batch: writes to the sockets are set aside until end.
func (g *Batch) begin() { g.open.Add(1) }

// end closes a batch begun with begin and sends what is set aside, on
// every socket (including datagrams of batches still open elsewhere:
// sending early never hurts, sending late would).
func (g *Batch) end() {
	g.open.Add(-1)
	if conns := g.conns.Load(); conns != nil {
		for _, c := range *conns {
			c.flush()
		}
	}
}

func (g *Batch) add(c *batchConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var conns []*batchConn
	if old := g.conns.Load(); old != nil {
		conns = slices.Clone(*old)
	}
	conns = append(conns, c)
	g.conns.Store(&conns)
}

// batchConn is a UDP socket whose writes can be batched. It implements
// what pion's UDP mux uses: net.PacketConn and ice.AddrPortReaderWriter.
type batchConn struct {
	*net.UDPConn
	g *Batch
	// batchable: the socket is IPv4 and sendmmsg is available; otherwise
	// every write goes straight out.
	batchable bool

	mu   sync.Mutex // guards pend
	pend *batchBuf  // filled by writers while a batch is open

	flushMu sync.Mutex // serializes flushes, so that batches leave in order
	spare   *batchBuf  // guarded by flushMu: the buffer to swap in
	sender  batchSender
}

// batchBuf is one batch of datagrams, copied.
type batchBuf struct {
	n     int
	lens  [maxBatch]int
	addrs [maxBatch]netip.AddrPort
	data  [maxBatch][bufpool.Size]byte
}

func newBatchConn(c *net.UDPConn, g *Batch) *batchConn {
	bc := &batchConn{UDPConn: c, g: g, pend: new(batchBuf), spare: new(batchBuf)}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		bc.batchable = bc.sender.init(c)
	}
	g.add(bc)
	return bc
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: pion's UDP mux
// writes every media packet through it. While a batch is open the packet
// is set aside for the batch's end.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !c.batchable || c.g.open.Load() == 0 || !addr.Addr().Is4() || len(b) > bufpool.Size {
		return c.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	for {
		c.mu.Lock()
		// Checked again under mu: end decrements open before it flushes,
		// so a packet set aside here is always sent by some end's flush.
		if c.g.open.Load() == 0 {
			c.mu.Unlock()
			return c.UDPConn.WriteToUDPAddrPort(b, addr)
		}
		p := c.pend
		if p.n == maxBatch { // another writer filled it and is flushing
			c.mu.Unlock()
			c.flush()
			continue
		}
		i := p.n
		p.lens[i] = copy(p.data[i][:], b)
		p.addrs[i] = addr
		p.n++
		full := p.n == maxBatch
		c.mu.Unlock()
		if full {
			c.flush()
		}
		break
	}
	return len(b), nil
}

// flush sends what is set aside.
func (c *batchConn) flush() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	p := c.pend
	if p.n == 0 {
		c.mu.Unlock()
		return
	}
	c.pend, c.spare = c.spare, nil
	c.mu.Unlock()
	c.sender.send(c, p)
	p.n = 0
	c.spare = p
}

// batchNet is pion's standard network with its UDP sockets made
// batchConns, for the UDP mux on every interface.
type batchNet struct {
	*stdnet.Net
	g *Batch
}

func (n batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return newBatchConn(c, n.g), nil
}
