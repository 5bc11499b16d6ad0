package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"go.uber.org/goleak"
)

func noEnv(string) string { return "" }

// TestRunTLS: with -tls-cert/-tls-key the relay serves HTTPS and WSS on
// -http: a client that trusts the test certificate joins over wss:// and
// connects its media (-turn gives it TURN over TLS with the same
// certificate); `relay health` with the relay's flags (or those of
// process 1) checks it over TLS; plain HTTP is refused.
func TestRunTLS(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cert := relaytest.NewCert(t)

	args := []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-loopback", "-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile,
		"-turn", "-turn-udp", "127.0.0.1:0", "-turn-tcp", "", "-turn-tls", "127.0.0.1:0",
		"-shutdown-timeout", "3s", "-drain-timeout", "0s"}
	addr, signals, exit, logs := startRun(ctx, t, args)
	if !strings.Contains(logs.String(), "page=https://localhost:") {
		t.Errorf("the log does not give the page's https URL:\n%s", logs.String())
	}

	c, err := client.Dial(ctx, client.Config{URL: "wss://" + addr + "/ws", Room: "r", Name: "n", Role: "host", Loopback: true,
		TLSConfig: &tls.Config{RootCAs: cert.Pool}})
	if err != nil {
		t.Fatalf("join over wss: %v", err)
	}
	defer c.Close()
	if err := c.SubConnected(ctx); err != nil {
		t.Fatalf("sub connection: %v", err)
	}
	// -turn with the certificate: a turns URL on loopback (-loopback's
	// default -turn-host), next to the UDP one.
	if s := c.Joined().ICEServers; len(s) != 1 || len(s[0].URLs) != 2 || !strings.HasPrefix(s[0].URLs[1], "turns:127.0.0.1:") {
		t.Errorf("ice_servers %+v, want a turn: and a turns: URL", s)
	}
	if _, err := client.Dial(ctx, client.Config{URL: "ws://" + addr + "/ws", Room: "r", Name: "plain", Loopback: true}); err == nil {
		t.Error("a plain ws:// join to the TLS port succeeded")
	}

	tlsFlags := []string{"-http", addr, "-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile}
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(cmdline, []byte(strings.Join(append([]string{os.Args[0]}, tlsFlags...), "\x00")+"\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		cmdline string
		want    int
	}{
		{name: "relay flags", args: tlsFlags, want: 0},
		{name: "relay flags and health's own", args: append([]string{"-timeout", "5s"}, tlsFlags...), want: 0},
		{name: "environment", env: map[string]string{"RELAY_HTTP": addr, "RELAY_TLS_CERT": cert.CertFile, "RELAY_TLS_KEY": cert.KeyFile}, want: 0},
		{name: "process 1's command line", cmdline: cmdline, want: 0},
		{name: "plain HTTP to the TLS port", args: []string{"-http", addr}, want: 1},
		{name: "half the TLS flags", args: []string{"-http", addr, "-tls-cert", cert.CertFile}, want: 2},
	} {
		t.Run("health/"+tt.name, func(t *testing.T) {
			var out strings.Builder
			getenv := func(k string) string { return tt.env[k] }
			if code := healthCheck(tt.args, getenv, &out, tt.cmdline); code != tt.want {
				t.Errorf("health = %d, want %d: %s", code, tt.want, out.String())
			}
		})
	}

	signals <- syscall.SIGTERM
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d:\n%s", code, logs.String())
		}
	case <-ctx.Done():
		t.Fatal("relay did not stop")
	}
}

// TestHealthPort: `relay health -http :9000` checks port 9000 (the image's
// HEALTHCHECK once broke on it: it read RELAY_HTTP only), and a -http
// with a host checks that host.
func TestHealthPort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	var out strings.Builder
	for _, args := range [][]string{{"-http", ":" + port}, {"-http=127.0.0.1:" + port}, {"-loopback", "-http", addr, "-timeout", "2s"}} {
		out.Reset()
		env := func(k string) string { return map[string]string{"RELAY_HTTP": ":1"}[k] }
		if code := healthCheck(args, env, &out, ""); code != 0 {
			t.Errorf("health %q = %d, want 0: %s", args, code, out.String())
		}
	}
	if code := healthCheck([]string{"-http", "nonsense"}, noEnv, &out, ""); code != 2 {
		t.Errorf("health with a bad -http = %d, want 2", code)
	}
	if code := healthCheck([]string{"-colour"}, noEnv, &out, ""); code != 2 {
		t.Errorf("health with an unknown relay flag = %d, want 2", code)
	}
}

func TestSplitHealthArgs(t *testing.T) {
	for _, tt := range []struct {
		args, own, relay []string
	}{
		{nil, nil, nil},
		{[]string{"-url", "http://x/healthz"}, []string{"-url", "http://x/healthz"}, nil},
		{[]string{"-http", ":9000", "--timeout=2s", "-loopback"}, []string{"--timeout=2s"}, []string{"-http", ":9000", "-loopback"}},
		{[]string{"-timeout", "1s", "-tls-cert", "c.pem", "-h"}, []string{"-timeout", "1s", "-h"}, []string{"-tls-cert", "c.pem"}},
	} {
		own, relay := splitHealthArgs(tt.args)
		if !slices.Equal(own, tt.own) || !slices.Equal(relay, tt.relay) {
			t.Errorf("splitHealthArgs(%q) = %q, %q; want %q, %q", tt.args, own, relay, tt.own, tt.relay)
		}
	}
}

func TestInitArgs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, argv ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(argv, "\x00")+"\x00"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := initArgs(write("relay", "/somewhere/"+filepath.Base(os.Args[0]), "-http", ":9000")); !slices.Equal(got, []string{"-http", ":9000"}) {
		t.Errorf("process 1 is the relay: %q", got)
	}
	if got := initArgs(write("init", "/sbin/init", "splash")); got != nil {
		t.Errorf("process 1 is not the relay: %q, want none", got)
	}
	if got := initArgs(filepath.Join(dir, "missing")); got != nil {
		t.Errorf("no cmdline: %q", got)
	}
}

func TestSetupTLSFiles(t *testing.T) {
	cert := relaytest.NewCert(t)
	for _, tt := range []struct {
		name, cert, key, wantErr string
	}{
		{name: "good", cert: cert.CertFile, key: cert.KeyFile},
		{name: "missing file", cert: cert.CertFile, key: cert.KeyFile + ".gone", wantErr: "-tls-key"},
		{name: "key and cert swapped", cert: cert.KeyFile, key: cert.CertFile, wantErr: "-tls-cert"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := reachConfig{TLSCert: tt.cert, TLSKey: tt.key}.setupTLS(slog.Default())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("setupTLS: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || s.config == nil || s.config.GetCertificate == nil || s.acme != nil {
				t.Fatalf("setupTLS: %+v, %v", s, err)
			}
		})
	}
}

// TestSetupACME checks how ACME is wired: the cache directory is made,
// TLS-ALPN-01 is offered on the HTTPS port, certificates are asked for
// the configured domain only, and the HTTP-01 handler answers challenge
// paths itself and redirects the rest to https. It cannot check the
// exchange with a CA: there is none here (Let's Encrypt's staging CA
// needs a public domain; a local one such as pebble is not installed).
func TestSetupACME(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "acme")
	rc := reachConfig{ACMEDomain: "relay.example", ACMECache: cache, ACMEHTTP: ":80", ACMEDirectory: "http://127.0.0.1:1/directory"}
	s, err := rc.setupTLS(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cache); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v %v", fi, err)
	}
	if !slices.Contains(s.config.NextProtos, "acme-tls/1") {
		t.Errorf("NextProtos %q lack acme-tls/1 (TLS-ALPN-01)", s.config.NextProtos)
	}
	// Another name is refused by the host policy before any CA is asked
	// (the directory URL above is a closed port: asking it would fail
	// differently).
	_, err = s.config.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example"})
	if err == nil || !strings.Contains(err.Error(), "not configured in HostWhitelist") {
		t.Errorf("certificate for another domain: %v, want the host policy's refusal", err)
	}
	if s.acme == nil {
		t.Fatal("no HTTP-01 handler with -acme-http set")
	}
	rec := httptest.NewRecorder()
	s.acme.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://relay.example/.well-known/acme-challenge/unknown-token", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown challenge token: %d, want 404 from the ACME handler", rec.Code)
	}
	rec = httptest.NewRecorder()
	s.acme.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://relay.example/?room=a", nil))
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusFound || loc != "https://relay.example/?room=a" {
		t.Errorf("plain HTTP page request: %d to %q, want a redirect to https", rec.Code, loc)
	}

	rc.ACMEHTTP = ""
	if s, err := rc.setupTLS(slog.Default()); err != nil || s.acme != nil {
		t.Errorf("-acme-http empty: handler %v, %v; want none (TLS-ALPN-01 only)", s.acme, err)
	}
}

// TestRunTLSRefused: certificate files that cannot be loaded and an
// ACME HTTP-01 address that cannot be opened stop the relay at start,
// with the flag to fix in the log.
func TestRunTLSRefused(t *testing.T) {
	defer goleak.VerifyNone(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-loopback"}
	for _, tt := range []struct {
		name, want string
		args       []string
	}{
		{"missing certificate", "-tls-cert", []string{"-tls-cert", "/nonexistent/cert.pem", "-tls-key", "/nonexistent/key.pem"}},
		{"ACME HTTP-01 port taken", "-acme-http", []string{"-acme-domain", "relay.example", "-acme-cache", t.TempDir(), "-acme-http", busy.Addr().String()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			if code := run(append(slices.Clone(base), tt.args...), noEnv, &logs, make(chan os.Signal), nil); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(logs.String(), tt.want) {
				t.Errorf("log does not name %s:\n%s", tt.want, logs.String())
			}
		})
	}
}
