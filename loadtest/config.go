package loadtest

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config says where the relay is and how to reach it. URL is required.
type Config struct {
	URL         string        // the relay's WebSocket, ws://host:port/ws
	MetricsURL  string        // the relay's /metrics; "" derives it from URL, "-" disables scraping
	RelayPID    int           // if > 0, relay CPU and RSS come from /proc/<pid>
	Token       string        // sent in every join as is
	TokenSecret string        // if set, every join carries its own HS256 token signed with it
	Loopback    bool          // ICE on loopback only (the relay runs on this machine)
	TLSConfig   *tls.Config   // for a wss:// URL and TURN over TLS (a private CA's RootCAs); nil: the system's
	WaitReady   time.Duration // wait up to this long for the relay to accept connections
	Deadline    time.Duration // the whole run; 0: computed from the scenario
	Progress    io.Writer     // the live progress line; nil for none
	Interval    time.Duration // progress and time-series interval; 0 means 1s
	Logger      *slog.Logger  // nil discards
	ClientLog   *slog.Logger  // the clients' and pion's logs; nil discards

	// Relays are the other relays of a cluster (their /ws URLs), for a
	// run over several nodes (cluster.go): the audience is spread
	// round-robin over URL and these, publishers dial URL, and each
	// node's /metrics is read for the per-node report. RelayPIDs, if
	// given, are their PIDs in the same order (their CPU from /proc).
	Relays    []string
	RelayPIDs []int
}

// metricsURL returns the /metrics URL next to the WebSocket.
func (c Config) metricsURL() (string, error) {
	if c.MetricsURL == "-" {
		return "", nil
	}
	if c.MetricsURL != "" {
		return c.MetricsURL, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawQuery = "/metrics", ""
	return u.String(), nil
}

func (c Config) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("%w: relay URL %q: want ws://host:port/ws", ErrBadScenario, c.URL)
	}
	if c.Token != "" && c.TokenSecret != "" {
		return fmt.Errorf("%w: give -token or -token-secret, not both", ErrBadScenario)
	}
	if c.RelayPID < 0 || c.WaitReady < 0 || c.Deadline < 0 || c.Interval < 0 {
		return fmt.Errorf("%w: -relay-pid, -wait-ready, -deadline and -interval must not be negative", ErrBadScenario)
	}
	if c.MetricsURL != "" && c.MetricsURL != "-" && !strings.HasPrefix(c.MetricsURL, "http") {
		return fmt.Errorf("%w: metrics URL %q: want http://host:port/metrics or - for none", ErrBadScenario, c.MetricsURL)
	}
	return c.validateCluster()
}

// runDeadline is the longest a run may take: wait for the relay, the ramp
// at its rate plus a join timeout, settle, the window, and a minute for
// teardown and slack.
func runDeadline(sc Scenario, cfg Config) time.Duration {
	if cfg.Deadline > 0 {
		return cfg.Deadline
	}
	ramp := time.Duration(float64(sc.Participants()) / sc.JoinRate * float64(time.Second))
	return cfg.WaitReady + 2*ramp + 2*sc.JoinTimeout.D() + sc.Settle.D() + sc.Duration.D() + time.Minute
}
