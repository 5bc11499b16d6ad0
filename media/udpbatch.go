package media

import (
	"net"
	"net/netip"
	"runtime"
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

	direct *Direct // the socket readers' registry (direct ingest), or nil; set once

	// The clients' addresses whose connections the relay took over from
	// pion (takeover.go): pion's writes to them are dropped.
	silent   atomic.Pointer[map[netip.AddrPort]struct{}]
	silentMu sync.Mutex
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
//
// Its batches are kept in lanes, one per P, chosen by the datagram's
// destination (so one subscriber's datagrams always take the same lane,
// and leave in order). Each lane sends through a descriptor of its own
// (a dup of the socket's), because Go serializes the writes made through
// one descriptor: with one lane the fan-out workers (fanout_workers.go)
// would send one after the other, and the kernel's send is most of a
// forwarded packet's cost.
type batchConn struct {
	*net.UDPConn
	g *Batch
	// batchable: the socket is IPv4 and sendmmsg is available; otherwise
	// every write goes straight out.
	batchable bool
	lanes     []*batchLane // set at creation, never changed
	// rd reads the socket with direct ingest (udpread.go), nil without:
	// then pion's read loop reads the socket itself.
	rd *socketReaders
	// mux is the relay's UDP mux that rd feeds (udpmux.go), nil without
	// direct ingest.
	mux *demux
}

// batchLane is one lane's pending batch and its sender.
type batchLane struct {
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

// newBatchConn wraps c with one lane per P (GOMAXPROCS when it is made).
func newBatchConn(c *net.UDPConn, g *Batch) *batchConn {
	return newBatchConnLanes(c, g, runtime.GOMAXPROCS(0))
}

// newBatchConnLanes wraps c with n lanes (fewer if the socket cannot be
// duplicated: then writes share the lanes there are).
func newBatchConnLanes(c *net.UDPConn, g *Batch, n int) *batchConn {
	bc := &batchConn{UDPConn: c, g: g}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if ok && la.IP.To4() != nil {
		bc.batchable = true
		for i := range max(n, 1) {
			l := &batchLane{pend: new(batchBuf), spare: new(batchBuf)}
			if !l.sender.init(c, i > 0) {
				if i == 0 {
					bc.batchable = false
				}
				break
			}
			bc.lanes = append(bc.lanes, l)
		}
	}
	g.add(bc)
	return bc
}

// Close closes the lanes' descriptors and the socket (and, with direct
// ingest, its siblings and readers).
func (c *batchConn) Close() error {
	for _, l := range c.lanes {
		l.sender.close()
	}
	err := c.UDPConn.Close()
	if c.rd != nil {
		c.rd.close()
	}
	return err
}

// laneOf is the lane datagrams to addr take when it is free.
func (c *batchConn) laneOf(addr netip.AddrPort) int {
	if len(c.lanes) == 1 {
		return 0
	}
	a := addr.Addr().As4()
	h := uint32(addr.Port()) ^ uint32(a[3])<<8 ^ uint32(a[2])<<16
	return int(h % uint32(len(c.lanes)))
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.rd != nil {
		return 0, netip.AddrPort{}, errReadersOwnReads
	}
	return c.UDPConn.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: pion's UDP mux
// writes every media packet through it. While a batch is open the packet
// is set aside for the batch's end.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if c.g.silenced(addr) {
		return len(b), nil // a connection the relay took over from pion (takeover.go)
	}
	return c.writeOwn(b, addr)
}

// writeOwn is WriteToAddrPort for the relay's own datagrams, which a
// takeover does not silence; addr is unmapped.
func (c *batchConn) writeOwn(b []byte, addr netip.AddrPort) (int, error) {
	if !c.batchable || !addr.Addr().Is4() || len(b) == 0 {
		return c.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	if c.g.open.Load() == 0 || len(b) > bufpool.Size {
		return c.writeNow(b, addr)
	}
	l, buf := c.reserve(addr)
	if l == nil { // the batch ended meanwhile
		return c.writeNow(b, addr)
	}
	c.commit(l, copy(buf, b))
	return len(b), nil
}

// writeNow sends b to addr at once, through addr's lane: after what the
// lane's flush under way sends, before what its open batch holds.
func (c *batchConn) writeNow(b []byte, addr netip.AddrPort) (int, error) {
	l := c.lanes[c.laneOf(addr)]
	l.flushMu.Lock()
	err := l.sender.sendOne(b, addr)
	l.flushMu.Unlock()
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: net.UDPAddrFromAddrPort(addr), Err: err}
	}
	return len(b), nil
}

// flush sends what every lane has set aside.
func (c *batchConn) flush() {
	for _, l := range c.lanes {
		l.flush()
	}
}

// flush sends what the lane has set aside, after any flush of it under
// way: when it returns, every datagram set aside in the lane before the
// call has been handed to the kernel.
func (l *batchLane) flush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	p := l.pend
	if p.n == 0 {
		l.mu.Unlock()
		return
	}
	l.pend, l.spare = l.spare, nil
	l.mu.Unlock()
	l.sender.send(p)
	p.n = 0
	l.spare = p
}

// batchNet is pion's standard network with its UDP sockets made
// batchConns, for the UDP mux on every interface.
type batchNet struct {
	*stdnet.Net
	g *Batch
	o ListenOptions
}

func (n batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	return listenBatchConn(network, laddr, n.g, n.o)
}

// reserve takes a free datagram slot for addr in one of c's lanes, for a
// writer that fills it in place (WriteToAddrPort copies pion's datagram,
// SubConn encrypts straight into it): it returns
// the lane, locked, and the slot's buffer; the caller fills it and calls
// commit at once (encryption only: no lock is taken or write made in
// between). nil if no batch is open or c cannot batch: the caller then
// writes the datagram itself.
func (c *batchConn) reserve(addr netip.AddrPort) (*batchLane, []byte) {
	if !c.batchable || c.g.open.Load() == 0 {
		return nil, nil
	}
	first := c.laneOf(addr)
	for {
		// The destination's own lane, or the next with room whose lock is
		// free: a lane being filled by another writer, or full and being
		// sent, is passed over rather than waited for. Any lane will do:
		// a batch's end sends every lane (waiting for flushes under way),
		// so each datagram has left before its writer writes the next one
		// to the same subscriber.
		for i := range c.lanes {
			l := c.lanes[(first+i)%len(c.lanes)]
			if !l.mu.TryLock() {
				continue
			}
			if buf, done := c.reserveLocked(l, addr); done {
				return laneIf(l, buf), buf
			}
		}
		// Every lane busy: wait for the destination's.
		l := c.lanes[first]
		l.mu.Lock()
		if buf, done := c.reserveLocked(l, addr); done {
			return laneIf(l, buf), buf
		}
		l.flush()
	}
}

// laneIf is l if a slot was reserved in it (buf), else nil.
func laneIf(l *batchLane, buf []byte) *batchLane {
	if buf == nil {
		return nil
	}
	return l
}

// reserveLocked, with l.mu held, returns the next slot of l's batch,
// keeping l.mu (done, buf not nil); no slot and done if no batch is open
// any more; not done if l's batch is full (another writer filled it and
// is flushing). In the last two cases l.mu is released.
func (c *batchConn) reserveLocked(l *batchLane, addr netip.AddrPort) (buf []byte, done bool) {
	// Checked again under mu: end decrements open before it flushes, so a
	// datagram put in a slot here is always sent by some end's flush.
	if c.g.open.Load() == 0 {
		l.mu.Unlock()
		return nil, true
	}
	p := l.pend
	if p.n == maxBatch {
		l.mu.Unlock()
		return nil, false
	}
	p.addrs[p.n] = addr
	return p.data[p.n][:], true
}

// commit ends a reserve: the slot's first n bytes are the datagram (0:
// nothing, the slot stays free). It releases l.mu and sends the lane's
// batch if it is full.
func (c *batchConn) commit(l *batchLane, n int) {
	p := l.pend
	if n <= 0 {
		l.mu.Unlock()
		return
	}
	p.lens[p.n] = n
	p.n++
	full := p.n == maxBatch
	l.mu.Unlock()
	if full {
		l.flush()
	}
}

// connAt is the relay's batched socket bound to local, or nil.
func (g *Batch) connAt(local netip.AddrPort) *batchConn {
	conns := g.conns.Load()
	if conns == nil {
		return nil
	}
	local = unmapped(local)
	for _, c := range *conns {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && unmapped(a.AddrPort()) == local {
			return c
		}
	}
	return nil
}

// unmapped is a with an IPv4-mapped IPv6 address made IPv4.
func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
