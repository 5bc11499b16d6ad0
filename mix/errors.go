package mix

import "errors"

// Errors New returns (wrapped with details).
var (
	// ErrUnavailable: the relay was built without cgo, so without libopus;
	// serve listeners separate tracks instead.
	ErrUnavailable = errors.New("mix: this relay was built without cgo (libopus); the audience mix is unavailable")
	// ErrBadConfig: a Config field is out of range; the message says which.
	ErrBadConfig = errors.New("mix: bad config")
	// ErrNoOutput: New was given no out function.
	ErrNoOutput = errors.New("mix: New needs an out function for the mixed packets")
)
