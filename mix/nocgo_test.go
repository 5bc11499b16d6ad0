//go:build !cgo

package mix

import (
	"errors"
	"testing"

	"github.com/lianmai/relay/bufpool"
)

func TestNewWithoutCgo(t *testing.T) {
	if Available {
		t.Fatal("Available is true in a build without cgo")
	}
	m, err := New(Config{}, func(p *bufpool.Packet, n int) { p.Release() })
	if !errors.Is(err, ErrUnavailable) || m != nil {
		t.Fatalf("New = %v, %v; want nil, ErrUnavailable", m, err)
	}
}
