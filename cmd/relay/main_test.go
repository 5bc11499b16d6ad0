package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun starts the whole relay on loopback, checks its HTTP surface and a
// join, then stops it with SIGTERM: the client is told it drains, /readyz
// fails, a new join is refused, and after the drain timeout the client is
// closed with 1001 and run returns 0.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	args := []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-loopback", "-shutdown-timeout", "3s", "-drain-timeout", "2s", "-debug-addr", "127.0.0.1:0"}
	addr, signals, exit, logs := startRun(ctx, t, args)
	base := "http://" + addr

	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/", 200, "<html"},
		{"/metrics", 200, "relay_gc_pause_seconds_bucket"},
		{"/metrics", 200, "relay_packets_in_total"},
		{"/metrics", 200, "relay_join_latency_seconds_bucket"},
		{"/metrics", 200, "relay_signaling_sessions"},
		{"/metrics", 200, "go_goroutines"},
	} {
		t.Run(tt.path+" "+tt.want, func(t *testing.T) {
			code, body := get(tt.path)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s = %d, want %d with %q", tt.path, code, tt.code, tt.want)
			}
		})
	}

	t.Run("profiling on -debug-addr only", func(t *testing.T) {
		m := regexp.MustCompile(`debug=(\S+)`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no debug address logged:\n%s", logs.String())
		}
		resp, err := http.Get("http://" + m[1] + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /debug/pprof/heap on -debug-addr = %d", resp.StatusCode)
		}
		if code, _ := get("/debug/pprof/heap"); code == http.StatusOK {
			t.Error("profiling served on the public HTTP port")
		}
	})

	t.Run("relay health", func(t *testing.T) {
		var out strings.Builder
		if code := health(nil, func(k string) string { return map[string]string{"RELAY_HTTP": addr}[k] }, &out); code != 0 {
			t.Errorf("health = %d: %s", code, out.String())
		}
		if code := health([]string{"-url", base + "/nothing-here"}, func(string) string { return "" }, &out); code != 1 {
			t.Errorf("health of a 404 = %d, want 1", code)
		}
	})

	c, err := client.Dial(ctx, client.Config{URL: "ws://" + addr + "/ws", Room: "r", Name: "n", Role: "host", Loopback: true})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	defer c.Close()
	if err := c.SubConnected(ctx); err != nil {
		t.Fatalf("sub connection: %v", err)
	}

	start := time.Now()
	signals <- syscall.SIGTERM

	// Draining: the client is told, readiness fails, joins are refused,
	// and the relay waits for the drain timeout before closing.
	drain := waitDraining(ctx, t, c)
	if drain.TimeoutMS <= 0 || drain.TimeoutMS > 2000 {
		t.Errorf("draining timeout_ms = %d, want 1..2000 (-drain-timeout 2s)", drain.TimeoutMS)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while draining = %d %q, want 503", code, body)
	}
	_, err = client.Dial(ctx, client.Config{URL: "ws://" + addr + "/ws", Room: "r", Name: "late", Loopback: true})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeShuttingDown {
		t.Errorf("join while draining: %v, want error %s", err, protocol.CodeShuttingDown)
	}

	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d, want 0:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("relay still running 10 s after SIGTERM (drain 2 s, shutdown 3 s)")
	}
	took := time.Since(start)
	t.Logf("shut down in %v", took)
	if took < 2*time.Second {
		t.Errorf("relay exited after %v, before the 2 s drain timeout, with a client still connected", took)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client not disconnected")
	}
	if code := c.CloseCode(); code != 1001 {
		t.Errorf("client close code %d, want 1001 (going away)", code)
	}
	for _, want := range []string{"gc tuning applied", "relay serving", "draining", "drained", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// startRun runs the relay with args until a signal, and waits until it
// serves: it returns the HTTP address, the signal channel, the exit code's
// channel and the logs.
func startRun(ctx context.Context, t *testing.T, args []string) (string, chan<- os.Signal, <-chan int, *syncBuffer) {
	t.Helper()
	signals := make(chan os.Signal, 1)
	ready := make(chan string, 1)
	exit := make(chan int, 1)
	logs := &syncBuffer{}
	go func() { exit <- run(args, func(string) string { return "" }, logs, signals, ready) }()
	select {
	case addr := <-ready:
		return addr, signals, exit, logs
	case code := <-exit:
		t.Fatalf("relay exited with %d:\n%s", code, logs.String())
	case <-ctx.Done():
		t.Fatal("relay did not start")
	}
	return "", nil, nil, nil
}

// waitDraining waits for the draining message.
func waitDraining(ctx context.Context, t *testing.T, c *client.Client) *protocol.Draining {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			if d, ok := ev.(*protocol.Draining); ok {
				return d
			}
		case <-ctx.Done():
			t.Fatal("no draining message after SIGTERM")
			return nil
		}
	}
}
