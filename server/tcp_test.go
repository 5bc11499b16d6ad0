package server

import (
	"errors"
	"net"
	"testing"
)

// TestClosingListener: closing the ICE-TCP listener closes the
// connections it accepted that pion still holds (waiting for their first
// STUN request), so that the TCP mux's Close, which waits for them, and
// the relay's shutdown do not wait out their timeout.
func TestClosingListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
	dialed := make([]net.Conn, 2)
	accepted := make([]net.Conn, 2)
	for i := range dialed {
		if dialed[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer dialed[i].Close()
		if accepted[i], err = cl.Accept(); err != nil {
			t.Fatal(err)
		}
	}
	// One closed by its user before the listener: it leaves the set.
	if err := accepted[0].Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(cl.conns); n != 1 {
		t.Fatalf("%d connections tracked after one of two closed, want 1", n)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := accepted[1].Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reading an accepted connection after the listener closed: %v, want net.ErrClosed", err)
	}
	if _, err := cl.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
