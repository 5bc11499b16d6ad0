package signaling

import (
	"log/slog"
	"sync"
	"time"
)

// throttledLog logs a kind of event at most once per interval, with how
// many were left unlogged since: a flood must not turn into a flood of
// log lines.
type throttledLog struct {
	l     *slog.Logger
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*throttled // guarded by mu; one per kind, never removed (kinds are constants)
}

type throttled struct {
	last       time.Time
	suppressed int
}

func newThrottledLog(log *slog.Logger, every time.Duration) *throttledLog {
	return &throttledLog{l: log, every: every, kinds: make(map[string]*throttled)}
}

// log logs msg with args at warn level unless kind was logged within the
// interval.
func (t *throttledLog) log(kind, msg string, args ...any) {
	now := time.Now()
	t.mu.Lock()
	k := t.kinds[kind]
	if k == nil {
		k = &throttled{}
		t.kinds[kind] = k
	}
	if now.Sub(k.last) < t.every {
		k.suppressed++
		t.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	t.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "not_logged_since_last", suppressed)
	}
	t.l.Warn(msg, args...)
}
