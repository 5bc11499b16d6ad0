package sfu

import (
	"log/slog"
	"testing"
	"time"

	"github.com/lianmai/relay/media"
	"go.uber.org/goleak"
)

// newLoopbackSFU is an SFU on a loopback UDP port with the given grace
// period, closed at cleanup, after which no goroutine may be left.
func newLoopbackSFU(tb testing.TB, grace time.Duration) *SFU {
	tb.Helper()
	return newLoopbackSFUWith(tb, Config{GracePeriod: grace})
}

// newLoopbackSFUWith is newLoopbackSFU with cfg (its ICE and Logger
// filled in).
func newLoopbackSFUWith(tb testing.TB, cfg Config) *SFU {
	tb.Helper()
	tb.Cleanup(func() { goleak.VerifyNone(tb) }) // registered first: runs last
	udp, err := media.ListenUDP("127.0.0.1:0", true)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ICE, cfg.Logger = ICEConfig{UDPMux: udp, Loopback: true}, slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sfu: %v", err)
		}
	})
	return s
}
