package loadtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest/report"
	"go.uber.org/goleak"
)

// smallScenario is one room with a host, a guest and two listeners for a
// second or two: enough to exercise a feature, not to measure.
func smallScenario() Scenario {
	return Scenario{
		Name: "small", Rooms: 1, Hosts: 1, Guests: 1, Audience: 2,
		JoinRate: 50, Settle: Duration(500 * time.Millisecond), Duration: Duration(2 * time.Second),
		JoinTimeout: Duration(30 * time.Second),
	}
}

func TestTokens(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("relay", func(t *testing.T) {
		const secret = "0123456789abcdef0123456789abcdef"
		relay := relaytest.Start(t, relaytest.Options{AuthSecret: secret})
		tests := []struct {
			name   string
			secret string
			want   error
		}{
			{"minted with the relay's secret", secret, nil},
			{"minted with another secret", "fedcba9876543210fedcba9876543210", ErrRefused},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
				defer cancel()
				rep, err := Run(ctx, smallScenario(), Config{URL: relay.URL, TokenSecret: tt.secret, Loopback: true, Logger: testLogger()})
				if !errors.Is(err, tt.want) {
					t.Fatalf("Run: %v, want %v", err, tt.want)
				}
				if tt.want == nil && (rep.Joins.Failed != 0 || rep.Audio.MissingPublishers != 0) {
					t.Fatalf("joins failed: %v; missing: %v", rep.Joins.Failures, rep.Audio.Missing)
				}
			})
		}
	})
}

// runSmall runs smallScenario, changed by change, for 3 s against an
// in-process relay, failing t if the run does not complete.
func runSmall(t *testing.T, change func(*Scenario)) *report.Report {
	t.Helper()
	relay := relaytest.Start(t, relaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	sc := smallScenario()
	sc.Duration = Duration(3 * time.Second)
	change(&sc)
	rep, err := Run(ctx, sc, Config{URL: relay.URL, Loopback: true, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// TestMicCycling: mic cycles against the relay, with the early pub (the
// host taking 200 ms to decide) and with the version 1 path.
func TestMicCycling(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, mode := range []string{MicPubEarly, MicPubAfter} {
		t.Run(mode, func(t *testing.T) { micCycling(t, mode) })
	}
}

func micCycling(t *testing.T, mode string) {
	relay := relaytest.Start(t, relaytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	sc := smallScenario()
	sc.Duration = Duration(3 * time.Second)
	sc.MicCycleEvery, sc.MicHold = Duration(500*time.Millisecond), Duration(500*time.Millisecond)
	sc.MicPub = mode
	if mode == MicPubEarly {
		// The host's 200 ms makes each cycle longer: room for a cycle
		// to be released before the run ends, however slow the machine.
		sc.MicAcceptDelay = Duration(200 * time.Millisecond)
		sc.Duration = Duration(4 * time.Second)
	}
	rep, err := Run(ctx, sc, Config{URL: relay.URL, Loopback: true, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	m := rep.Mic
	if m.Unsupported || len(m.Failures) > 0 || m.Granted < 1 || m.Released < 1 {
		t.Fatalf("mic cycling: %+v", m)
	}
	if rep.Audio.Publishers < 3 {
		t.Fatalf("%d publishers: the mic guest never published", rep.Audio.Publishers)
	}
	if m.PublishMs.Count < 1 || m.HostHeardMs.Count != m.PublishMs.Count || m.HostHeardMs.P50 < m.PublishMs.P50 {
		t.Fatalf("on the mic to first frame %+v, to the host's first packet %+v", m.PublishMs, m.HostHeardMs)
	}
	early := relay.Value(t, "relay_early_pubs_total", "outcome", "accepted")
	if want := mode == MicPubEarly; (early > 0) != want {
		t.Errorf("relay_early_pubs_total{outcome=accepted} = %v with mic_pub %s", early, mode)
	}
	t.Logf("%d cycles, %d granted (mic_request to guest %+v; guest to the host's first packet %+v), %d released, %v early pubs",
		m.Attempts, m.Granted, m.GrantMs, m.HostHeardMs, m.Released, early)
}
