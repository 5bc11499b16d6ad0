package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// quietPion sends the logs of pion's TURN server and ICE-TCP mux to the
// relay's logger at debug level, whatever pion's level: they report each
// client's disconnect ("broken pipe", "closed pipe") as an error, and
// pion's default logger writes to stdout. -log-level debug shows them.
type quietPion struct{ log *slog.Logger }

func (q quietPion) NewLogger(scope string) logging.LeveledLogger {
	return pionDebug{log: q.log.With("pion", scope)}
}

type pionDebug struct{ log *slog.Logger }

func (p pionDebug) logf(format string, args ...any) {
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (p pionDebug) Trace(string)              {}
func (p pionDebug) Tracef(string, ...any)     {}
func (p pionDebug) Debug(m string)            { p.logf("%s", m) }
func (p pionDebug) Debugf(f string, a ...any) { p.logf(f, a...) }
func (p pionDebug) Info(m string)             { p.logf("%s", m) }
func (p pionDebug) Infof(f string, a ...any)  { p.logf(f, a...) }
func (p pionDebug) Warn(m string)             { p.logf("%s", m) }
func (p pionDebug) Warnf(f string, a ...any)  { p.logf(f, a...) }
func (p pionDebug) Error(m string)            { p.logf("%s", m) }
func (p pionDebug) Errorf(f string, a ...any) { p.logf(f, a...) }
