// Package natstest runs a real NATS server (nats-server, embedded) with
// JetStream on loopback for tests of the relay cluster, and a TCP proxy in
// front of it that a test can cut and heal to partition one relay.
package natstest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server with JetStream, its store in a test's
// temporary directory. Shutdown and Restart (same port, same store) make
// an outage; Start's cleanup shuts it down.
type Server struct {
	tb    testing.TB
	store string

	mu   sync.Mutex
	port int // -1 until the first start picks one
	srv  *server.Server
}

// Start starts a server on 127.0.0.1 on a free port.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, port: -1, store: tb.TempDir()}
	s.start()
	tb.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := server.NewServer(&server.Options{
		ServerName: "relaytest",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.store,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		s.tb.Fatalf("natstest: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.tb.Fatal("natstest: the NATS server did not become ready within 10 s")
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// URL is the server's client URL, nats://127.0.0.1:port (the same across
// restarts).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Shutdown stops the server (clients lose their connections and start
// reconnecting); a no-op if it is down.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port with the same store.
func (s *Server) Restart() {
	s.tb.Helper()
	s.start()
}

// Eventually polls cond every 20 ms until it holds, or fails tb when ctx
// ends: the cluster tests' bounded wait (no wall-clock assertion).
func Eventually(ctx context.Context, tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
