package media

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lianmai/relay/bufpool"
)

// muxConn is one ICE agent's connection on a demux (udpmux.go): its
// ufrag, the remote addresses it has written to, and the queue of
// datagrams the socket readers routed to it.
type muxConn struct {
	m     *demux
	ufrag string
	fam   int         // index in demux.ufrags
	refs  int         // guarded by m.mu: handles not yet closed
	gone  atomic.Bool // set under m.mu: removed from the mux (its queue closed, or about to be)

	mu      sync.Mutex       // guards remotes; taken after m.mu when both are
	remotes []netip.AddrPort // addrKeys written to; those still c's in m.addrs are removed with c

	q connQueue
}

// noteWrite registers a (a datagram is being written to it) as c's,
// unless it is already: pion's mux does the same, so that the answers to
// the agent's checks, and then DTLS and SRTP, come back to it.
func (c *muxConn) noteWrite(a netip.AddrPort) {
	key := addrKey(a)
	c.mu.Lock()
	known := slices.Contains(c.remotes, key)
	c.mu.Unlock()
	if !known {
		c.m.register(c, key)
	}
}

// forget drops key from c's addresses: another connection took it.
func (c *muxConn) forget(key netip.AddrPort) {
	c.mu.Lock()
	c.remotes = slices.DeleteFunc(c.remotes, func(a netip.AddrPort) bool { return a == key })
	c.mu.Unlock()
}

// connQueue is a connection's datagrams waiting for its reader: a ring
// that grows from connQueueMin to connQueueMax datagrams. Written by the
// socket readers (push never waits), read by the connection's handles.
type connQueue struct {
	mu     sync.Mutex
	ring   []queuedDatagram // owned by the queue: each packet until pop hands it out or close releases it
	head   int
	n      int
	closed bool
	wake   chan struct{} // one token: something was pushed (or a reader passes it on); never closed
	done   chan struct{} // closed by close
}

type queuedDatagram struct {
	pkt  *bufpool.Packet
	from netip.AddrPort
}

type pushResult int

const (
	pushQueued pushResult = iota
	pushFull
	pushClosed
)

func (q *connQueue) init() {
	q.wake = make(chan struct{}, 1)
	q.done = make(chan struct{})
}

// push queues pkt (from from) unless the queue is full or closed; the
// caller keeps pkt then.
func (q *connQueue) push(pkt *bufpool.Packet, from netip.AddrPort) pushResult {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return pushClosed
	case q.n == connQueueMax:
		q.mu.Unlock()
		return pushFull
	case q.n == len(q.ring):
		q.growLocked()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = queuedDatagram{pkt: pkt, from: from}
	q.n++
	q.mu.Unlock()
	q.signal()
	return pushQueued
}

// growLocked doubles the ring (a power of two), keeping the order.
func (q *connQueue) growLocked() {
	ring := make([]queuedDatagram, max(connQueueMin, 2*len(q.ring)))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}

// signal wakes one waiting reader, if none is about to wake.
func (q *connQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest datagram; ok false if there is none, closed true
// if there will be none.
func (q *connQueue) pop() (dg queuedDatagram, ok, closed bool) {
	q.mu.Lock()
	if q.n == 0 {
		closed = q.closed
		q.mu.Unlock()
		return dg, false, closed
	}
	dg = q.ring[q.head]
	q.ring[q.head] = queuedDatagram{}
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	more := q.n > 0
	q.mu.Unlock()
	if more {
		// Another reader (a second handle of the connection) may be
		// waiting: the token this one took was for one datagram.
		q.signal()
	}
	return dg, true, false
}

// close ends the queue: what it holds is released, readers get
// net.ErrClosed, pushes are refused. Closing twice is a no-op.
func (q *connQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for i := range q.n {
		j := (q.head + i) & (len(q.ring) - 1)
		q.ring[j].pkt.Release()
		q.ring[j] = queuedDatagram{}
	}
	q.n, q.ring = 0, nil
	q.mu.Unlock()
	close(q.done)
}

// muxHandle is what GetConn returns: a net.PacketConn (and pion's
// AddrPortReaderWriter) on a muxConn. The agent may be given several
// handles on one connection (one per host candidate an address rewrite
// makes of the port); each closes on its own, the connection with the
// last.
type muxHandle struct {
	c        *muxConn
	done     chan struct{} // closed by Close
	once     sync.Once
	deadline atomic.Int64 // read deadline, Unix nanoseconds; 0: none
}

func newMuxHandle(c *muxConn) *muxHandle {
	return &muxHandle{c: c, done: make(chan struct{})}
}

// ReadFromAddrPort waits for the connection's next datagram and copies it
// into b. After Close (of the handle, or of the connection by the mux) it
// returns net.ErrClosed, which ends the ICE candidate's read loop
// quietly; io.ErrShortBuffer, the datagram dropped, if b is too small
// (pion's mux does the same; the agent's buffers are larger than any
// datagram). A read deadline applies to the reads that start after it
// is set: see SetReadDeadline.
func (h *muxHandle) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	var expired <-chan time.Time
	if dl := h.deadline.Load(); dl != 0 {
		wait := time.Until(time.Unix(0, dl))
		if wait <= 0 {
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	q := &h.c.q
	for {
		select {
		case <-h.done:
			return 0, netip.AddrPort{}, net.ErrClosed
		default:
		}
		dg, ok, closed := q.pop()
		if ok {
			n := copy(b, dg.pkt.Bytes())
			short := n < len(dg.pkt.Bytes())
			dg.pkt.Release()
			if short {
				return 0, netip.AddrPort{}, io.ErrShortBuffer
			}
			return n, dg.from, nil
		}
		if closed {
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		select {
		case <-q.wake:
		case <-q.done:
		case <-h.done:
		case <-expired:
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
	}
}

// ReadFrom is ReadFromAddrPort for net.PacketConn.
func (h *muxHandle) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := h.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// errNotUDPAddr: WriteTo was given an address that is not UDP.
var errNotUDPAddr = errors.New("media: the UDP mux writes to UDP addresses only")

// WriteToAddrPort writes b to addr through the relay's socket (batched
// while a fan-out's batch is open, as every write of pion's), and makes
// addr the connection's. io.ErrClosedPipe once the handle or the
// connection is closed, which pion's candidate expects.
func (h *muxHandle) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if h.closed() || h.c.gone.Load() {
		return 0, io.ErrClosedPipe
	}
	if !addr.IsValid() {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: h.c.m.local, Err: errors.New("invalid address")}
	}
	h.c.noteWrite(addr)
	return h.c.m.bc.WriteToAddrPort(b, addr)
}

// WriteTo is WriteToAddrPort for net.PacketConn.
func (h *muxHandle) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: h.c.m.local, Addr: addr, Err: errNotUDPAddr}
	}
	return h.WriteToAddrPort(b, ua.AddrPort())
}

func (h *muxHandle) closed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// Close closes the handle: its reads return net.ErrClosed; the
// connection closes with its last handle.
func (h *muxHandle) Close() error {
	h.once.Do(func() {
		close(h.done)
		h.c.m.release(h.c)
	})
	return nil
}

// LocalAddr is the mux's address.
func (h *muxHandle) LocalAddr() net.Addr { return h.c.m.local }

// SetReadDeadline sets the deadline of the reads that start after it
// (a read already waiting keeps its own), as pion's muxed connections
// do. Pion's agent sets one only when it closes a candidate, right
// before closing the connection: the read it interrupts must then end
// with the close's net.ErrClosed, which the candidate's read loop takes
// quietly, rather than with a timeout, which it would log as a failure.
func (h *muxHandle) SetReadDeadline(t time.Time) error {
	if h.closed() {
		return net.ErrClosed
	}
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	h.deadline.Store(ns)
	return nil
}

// SetWriteDeadline does nothing: a write never waits for a peer (at most
// for the batch it joins to be sent).
func (h *muxHandle) SetWriteDeadline(time.Time) error {
	if h.closed() {
		return net.ErrClosed
	}
	return nil
}

// SetDeadline is SetReadDeadline (writes do not wait).
func (h *muxHandle) SetDeadline(t time.Time) error { return h.SetReadDeadline(t) }
