package main

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
)

// copyCert writes c's PEM files over certPath and keyPath, with a
// modification time step seconds ahead (the test's clock for "renewed").
func copyCert(t *testing.T, c *relaytest.Cert, certPath, keyPath string, step int) {
	t.Helper()
	mod := time.Now().Add(time.Duration(step) * time.Second)
	for _, f := range [][2]string{{c.CertFile, certPath}, {c.KeyFile, keyPath}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f[1], mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

func serial(t *testing.T, f *certFiles) string {
	t.Helper()
	c, err := f.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("GetCertificate: %v, %v", c, err)
	}
	return c.Leaf.SerialNumber.String()
}

// TestCertReload: a renewed pair of files is served from the next
// handshake after the recheck interval, without a restart; a broken
// renewal is logged once and the certificate before it kept; unchanged
// files are not read again.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := dir+"/cert.pem", dir+"/key.pem"
	first, second := relaytest.NewCert(t), relaytest.NewCert(t)
	copyCert(t, first, certPath, keyPath, 0)
	var logs bytes.Buffer
	f, err := loadCertFiles(certPath, keyPath, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want1 := first.TLS.Leaf.SerialNumber.String()
	if got := serial(t, f); got != want1 {
		t.Fatalf("serving %s, want the first certificate %s", got, want1)
	}

	// Renewed, but within the recheck interval: still the first.
	copyCert(t, second, certPath, keyPath, 10)
	if got := serial(t, f); got != want1 {
		t.Fatalf("within the recheck interval: serving %s, want %s", got, want1)
	}
	// After it: the second.
	f.recheck = 0
	want2 := second.TLS.Leaf.SerialNumber.String()
	if got := serial(t, f); got != want2 {
		t.Fatalf("after a renewal: serving %s, want the renewed %s", got, want2)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload logged: %s", logs.String())
	}

	// A broken renewal (a key that is not the certificate's): the second
	// stays, and the failure is logged once however many handshakes.
	copyCert(t, first, certPath, keyPath, 20)
	key2, err := os.ReadFile(second.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, key2, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := serial(t, f); got != want2 {
			t.Fatalf("after a broken renewal: serving %s, want the previous %s", got, want2)
		}
	}
	if n := strings.Count(logs.String(), "cannot reload the TLS certificate"); n != 1 {
		t.Errorf("broken renewal logged %d times, want once:\n%s", n, logs.String())
	}

	// Fixed: picked up.
	copyCert(t, first, certPath, keyPath, 30)
	if got := serial(t, f); got != want1 {
		t.Fatalf("after the files were fixed: serving %s, want %s", got, want1)
	}
}

// TestCertFilesMissing: a pair that cannot be read stops the relay at
// start-up with the flag named.
func TestCertFilesMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadCertFiles(dir+"/none.pem", dir+"/none.key", slog.Default()); err == nil || !strings.Contains(err.Error(), "-tls-cert") {
		t.Fatalf("loadCertFiles of missing files: %v, want an error naming -tls-cert", err)
	}
}
