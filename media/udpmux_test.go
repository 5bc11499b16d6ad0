package media

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

func stunRequest(t testing.TB, username string, extra ...stun.Setter) []byte {
	t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, extra...)
	if username != "" {
		setters = append(setters, stun.NewUsername(username))
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestStunLocalUfrag(t *testing.T) {
	check := stunRequest(t, "relayufrag:peerufrag")
	software := stunRequest(t, "abc:def", stun.NewSoftware("x")) // USERNAME after a padded attribute
	noColon := stunRequest(t, "lonely")
	noUsername := stunRequest(t, "")
	truncated := check[:len(check)-4]
	overrun := append([]byte(nil), check...)
	binary.BigEndian.PutUint16(overrun[stunHeaderSize+2:], 1000) // the first attribute claims 1000 bytes
	rtpLike := make([]byte, 40)
	rtpLike[0] = 0x80
	for _, c := range []struct {
		name string
		b    []byte
		want string
		ok   bool
	}{
		{"a connectivity check", check, "relayufrag", true},
		{"after another attribute", software, "abc", true},
		{"no colon: the whole value", noColon, "lonely", true},
		{"no USERNAME", noUsername, "", false},
		{"truncated", truncated, "", false},
		{"attribute past the end", overrun, "", false},
		{"RTP", rtpLike, "", false},
		{"short", check[:10], "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, ok := stunLocalUfrag(c.b)
			if ok != c.ok || string(u) != c.want {
				t.Errorf("got %q %v, want %q %v", u, ok, c.want, c.ok)
			}
		})
	}
}

// muxFixture is a demux on loopback read by one socket reader (so that
// datagrams are routed in the order they were sent), and senders.
type muxFixture struct {
	t     *testing.T
	ctx   context.Context
	m     *demux
	d     *Direct
	local *net.UDPAddr
}

func newMuxFixture(t *testing.T) *muxFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	t.Cleanup(cancel)
	o := ListenOptions{Direct: true, Readers: 1, direct: newDirect()}
	bc, err := listenBatchConn("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &Batch{}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bc.mux.Close() })
	return &muxFixture{t: t, ctx: ctx, m: bc.mux, d: o.direct, local: bc.LocalAddr().(*net.UDPAddr)}
}

// peer is a loopback socket standing for a remote peer.
func (f *muxFixture) peer() *net.UDPConn {
	f.t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (f *muxFixture) conn(ufrag string) *muxHandle {
	f.t.Helper()
	c, err := f.m.GetConn(ufrag, f.local)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	if err := c.SetReadDeadline(time.Now().Add(peerDeadline)); err != nil {
		f.t.Fatal(err)
	}
	return c.(*muxHandle)
}

func (f *muxFixture) send(from *net.UDPConn, b []byte) {
	f.t.Helper()
	if _, err := from.WriteToUDP(b, f.local); err != nil {
		f.t.Fatal(err)
	}
}

// waitStats waits until cond holds of the counters.
func (f *muxFixture) waitStats(what string, cond func(DirectStats) bool) {
	f.t.Helper()
	for !cond(f.d.Stats()) {
		if f.ctx.Err() != nil {
			f.t.Fatalf("%s: not before the deadline (counters %+v)", what, f.d.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// expect reads c's next datagram and wants it to be want, from from.
func (f *muxFixture) expect(c *muxHandle, want []byte, from *net.UDPConn) {
	f.t.Helper()
	b := make([]byte, 1500)
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		f.t.Fatalf("read on %q: %v", c.c.ufrag, err)
	}
	if string(b[:n]) != string(want) || addr != from.LocalAddr().(*net.UDPAddr).AddrPort() {
		f.t.Fatalf("%q read %q from %v, want %q from %v", c.c.ufrag, b[:n], addr, want, from.LocalAddr())
	}
}

// claim has c write to p, as an agent's check or answer would: p's
// address becomes c's. p reads what was written.
func (f *muxFixture) claim(c *muxHandle, p *net.UDPConn) {
	f.t.Helper()
	if _, err := c.WriteTo([]byte("hello "+c.c.ufrag), p.LocalAddr()); err != nil {
		f.t.Fatal(err)
	}
	b := make([]byte, 64)
	_ = p.SetReadDeadline(time.Now().Add(peerDeadline))
	n, err := p.Read(b)
	if err != nil || string(b[:n]) != "hello "+c.c.ufrag {
		f.t.Fatalf("the peer read %q, %v: want the connection's write", b[:n], err)
	}
}

// TestUDPMuxRouting: what the relay's UDP mux does with each datagram
// the socket readers leave to it: by the STUN USERNAME's local ufrag, by
// the address a connection wrote to, or dropped and counted.
func TestUDPMuxRouting(t *testing.T) {
	defer goleak.VerifyNone(t)

	t.Run("unknown source, not STUN", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("known")
		stranger, p := f.peer(), f.peer()
		f.claim(c, p)
		f.send(stranger, []byte("from nowhere"))
		f.waitStats("the stranger's datagram dropped", func(s DirectStats) bool { return s.Unrouted == 1 })
		f.send(p, []byte("marker"))
		f.expect(c, []byte("marker"), p) // the stranger's never reached it
		if s := f.d.Stats(); s.Handoffs != 1 || s.Dropped != 0 {
			t.Errorf("counters %+v, want 1 handoff, no drop for a full queue", s)
		}
	})

	t.Run("STUN with an unknown ufrag", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("known")
		stranger := f.peer()
		f.send(stranger, stunRequest(t, "unknown:peer"))
		f.send(stranger, stunRequest(t, "")) // no USERNAME at all
		f.waitStats("the checks dropped", func(s DirectStats) bool { return s.Unrouted == 2 })
		marker := stunRequest(t, "known:peer")
		f.send(stranger, marker)
		f.expect(c, marker, stranger)
	})

	t.Run("STUN with a known ufrag does not claim the address", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("known")
		p := f.peer()
		check := stunRequest(t, "known:peer")
		f.send(p, check)
		f.expect(c, check, p)
		// Until the connection answers (writes), the address is nobody's.
		f.send(p, []byte("dtls-ish"))
		f.waitStats("the datagram dropped", func(s DirectStats) bool { return s.Unrouted == 1 })
		f.claim(c, p)
		f.send(p, []byte("dtls-ish"))
		f.expect(c, []byte("dtls-ish"), p)
	})

	t.Run("an address moves to the connection its check names", func(t *testing.T) {
		f := newMuxFixture(t)
		old, renewed := f.conn("old"), f.conn("new")
		p := f.peer()
		f.claim(old, p)
		f.send(p, []byte("one"))
		f.expect(old, []byte("one"), p)
		// An ICE restart: the peer's check names the new ufrag, from the
		// address the old connection holds.
		check := stunRequest(t, "new:peer2")
		f.send(p, check)
		f.expect(renewed, check, p)
		f.claim(renewed, p) // the new agent answers
		f.send(p, []byte("two"))
		f.expect(renewed, []byte("two"), p)
		f.m.mu.RLock()
		holder, oldHas := f.m.addrs[addrKey(p.LocalAddr().(*net.UDPAddr).AddrPort())], len(old.c.remotes) != 0
		f.m.mu.RUnlock()
		if holder != renewed.c || oldHas {
			t.Fatalf("the address is %v's, the old connection still lists %v: want the new one's only", holder.ufrag, old.c.remotes)
		}
		// The old connection closing leaves the address with the new.
		_ = old.Close()
		f.send(p, []byte("three"))
		f.expect(renewed, []byte("three"), p)
		_ = renewed.Close()
		f.send(p, []byte("four"))
		f.waitStats("the datagram after both closed dropped", func(s DirectStats) bool { return s.Unrouted == 1 })
		f.m.mu.RLock()
		left := len(f.m.addrs) + len(f.m.ufrags[0]) + len(f.m.ufrags[1])
		f.m.mu.RUnlock()
		if left != 0 {
			t.Errorf("%d addresses and ufrags left after every connection closed", left)
		}
	})

	t.Run("a full queue drops without blocking the reader", func(t *testing.T) {
		f := newMuxFixture(t)
		slow, other := f.conn("slow"), f.conn("other")
		p, q := f.peer(), f.peer()
		f.claim(slow, p)
		f.claim(other, q)
		const extra = 10
		for i := range connQueueMax + extra {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(i))
			f.send(p, b[:])
			if i%64 == 63 {
				// Let the reader keep up, so that the socket's own
				// buffer never overflows: the drops counted are the mux's.
				f.waitStats("routed", func(s DirectStats) bool { return s.Handoffs+s.Dropped == uint64(i+1) })
			}
		}
		f.waitStats("every datagram routed or dropped", func(s DirectStats) bool { return s.Handoffs+s.Dropped == connQueueMax+extra })
		if s := f.d.Stats(); s.Handoffs != connQueueMax || s.Dropped != extra {
			t.Errorf("counters %+v, want %d queued and %d dropped", s, connQueueMax, extra)
		}
		// The reader went on: another connection's datagram arrives while
		// the slow one's queue is still full.
		f.send(q, []byte("still here"))
		f.expect(other, []byte("still here"), q)
		b := make([]byte, 1500)
		for i := range connQueueMax {
			n, _, err := slow.ReadFromAddrPort(b)
			if err != nil || n != 4 || binary.BigEndian.Uint32(b) != uint32(i) {
				t.Fatalf("queued datagram %d: %d bytes % x, %v: want the first %d in order", i, n, b[:n], err, connQueueMax)
			}
		}
	})
}

// TestUDPMuxConnLifecycle: handles, closing, deadlines and bad calls.
func TestUDPMuxConnLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := make([]byte, 1500)

	t.Run("Close ends a waiting read", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("u")
		done := make(chan error)
		go func() { _, _, err := c.ReadFromAddrPort(b); done <- err }()
		_ = c.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("read ended with %v, want net.ErrClosed (pion's read loop exits quietly on it)", err)
			}
		case <-f.ctx.Done():
			t.Fatal("the read did not return after Close")
		}
	})

	t.Run("RemoveConnByUfrag ends reads and frees the address", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("u")
		p := f.peer()
		f.claim(c, p)
		f.send(p, []byte("queued, then dropped"))
		f.waitStats("queued", func(s DirectStats) bool { return s.Handoffs == 1 })
		f.m.RemoveConnByUfrag("u")
		if _, _, err := c.ReadFromAddrPort(b); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after RemoveConnByUfrag: %v, want net.ErrClosed", err)
		}
		if _, err := c.WriteTo([]byte("x"), p.LocalAddr()); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("write after RemoveConnByUfrag: %v, want io.ErrClosedPipe (what pion's candidate expects)", err)
		}
		// The agent still sets a deadline and closes the handle: no error.
		if err := c.SetDeadline(time.Now()); err != nil {
			t.Errorf("SetDeadline on a removed connection's handle: %v", err)
		}
		f.send(p, []byte("after"))
		f.waitStats("dropped", func(s DirectStats) bool { return s.Unrouted == 1 })
		if again := f.conn("u"); again.c == c.c {
			t.Error("GetConn after RemoveConnByUfrag gave the removed connection")
		}
	})

	t.Run("handles share a connection, which closes with the last", func(t *testing.T) {
		f := newMuxFixture(t)
		h1, h2 := f.conn("u"), f.conn("u")
		if h1.c != h2.c {
			t.Fatal("two GetConn for one ufrag gave two connections")
		}
		p := f.peer()
		f.claim(h1, p)
		_ = h1.Close()
		if _, _, err := h1.ReadFromAddrPort(b); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on a closed handle: %v, want net.ErrClosed", err)
		}
		f.send(p, []byte("for h2"))
		f.expect(h2, []byte("for h2"), p)
		_ = h2.Close()
		f.send(p, []byte("for nobody"))
		f.waitStats("dropped", func(s DirectStats) bool { return s.Unrouted == 1 })
	})

	t.Run("read deadlines", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("u")
		if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromAddrPort(b); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
		}
		if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromAddrPort(b); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read that waited past its deadline: %v, want os.ErrDeadlineExceeded", err)
		}
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		p := f.peer()
		f.claim(c, p)
		f.send(p, []byte("no deadline"))
		f.expect(c, []byte("no deadline"), p)
		_ = c.Close()
		if err := c.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("deadline on a closed handle: %v, want net.ErrClosed", err)
		}
	})

	t.Run("bad calls", func(t *testing.T) {
		f := newMuxFixture(t)
		other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: f.local.Port}
		if _, err := f.m.GetConn("u", other); !errors.Is(err, errWrongLocalAddr) {
			t.Errorf("GetConn on another address: %v, want errWrongLocalAddr", err)
		}
		c := f.conn("u")
		if _, err := c.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, errNotUDPAddr) {
			t.Errorf("WriteTo a TCP address: %v, want errNotUDPAddr", err)
		}
		if _, err := c.WriteToAddrPort([]byte("x"), netip.AddrPort{}); err == nil {
			t.Error("a write to the zero address succeeded")
		}
		_ = f.m.Close()
		if _, err := f.m.GetConn("v", f.local); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("GetConn after Close: %v, want io.ErrClosedPipe", err)
		}
		if _, _, err := c.ReadFromAddrPort(b); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after the mux closed: %v, want net.ErrClosed", err)
		}
	})

	t.Run("short buffer", func(t *testing.T) {
		f := newMuxFixture(t)
		c := f.conn("u")
		p := f.peer()
		f.claim(c, p)
		f.send(p, []byte("longer than four"))
		if _, _, err := c.ReadFromAddrPort(make([]byte, 4)); !errors.Is(err, io.ErrShortBuffer) {
			t.Errorf("read into 4 bytes: %v, want io.ErrShortBuffer", err)
		}
		f.send(p, []byte("next"))
		f.expect(c, []byte("next"), p) // the long one was dropped, not kept
	})
}

// TestUDPMuxRouteAllocs: routing a datagram to its connection (by
// address, by a check's ufrag) and reading it allocates nothing.
func TestUDPMuxRouteAllocs(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's cleanups
	f := newMuxFixture(t)
	c := f.conn("ufrag")
	if err := c.SetReadDeadline(time.Time{}); err != nil { // a deadline's timer allocates
		t.Fatal(err)
	}
	p := f.peer()
	f.claim(c, p)
	from := p.LocalAddr().(*net.UDPAddr).AddrPort()
	media := make([]byte, 200)
	media[0] = 0x80
	check := stunRequest(t, "ufrag:peer")
	buf := make([]byte, bufpool.Size)
	for _, dg := range [][]byte{media, check} {
		step := func() {
			f.m.route(dg, from)
			if n, _, err := c.ReadFromAddrPort(buf); err != nil || n != len(dg) {
				t.Fatalf("read %d, %v", n, err)
			}
		}
		for range 2 * connQueueMin {
			step()
		}
		if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
			t.Errorf("%d-byte datagram: %v allocations to route and read, want 0", len(dg), allocs)
		}
	}
}
