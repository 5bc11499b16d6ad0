package signaling

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{name: "direct", remote: "203.0.113.7:5000", want: "203.0.113.7"},
		{name: "direct, header ignored", remote: "203.0.113.7:5000", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "trusted proxy", remote: "10.1.2.3:443", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "forged entry left of the real client", remote: "10.1.2.3:443", xff: []string{"1.2.3.4, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "chain of trusted proxies", remote: "10.1.2.3:443", xff: []string{"198.51.100.1, 10.9.9.9", "10.8.8.8"}, want: "198.51.100.1"},
		{name: "garbage stops the walk", remote: "10.1.2.3:443", xff: []string{"nonsense, 10.9.9.9"}, want: "10.9.9.9"},
		{name: "trusted proxy without header", remote: "10.1.2.3:443", want: "10.1.2.3"},
		{name: "IPv6 counts by /64", remote: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:5000", want: "2001:db8:1:2::"},
		{name: "IPv4-mapped IPv6", remote: "[::ffff:203.0.113.7]:5000", want: "203.0.113.7"},
		{name: "IPv6 client behind an IPv6 proxy", remote: "[fd00::1]:443", xff: []string{"2001:db8:5:6::9"}, want: "2001:db8:5:6::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, trusted); got.String() != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestConnLimiterForgets: an address with nothing open is forgotten once
// its join bucket has refilled, not before (forgetting it earlier would
// hand it a fresh burst).
func TestConnLimiterForgets(t *testing.T) {
	cfg := Config{MaxPendingPerAddr: 5, JoinRatePerAddr: 0.1, JoinBurstPerAddr: 3, MaxJoinedPerAddr: 5} // refills in 30 s
	l := newConnLimiter(cfg)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1_000_000, 0)
	for i := range 3 {
		if ref := l.open(a, t0); ref != nil {
			t.Fatalf("open %d: %v", i, ref.message)
		}
		if ref := l.join(a, t0); ref != nil {
			t.Fatalf("join %d: %v", i, ref.message)
		}
		l.close(a, true)
	}
	if ref := l.open(a, t0); ref != nil {
		t.Fatal(ref.message)
	}
	if ref := l.join(a, t0); ref == nil || ref.reason != refusedJoinRate {
		t.Fatalf("a 4th join at once: %+v, want %s", ref, refusedJoinRate)
	}
	l.close(a, false)

	// Past the sweep interval but with the bucket still refilling: kept.
	_ = l.open(b, t0.Add(sweepEvery))
	if _, ok := l.addrs[a]; !ok {
		t.Fatal("an address whose bucket is refilling was forgotten: it would get a fresh burst")
	}
	// Refilled and nothing open: forgotten at the next sweep.
	_ = l.open(b, t0.Add(4*sweepEvery))
	if _, ok := l.addrs[a]; ok {
		t.Error("an idle address with a full bucket is still kept")
	}
	if conns, _ := l.load(); conns != 2 {
		t.Errorf("open connections %d, want 2 (b's)", conns)
	}
}

func TestMaxConnectionsFor(t *testing.T) {
	for _, tt := range []struct {
		nofile uint64
		want   int
	}{
		{nofile: 1024, want: 1024 - fdReserve},      // a tenth is less than the reserve
		{nofile: 20000, want: 18000},                // a tenth kept free
		{nofile: 1 << 20, want: 1<<20 - (1<<20)/10}, // containers' usual hard limit
		{nofile: 100, want: 1},                      // below the reserve: still one
	} {
		if got := MaxConnectionsFor(tt.nofile); got != tt.want {
			t.Errorf("MaxConnectionsFor(%d) = %d, want %d", tt.nofile, got, tt.want)
		}
	}
}
