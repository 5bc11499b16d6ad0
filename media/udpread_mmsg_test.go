package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestBatchReader: datagrams that queued while nobody read come out of
// one read, up to readBatch, in order, each with its sender's address
// and bytes; a closed socket ends the reads with net.ErrClosed.
func TestBatchReader(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	from := tx.LocalAddr().(*net.UDPAddr).AddrPort()
	const sent = readBatch + 3
	for i := range sent {
		if _, err := tx.Write(fmt.Appendf(nil, "packet %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newBatchReader(rx)
	if err != nil {
		t.Fatal(err)
	}
	stop := time.AfterFunc(10*time.Second, func() { _ = rx.Close() }) // a deadline
	defer stop.Stop()
	got := 0
	for calls := 0; got < sent; calls++ {
		n, err := r.next()
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		if n < 1 || n > readBatch {
			t.Fatalf("a read returned %d datagrams, want 1 to %d", n, readBatch)
		}
		if calls == 0 && batchReads && n != readBatch {
			t.Errorf("the first read took %d of the %d datagrams queued, want %d (recvmmsg)", n, sent, readBatch)
		}
		for i := range n {
			b, addr := r.datagram(i)
			if want := fmt.Sprintf("packet %d", got); string(b) != want {
				t.Fatalf("datagram %d: %q, want %q", got, b, want)
			}
			if addr != from {
				t.Fatalf("datagram %d from %v, want %v", got, addr, from)
			}
			got++
		}
	}
	_ = rx.Close()
	if _, err := r.next(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read of a closed socket: %v, want net.ErrClosed", err)
	}
}

// TestBatchReaderZeroAllocs: the media readers' reads allocate nothing.
func TestBatchReaderZeroAllocs(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	r, err := newBatchReader(rx)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("an audio frame")
	var addr netip.AddrPort
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := tx.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		if _, err := r.next(); err != nil {
			t.Fatal(err)
		}
		_, addr = r.datagram(0)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per read, want 0", allocs)
	}
	if addr != tx.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("from %v, want %v", addr, tx.LocalAddr())
	}
}
