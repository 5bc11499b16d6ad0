package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/logging"
)

// pionLoggerFactory sends pion's logs to the client's slog.Logger: trace is
// dropped, debug and info go to Debug, warnings and errors to Warn and
// Error. Each scope is limited to a few lines a second so that a
// per-packet complaint cannot flood the log.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct {
	log   *slog.Logger
	debug limiter
	warn  limiter
}

func (l *pionLogger) emit(lim *limiter, level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) && lim.allow() {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l *pionLogger) emitf(lim *limiter, level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) && lim.allow() {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l *pionLogger) Trace(string)          {}
func (l *pionLogger) Tracef(string, ...any) {}
func (l *pionLogger) Debug(msg string)      { l.emit(&l.debug, slog.LevelDebug, msg) }
func (l *pionLogger) Debugf(f string, a ...any) {
	l.emitf(&l.debug, slog.LevelDebug, f, a...)
}
func (l *pionLogger) Info(msg string)          { l.emit(&l.debug, slog.LevelDebug, msg) }
func (l *pionLogger) Infof(f string, a ...any) { l.emitf(&l.debug, slog.LevelDebug, f, a...) }
func (l *pionLogger) Warn(msg string)          { l.emit(&l.warn, slog.LevelWarn, msg) }
func (l *pionLogger) Warnf(f string, a ...any) { l.emitf(&l.warn, slog.LevelWarn, f, a...) }
func (l *pionLogger) Error(msg string)         { l.emit(&l.warn, slog.LevelError, msg) }
func (l *pionLogger) Errorf(f string, a ...any) {
	l.emitf(&l.warn, slog.LevelError, f, a...)
}

// limiter allows limiterBurst lines per second.
type limiter struct {
	mu     sync.Mutex
	window time.Time
	n      int
}

const limiterBurst = 10

func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	return l.n <= limiterBurst
}
