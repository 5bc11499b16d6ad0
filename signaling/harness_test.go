package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// testDeadline bounds every test that starts peers; the race detector and
// a shared machine make pion slow, so it is generous.
const testDeadline = 60 * time.Second

// relay is an in-process relay on loopback.
type relay struct {
	*relaytest.Relay
}

type relayOpts = relaytest.Options

// startRelay starts a relay for t and registers its shutdown, then (run
// last) a goroutine-leak check. It returns ctx bounded by testDeadline.
func startRelay(t *testing.T, o relayOpts) (*relay, context.Context) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after every other cleanup
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return &relay{relaytest.Start(t, o)}, ctx
}

// join dials a client into room and closes it at cleanup.
func (r *relay) join(ctx context.Context, t *testing.T, room, name, role string) *client.Client {
	t.Helper()
	return r.dial(ctx, t, client.Config{Room: room, Name: name, Role: role})
}

// dial dials a client joining as cfg says (URL, loopback and logger
// filled in) and closes it at cleanup.
func (r *relay) dial(ctx context.Context, t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.URL, cfg.Loopback, cfg.Logger = r.URL, true, relaytest.Logger()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("%s joins %s as %s (resume %t, listen %q): %v", cfg.Name, cfg.Room, cfg.Role, cfg.Resume != "", cfg.Listen, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// backlog holds events read from a client while looking for something
// else (see do), for waitEvent to find later. Tests run one at a time.
var (
	backlogMu sync.Mutex
	backlog   = map[*client.Client][]any{}
)

func pushBacklog(c *client.Client, ev any) {
	backlogMu.Lock()
	defer backlogMu.Unlock()
	backlog[c] = append(backlog[c], ev)
}

func popBacklog(c *client.Client) (any, bool) {
	backlogMu.Lock()
	defer backlogMu.Unlock()
	if len(backlog[c]) == 0 {
		delete(backlog, c)
		return nil, false
	}
	ev := backlog[c][0]
	backlog[c] = backlog[c][1:]
	return ev, true
}

// waitEvent returns the first event from c that match accepts, failing t
// if none comes before ctx ends. Other events are skipped.
func waitEvent[T any](ctx context.Context, t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	for {
		ev, ok := popBacklog(c)
		if !ok {
			select {
			case ev = <-c.Events():
			case <-ctx.Done():
				var zero T
				t.Fatalf("%s: no %T event before the deadline", c.ID(), zero)
				return zero
			}
		}
		if e, ok := ev.(T); ok && (match == nil || match(e)) {
			return e
		}
	}
}

// serverError returns err as a *client.ServerError, failing t otherwise.
func serverError(t *testing.T, err error) *client.ServerError {
	t.Helper()
	var se *client.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want an error message from the relay, got %v", err)
	}
	return se
}

// counter reads a counter or gauge from the relay's registry.
func (r *relay) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return r.Value(t, name, labels...)
}

// ping checks that c's connection still answers.
func ping(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	id := fmt.Sprintf("ping-%d", time.Now().UnixNano())
	reply, err := c.Request(ctx, &protocol.Ping{Header: protocol.Header{Type: protocol.TypePing, ID: id}}, id)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, ok := reply.(*protocol.Pong); !ok {
		t.Fatalf("ping got %T, want pong", reply)
	}
}
