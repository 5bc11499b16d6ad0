package signaling

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// rateLimit is a token bucket: burst messages at once, rate per second
// after that. Owned by the session's reader; not safe for concurrent use.
type rateLimit struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newRateLimit(rate float64, burst int) *rateLimit {
	return &rateLimit{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token for a message arriving at now; false if none is left.
func (l *rateLimit) allow(now time.Time) bool {
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// originChecker decides which browser pages may open a WebSocket: the
// relay's own (same host), pages on localhost, and the configured
// origins. Clients that send no Origin (not browsers) are allowed: the
// check protects visitors' browsers, not the relay.
type originChecker struct {
	any     bool
	allowed map[string]bool // scheme://host[:port], lower case
}

func newOriginChecker(origins []string) originChecker {
	c := originChecker{allowed: make(map[string]bool)}
	for _, o := range origins {
		if o == "*" {
			c.any = true
			continue
		}
		c.allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return c
}

func (c originChecker) check(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || c.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	switch strings.ToLower(u.Hostname()) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return c.allowed[strings.ToLower(u.Scheme+"://"+u.Host)]
}
