package main

import (
	"os"
	"testing"
)

func TestBadAddr(t *testing.T) {
	for _, args := range [][]string{{"-addr", "nowhere"}, {"-addr", "127.0.0.1:http"}, {"-bogus"}} {
		if code := run(args, os.Stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage error)", args, code)
		}
	}
}
