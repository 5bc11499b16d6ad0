package whip

import (
	"errors"
	"net/http"
	"time"

	"github.com/lianmai/relay/sfu"
)

// httpError is a refusal with its HTTP status and the text the client is
// shown.
type httpError struct {
	status int
	msg    string
	retry  time.Duration // Retry-After, when not zero
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, msg string) *httpError { return &httpError{status: status, msg: msg} }

// statusOf maps a room layer error to its HTTP status and text.
func statusOf(err error) *httpError {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, sfu.ErrRoomFull):
		return fail(http.StatusConflict, err.Error())
	case errors.Is(err, sfu.ErrForbidden):
		return fail(http.StatusForbidden, err.Error())
	case errors.Is(err, sfu.ErrBadDescription), errors.Is(err, sfu.ErrBadCandidate), errors.Is(err, sfu.ErrBadRequest):
		return fail(http.StatusBadRequest, err.Error())
	case errors.Is(err, sfu.ErrShuttingDown):
		return errDraining
	case errors.Is(err, sfu.ErrClosed):
		return fail(http.StatusNotFound, "the session has ended; start a new one with POST")
	case errors.Is(err, sfu.ErrRedirect):
		// The owner's URL is its WebSocket's; WHIP and WHEP clients are
		// told in words (docs/cluster.md: send WHIP/WHEP to the owner).
		return &httpError{status: http.StatusServiceUnavailable, retry: 5 * time.Second, msg: err.Error()}
	case errors.Is(err, sfu.ErrUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, retry: 5 * time.Second,
			msg: "the relay cannot reach its cluster directory; retry in a few seconds"}
	}
	return fail(http.StatusInternalServerError, "internal error; the relay keeps running, try again")
}

// errDraining refuses a new session while the relay shuts down.
var errDraining = &httpError{status: http.StatusServiceUnavailable, retry: 5 * time.Second,
	msg: "the relay is shutting down; publish or play on another relay, or retry in a moment"}
