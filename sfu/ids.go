package sfu

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns a random identifier with the given prefix, e.g. "p_3f9a…".
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + hex.EncodeToString(b[:])
}
