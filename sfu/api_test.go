package sfu

import (
	"net"
	"testing"
)

func TestRemoteAllowed(t *testing.T) {
	for _, tt := range []struct {
		ip             string
		loopback, want bool
	}{
		{"203.0.113.7", false, true},
		{"192.168.1.20", false, true},
		{"2001:db8::1", false, true},
		{"127.0.0.1", false, false},
		{"::1", false, false},
		{"0.0.0.0", false, false},
		{"169.254.10.1", false, false},
		{"fe80::1", false, false},
		{"224.0.0.251", false, false},
		{"255.255.255.255", false, false},
		{"127.0.0.1", true, true},
		{"192.168.1.20", true, false},
	} {
		if got := remoteAllowed(net.ParseIP(tt.ip), tt.loopback); got != tt.want {
			t.Errorf("remoteAllowed(%s, loopback %v) = %v, want %v", tt.ip, tt.loopback, got, tt.want)
		}
	}
}
