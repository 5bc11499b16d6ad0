// Command relay is Lianmai Relay: WebSocket signaling and a WebRTC SFU for
// live co-streaming audio. Run `relay -h` for its settings; `relay health`
// checks a running relay (the container's HEALTHCHECK); `relay token`
// prints a join token.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lianmai/relay/gctune"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/signaling"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "health":
			os.Exit(health(os.Args[2:], os.Getenv, os.Stderr))
		case "token":
			os.Exit(token(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
		}
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr, signals, nil))
}

// run is the whole relay: it serves until the first signal, then drains
// (readiness fails, joins are refused, clients are told and get
// -drain-timeout to leave) and shuts down; a second signal exits at once. It returns the exit
// code. ready, if not nil, receives the HTTP address once the relay
// serves.
func run(args []string, getenv func(string) string, stderr io.Writer, signals <-chan os.Signal, ready chan<- string) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 2
	}
	log := cfg.logger(stderr)

	if _, err := gctune.Apply(cfg.gcConfig(), log); err != nil {
		log.Error("GC settings refused; fix -gogc / -gomemlimit or the GOGC / GOMEMLIMIT environment", "err", err)
		return 2
	}

	if cfg.MaxConnections == 0 {
		soft, hard, err := raiseFileLimit()
		if err != nil {
			log.Warn("cannot read the file descriptor limit; no connection cap (set one with -max-connections)", "err", err)
			cfg.MaxConnections = -1
		} else {
			cfg.MaxConnections = signaling.MaxConnectionsFor(soft)
			log.Info("file descriptor limit", "soft", soft, "hard", hard, "max_connections", cfg.MaxConnections)
		}
	}
	if !server.MixAvailable {
		log.Warn("this relay was built without cgo (libopus): the audience mix is unavailable and every listener gets separate tracks; build with scripts/build-relay.sh for the mix")
	}
	tlsSet, err := cfg.setupTLS(log)
	if err != nil {
		log.Error("cannot set up TLS; fix the certificate flags", "err", err)
		return 1
	}
	rc := cfg.relayConfig(log)
	if rc.TURN != nil {
		rc.TURN.TLS = tlsSet.config
	}
	rl, err := server.New(rc)
	if err != nil {
		log.Error("cannot start the relay", "err", err)
		return 1
	}
	if cfg.AuthSecret == "" {
		log.Warn("no -auth-secret: joins need no token, so anyone may join any room as anyone, host included; set RELAY_AUTH_SECRET in production")
	}
	// closeRelay releases the media port on the error paths below.
	closeRelay := func() { _ = rl.Shutdown(context.Background()) }

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		closeRelay()
		log.Error("cannot listen for HTTP; choose another address with -http", "err", err)
		return 1
	}
	scheme := "http"
	if tlsSet.config != nil {
		ln, scheme = tls.NewListener(ln, tlsSet.config), "https"
	}
	if tlsSet.acme != nil {
		stopACME, err := serveACME(cfg.ACMEHTTP, tlsSet.acme, log)
		if err != nil {
			_ = ln.Close()
			closeRelay()
			log.Error("cannot listen for ACME HTTP-01 challenges; choose another address with -acme-http, or leave it empty to use TLS-ALPN-01 on -http only", "err", err)
			return 1
		}
		defer stopACME()
	}
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			_ = ln.Close()
			closeRelay()
			log.Error("cannot listen on -debug-addr; choose another address or leave it empty", "err", err)
			return 1
		}
		defer stopDebug()
	}
	srv := &http.Server{
		Handler:           rl.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("relay serving", "http", addr, "page", pageURL(scheme, addr), "udp", cfg.UDPAddr, "tcp", cfg.TCPAddr, "loopback", cfg.Loopback, "announce_ips", cfg.AnnounceIPs)
	if ready != nil {
		ready <- addr
	}

	select {
	case s := <-signals:
		log.Info("draining: /readyz fails, joins are refused, clients are told to move", "signal", s.String(), "drain_timeout", cfg.DrainTimeout)
	case err := <-served:
		log.Error("HTTP server failed", "err", err)
		closeRelay()
		return 1
	}

	// A second signal exits at once.
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case s := <-signals:
			log.Warn("second signal; exiting now", "signal", s.String())
			os.Exit(1)
		case <-stopped:
		}
	}()
	start := time.Now()
	rl.Drain(context.Background(), cfg.DrainTimeout)
	log.Info("drained; closing the remaining clients", "took", time.Since(start).Round(time.Millisecond), "timeout", cfg.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Close the sessions before the HTTP server: http.Server.Shutdown does
	// not wait for hijacked (WebSocket) connections, but it stops /readyz
	// answering, which load balancers already read as not ready.
	if err := rl.Shutdown(ctx); err != nil {
		log.Warn("some sessions did not close in time", "err", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("HTTP shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

// pageURL is where a person on this machine opens the page.
func pageURL(scheme, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	return scheme + "://localhost:" + port
}
