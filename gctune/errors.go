package gctune

import "errors"

// Errors returned by this package; callers match them with errors.Is.
var (
	// ErrBadSize means a byte size (flag or GOMEMLIMIT) could not be parsed.
	ErrBadSize = errors.New("gctune: bad size")
	// ErrBadGOGC means a GOGC value (Config or environment) is not valid.
	ErrBadGOGC = errors.New("gctune: bad GOGC")
	// ErrGCOffWithoutLimit means GOGC is off and no memory limit applies:
	// the heap would then grow until the process is killed.
	ErrGCOffWithoutLimit = errors.New("gctune: GOGC off without a memory limit")
)
