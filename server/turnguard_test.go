package server

import (
	"net"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMediaGuard(t *testing.T) {
	media := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:50000"), netip.MustParseAddrPort("[fd00::5]:50000")}
	g, err := newMediaGuard(media, []string{"203.0.113.7"}, prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"}))
	if err != nil {
		t.Fatal(err)
	}
	if ip := g.relayIP(); ip != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("relay IP %v, want the IPv4 media address", ip)
	}
	for _, tt := range []struct {
		peer, to string // to "": refused
	}{
		{"10.0.0.5:50000", "10.0.0.5:50000"},
		{"[::ffff:10.0.0.5]:50000", "10.0.0.5:50000"},
		{"[fd00::5]:50000", "[fd00::5]:50000"},
		{"203.0.113.7:50000", "10.0.0.5:50000"}, // announced: to the local address, not through the NAT
		{"203.0.113.7:22", ""},
		{"10.0.0.5:22", ""},
		{"10.0.0.6:50000", ""},
		{"127.0.0.1:50000", ""},
		{"198.51.100.1:3478", ""},
	} {
		got, ok := g.toMedia(netip.MustParseAddrPort(tt.peer))
		if want := tt.to; (want == "") == ok || ok && got != netip.MustParseAddrPort(want) {
			t.Errorf("toMedia(%s) = %v, %v; want %q", tt.peer, got, ok, want)
		}
	}
	for _, tt := range []struct {
		src, shown string // shown "": dropped
	}{
		{"10.0.0.5:50000", "203.0.113.7:50000"},
		{"[fd00::5]:50000", "[fd00::5]:50000"}, // no IPv6 announced
		{"10.0.0.5:50001", ""},
		{"198.51.100.1:50000", ""},
	} {
		got, ok := g.fromMedia(netip.MustParseAddrPort(tt.src))
		if want := tt.shown; (want == "") == ok || ok && got != netip.MustParseAddrPort(want) {
			t.Errorf("fromMedia(%s) = %v, %v; want %q", tt.src, got, ok, want)
		}
	}
	for ip, want := range map[string]bool{"10.0.0.5": true, "203.0.113.7": true, "fd00::5": true, "::ffff:10.0.0.5": true, "10.0.0.6": false, "127.0.0.1": false} {
		if got := g.allowedIP(net.ParseIP(ip)); got != want {
			t.Errorf("allowedIP(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestMediaGuardErrors(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
	if _, err := newMediaGuard(nil, nil, c); err == nil {
		t.Error("a guard without media addresses")
	}
	if _, err := newMediaGuard([]netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:50000")}, []string{"relay.example"}, c); err == nil {
		t.Error("a guard with a name for an announced IP")
	}
}
