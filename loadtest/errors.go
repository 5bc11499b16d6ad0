package loadtest

import "errors"

// Sentinel errors, for errors.Is; cmd/loadtest maps them to exit codes.
var (
	// ErrBadScenario: the scenario or the configuration cannot be run.
	ErrBadScenario = errors.New("loadtest: bad scenario")
	// ErrRelayUnreachable: the relay did not answer (HTTP or WebSocket).
	ErrRelayUnreachable = errors.New("loadtest: relay unreachable")
	// ErrRefused: the relay refused the load generator's join (a bad or
	// missing token, a full room).
	ErrRefused = errors.New("loadtest: relay refused the join")
)
