package media

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBatchConn: writes inside a batch leave only when the batch ends, all
// of them and in order; writes outside go out at once; a batch larger than
// maxBatch is sent in several.
func TestBatchConn(t *testing.T) {
	tests := []struct {
		name    string
		batched bool
		n       int
	}{
		{name: "no batch", batched: false, n: 3},
		{name: "one batch", batched: true, n: 10},
		{name: "batch over maxBatch", batched: true, n: 2*maxBatch + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Batch{}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			bc := newBatchConn(c, g)
			defer bc.Close()
			rx, to := receiver(t)

			if tt.batched {
				g.begin()
			}
			for i := range tt.n {
				msg := fmt.Appendf(nil, "packet %d", i)
				if n, err := bc.WriteToAddrPort(msg, to); err != nil || n != len(msg) {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
			}
			buf := make([]byte, 1500)
			if tt.batched {
				// Only what filled whole batches has left.
				sent := tt.n / maxBatch * maxBatch
				for i := range sent {
					readPacket(t, rx, buf, i)
				}
				if err := rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if n, _, err := rx.ReadFromUDPAddrPort(buf); err == nil {
					t.Fatalf("%q arrived before the batch ended", buf[:n])
				}
				g.end()
				for i := sent; i < tt.n; i++ {
					readPacket(t, rx, buf, i)
				}
			} else {
				for i := range tt.n {
					readPacket(t, rx, buf, i)
				}
			}
			for i, l := range bc.lanes {
				if l.pend.n != 0 {
					t.Errorf("lane %d: %d datagrams still pending", i, l.pend.n)
				}
			}
		})
	}
}

// receiver is a loopback UDP socket with room for a burst, closed when
// the test ends, and its address.
func receiver(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	if err := rx.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	return rx, rx.LocalAddr().(*net.UDPAddr).AddrPort()
}

func readPacket(t *testing.T, rx *net.UDPConn, buf []byte, i int) {
	t.Helper()
	if err := rx.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, _, err := rx.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("packet %d: %v", i, err)
	}
	if want := fmt.Sprintf("packet %d", i); string(buf[:n]) != want {
		t.Fatalf("got %q, want %q", buf[:n], want)
	}
}

// TestBatchLanes: with a lane per P, writers in batches of their own on
// several goroutines (the fan-out workers) get every datagram out, each
// destination's in the order written, whichever lanes they took.
func TestBatchLanes(t *testing.T) {
	const writers, dests, rounds = 3, 4, 200
	g := &Batch{}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bc := newBatchConnLanes(c, g, 2)
	defer bc.Close()
	if bc.batchable && len(bc.lanes) != 2 {
		t.Fatalf("%d lanes, want 2", len(bc.lanes))
	}
	type rx struct {
		conn *net.UDPConn
		to   netip.AddrPort
	}
	var rxs [writers][dests]rx
	for w := range writers {
		for d := range dests {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetReadBuffer(1 << 20); err != nil {
				t.Fatal(err)
			}
			rxs[w][d] = rx{conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()}
		}
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				g.begin()
				for d := range dests {
					if _, err := bc.WriteToAddrPort(fmt.Appendf(nil, "packet %d", i), rxs[w][d].to); err != nil {
						t.Errorf("writer %d: %v", w, err)
					}
				}
				g.end()
			}
		})
	}
	wg.Wait()
	buf := make([]byte, 1500)
	for w := range writers {
		for d := range dests {
			for i := range rounds {
				readPacket(t, rxs[w][d].conn, buf, i)
			}
		}
	}
}

// TestBatchConnWriteNow: a write outside a batch that the kernel refuses
// (port 0) returns the error with the destination, and sends nothing;
// one that it takes allocates nothing.
func TestBatchConnWriteNow(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bc := newBatchConn(c, &Batch{})
	defer bc.Close()
	if !bc.batchable {
		t.Skip("no sendmmsg on this platform: writes go through net.UDPConn")
	}
	bad := netip.MustParseAddrPort("127.0.0.1:0")
	if n, err := bc.WriteToAddrPort([]byte("x"), bad); err == nil || n != 0 {
		t.Errorf("write to %v: %d, %v; want 0 and an error", bad, n, err)
	} else if want := bad.String(); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the destination %s", err, want)
	}
	rx, to := receiver(t)
	msg := []byte("packet 0")
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := bc.WriteToAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per write, want 0", allocs)
	}
	readPacket(t, rx, make([]byte, 1500), 0)
}
