package loadtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestSTUNFlood: what the STUN flood sends are Binding requests with a
// username and an integrity under a key nobody has, from -from.
func TestSTUNFlood(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var s stunFlood
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, "127.0.0.2", rx.LocalAddr().String(), 200) }()

	buf := make([]byte, 1500)
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := rx.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no STUN request arrived: %v", err)
	}
	if !from.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Errorf("sent from %s, want 127.0.0.2", from.IP)
	}
	m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("not a STUN message: %v", err)
	}
	if m.Type != stun.BindingRequest {
		t.Errorf("type %v, want a Binding request", m.Type)
	}
	var user stun.Username
	if err := user.GetFrom(m); err != nil || len(user) == 0 {
		t.Errorf("no USERNAME: %v", err)
	}
	if !m.Contains(stun.AttrMessageIntegrity) || stun.Fingerprint.Check(m) != nil {
		t.Error("no MESSAGE-INTEGRITY, or a bad FINGERPRINT")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.sent.Load() < 10 || s.errs.Load() != 0 {
		t.Errorf("sent %d with %d errors in 300 ms at 200/s", s.sent.Load(), s.errs.Load())
	}
}
