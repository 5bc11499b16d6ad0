package server

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (127.0.0.1 and 127.0.0.2 are two client addresses on Linux's lo).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedByPeer says whether the relay closed c: a read returns EOF (or a
// reset) at once instead of timing out.
func closedByPeer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return false
	case err == nil:
		t.Fatal("the relay sent a byte on a TCP media connection before any request")
	}
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// TestTCPLimitPerAddress: one address holding -max-tcp-per-ip TCP media
// connections gets its next one closed at once (counted by listener),
// while another address still connects; closing one gives the slot back.
// The cap counts ICE-TCP and TURN's TCP listener together.
func TestTCPLimitPerAddress(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	reg := prometheus.NewRegistry()
	lim, err := newTCPLimit(3, reg)
	if err != nil {
		t.Fatal(err)
	}
	listen := func(name string) (*closingListener, chan net.Conn) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl := newClosingListener(ln, lim, name)
		accepted := make(chan net.Conn, 16)
		go func() {
			for {
				c, err := cl.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}
		}()
		t.Cleanup(func() {
			_ = cl.Close()
			for range accepted { // until the accept loop has ended
			}
		})
		return cl, accepted
	}
	ice, iceAccepted := listen("ice-tcp")
	turn, turnAccepted := listen("turn-tcp")
	take := func(ch chan net.Conn) net.Conn {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("a connection under the cap was not accepted")
			return nil
		}
	}

	// Two on ICE-TCP and one on TURN from 127.0.0.1: at the cap.
	dialFrom(t, "127.0.0.1", ice.Addr().String())
	first := take(iceAccepted)
	keep := dialFrom(t, "127.0.0.1", ice.Addr().String())
	take(iceAccepted)
	dialFrom(t, "127.0.0.1", turn.Addr().String())
	take(turnAccepted)
	if closedByPeer(t, keep) {
		t.Fatal("a connection under the cap was closed")
	}

	// The fourth, on either listener, is closed at once and never accepted.
	over := dialFrom(t, "127.0.0.1", turn.Addr().String())
	if !closedByPeer(t, over) {
		t.Fatal("a connection over the cap was kept open")
	}
	select {
	case <-turnAccepted:
		t.Fatal("a connection over the cap reached the caller")
	default:
	}
	if got := testutil.ToFloat64(lim.refused.WithLabelValues("turn-tcp")); got != 1 {
		t.Fatalf("relay_tcp_refused_total{listener=turn-tcp} = %v, want 1", got)
	}

	// Another address is not held to the first one's count.
	other := dialFrom(t, "127.0.0.2", ice.Addr().String())
	take(iceAccepted)
	if closedByPeer(t, other) {
		t.Fatal("another address's connection was closed")
	}

	// Closing one of the first address's gives its slot back.
	_ = first.Close()
	again := dialFrom(t, "127.0.0.1", ice.Addr().String())
	take(iceAccepted)
	if closedByPeer(t, again) {
		t.Fatal("a connection after one was closed was refused: the slot did not come back")
	}
}

// TestAddrKey: IPv4 by address, IPv6 by /64, v4-mapped as IPv4.
func TestAddrKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7:4000", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:4000", "2001:db8:1:2::"},
		{"[::ffff:192.0.2.7]:4000", "192.0.2.7"},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := addrKey(a).String(); got != c.want {
			t.Errorf("addrKey(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
