package relaytest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// LoopbackSettings are pion settings for a test peer on this machine:
// loopback candidates only, UDP4, mDNS off.
func LoopbackSettings() webrtc.SettingEngine {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// Dial joins a client of the relay's protocol (URL, loopback and logger
// filled in) and closes it at cleanup.
func (r *Relay) Dial(ctx context.Context, tb testing.TB, cfg client.Config) *client.Client {
	tb.Helper()
	cfg.URL, cfg.Loopback, cfg.Logger = r.URL, true, Logger()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		tb.Fatalf("%s joins %s as %s: %v", cfg.Name, cfg.Room, cfg.Role, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// WaitEvent returns the first event from c that match accepts (nil: any
// of type T), skipping others, and fails tb if none comes before ctx
// ends.
func WaitEvent[T any](ctx context.Context, tb testing.TB, c *client.Client, match func(T) bool) T {
	tb.Helper()
	for {
		select {
		case ev := <-c.Events():
			if e, ok := ev.(T); ok && (match == nil || match(e)) {
				return e
			}
		case <-ctx.Done():
			var zero T
			tb.Fatalf("%s: no %T event before the deadline", c.ID(), zero)
			return zero
		}
	}
}

// StartChecked is Start for a test that starts peers: it registers a
// goroutine-leak check first (so that it runs after every other cleanup,
// the relay's shutdown included) and returns a context bounded by
// deadline.
func StartChecked(t *testing.T, o Options, deadline time.Duration) (*Relay, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return Start(t, o), ctx
}
