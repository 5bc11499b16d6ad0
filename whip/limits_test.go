package whip

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lianmai/relay/signaling"
)

// TestAddrLimits: the per-address limits count open sessions and the join
// bucket, release what a session held, leave other addresses alone, and
// forget an idle address once its bucket has refilled.
func TestAddrLimits(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	now := time.Unix(1000, 0)
	t.Run("open sessions", func(t *testing.T) {
		l := newAddrLimits(signaling.Config{MaxJoinedPerAddr: 2, JoinRatePerAddr: -1})
		for i := range 2 {
			if err, _ := l.admit(a, now); err != nil {
				t.Fatalf("session %d refused: %s", i+1, err.msg)
			}
		}
		if err, _ := l.admit(a, now); err == nil || err.status != http.StatusTooManyRequests {
			t.Fatalf("third session: %v, want 429", err)
		}
		if err, _ := l.admit(b, now); err != nil {
			t.Fatalf("another address refused: %s", err.msg)
		}
		l.release(a)
		if err, _ := l.admit(a, now); err != nil {
			t.Fatalf("a session after a release refused: %s", err.msg)
		}
	})
	t.Run("join bucket", func(t *testing.T) {
		l := newAddrLimits(signaling.Config{JoinRatePerAddr: 1, JoinBurstPerAddr: 2, MaxJoinedPerAddr: -1})
		for range 2 {
			if err, _ := l.admit(a, now); err != nil {
				t.Fatal(err.msg)
			}
		}
		err, wait := l.admit(a, now)
		if err == nil || err.status != http.StatusTooManyRequests || wait != time.Second {
			t.Fatalf("third join at once: %v, wait %v; want 429 and 1s", err, wait)
		}
		if err, _ := l.admit(a, now.Add(time.Second)); err != nil {
			t.Fatalf("a join a second later refused: %s", err.msg)
		}
	})
	t.Run("sweep", func(t *testing.T) {
		l := newAddrLimits(signaling.Config{JoinRatePerAddr: 1, JoinBurstPerAddr: 2})
		if err, _ := l.admit(a, now); err != nil {
			t.Fatal(err.msg)
		}
		l.release(a)
		_, _ = l.admit(b, now.Add(sweepEvery)) // sweeps: a refilled in 1 s
		if _, kept := l.addrs[a]; kept {
			t.Error("an idle address with a full bucket was not forgotten")
		}
		if _, kept := l.addrs[b]; !kept {
			t.Error("an address with a session open was forgotten")
		}
	})
}
