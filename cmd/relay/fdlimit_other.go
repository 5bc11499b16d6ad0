//go:build !unix

package main

import "errors"

// raiseFileLimit: no RLIMIT_NOFILE here; -max-connections 0 means no cap.
func raiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("no file descriptor limit on this system")
}
