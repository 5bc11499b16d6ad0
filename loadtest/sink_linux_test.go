package loadtest

import (
	"net"
	"testing"
	"time"
)

// TestDropMedia: a sink's socket filter drops RTP with a dynamic payload
// type in the kernel and lets ICE (STUN), DTLS, RTCP and static payload
// types through.
func TestDropMedia(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := dropMedia(rx); err != nil {
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	datagrams := []struct {
		name string
		b    []byte
		keep bool
	}{
		{"RTP, Opus 111", []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xfc}, false},
		{"RTP, marker and 96", []byte{0x80, 0x80 | 96, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xfc}, false},
		{"RTP, 127", []byte{0x90, 127, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"STUN binding request", []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, true},
		{"DTLS record", []byte{22, 0xfe, 0xfd, 0, 0}, true},
		{"RTCP sender report", []byte{0x80, 200, 0, 6}, true},
		{"RTCP receiver report", []byte{0x81, 201, 0, 7}, true},
		{"RTP, static payload type 0", []byte{0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1}, true},
	}
	var want []string
	for _, d := range datagrams {
		if _, err := tx.Write(d.b); err != nil {
			t.Fatal(err)
		}
		if d.keep {
			want = append(want, d.name)
		}
	}
	buf := make([]byte, 64)
	for _, name := range want {
		if err := rx.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := rx.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%s: not received: %v", name, err)
		}
		for _, d := range datagrams {
			if string(d.b) == string(buf[:n]) && !d.keep {
				t.Fatalf("%s passed the filter", d.name)
			}
		}
		var got string
		for _, d := range datagrams {
			if string(d.b) == string(buf[:n]) {
				got = d.name
			}
		}
		if got != name {
			t.Fatalf("received %q, want %q next (in order, the media dropped)", got, name)
		}
	}
}
