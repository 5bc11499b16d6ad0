package sfu

import (
	"sync"

	"github.com/pion/logging"
)

// sharedPionLoggers is the relay's pion LoggerFactory: pion's default
// loggers (errors to stderr, PION_LOG_* as usual), one per scope for the
// whole relay. pion's own factory makes a new logger, with five
// log.Loggers, for every scope of every connection: about 15 kB per peer
// connection (heap profile, docs/performance.md "A lighter listener").
// A DefaultLeveledLogger is safe for concurrent use (its level is atomic,
// its log.Loggers lock).
type sharedPionLoggers struct {
	factory *logging.DefaultLoggerFactory

	mu      sync.Mutex
	byScope map[string]logging.LeveledLogger
}

func newSharedPionLoggers() *sharedPionLoggers {
	return &sharedPionLoggers{factory: logging.NewDefaultLoggerFactory(), byScope: map[string]logging.LeveledLogger{}}
}

// NewLogger implements logging.LoggerFactory.
func (s *sharedPionLoggers) NewLogger(scope string) logging.LeveledLogger {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.byScope[scope]
	if !ok {
		l = s.factory.NewLogger(scope)
		s.byScope[scope] = l
	}
	return l
}
