package sfu

import (
	"sync"
	"testing"
)

// TestSharedPionLoggers: one logger per scope, whichever connection asks,
// and safe to ask from many at once.
func TestSharedPionLoggers(t *testing.T) {
	f := newSharedPionLoggers()
	scopes := []string{"ice", "dtls", "pc"}
	got := make([][]any, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range scopes {
				l := f.NewLogger(s)
				l.Debugf("from connection %d", i) // below pion's default level: not printed
				got[i] = append(got[i], l)
			}
		}()
	}
	wg.Wait()
	for i := range got {
		for j := range scopes {
			if got[i][j] != got[0][j] {
				t.Errorf("connection %d has its own %q logger", i, scopes[j])
			}
		}
	}
	if got[0][0] == got[0][1] || got[0][1] == got[0][2] {
		t.Error("two scopes share a logger")
	}
}
