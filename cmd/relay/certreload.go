package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certRecheck is how often, at most, the certificate files are looked at
// again: certbot and cert-manager replace them days before the old
// certificate expires, so a minute is plenty and costs two stat calls.
const certRecheck = time.Minute

// certFiles serves the certificate in -tls-cert/-tls-key and picks up a
// renewal without a restart: on a handshake at least certRecheck after the
// last look, it checks the files' modification times and, if either
// changed, loads them again. A pair that does not load (a renewal half
// written, a key that does not match) is logged and the current
// certificate kept, so a bad renewal never takes HTTPS down.
type certFiles struct {
	certPath, keyPath string
	recheck           time.Duration
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lookedAt  time.Time
	lastError string // the last reload failure logged, to log each once
}

// loadCertFiles reads the pair once; an error here stops the relay.
func loadCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certPath: certPath, keyPath: keyPath, recheck: certRecheck, log: log}
	if err := f.load(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads both files; f.mu held or f not shared yet.
func (f *certFiles) load(now time.Time) error {
	certMod, keyMod, err := f.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return fmt.Errorf("-tls-cert %s, -tls-key %s: %w", f.certPath, f.keyPath, err)
	}
	f.cert, f.certMod, f.keyMod, f.lookedAt = &cert, certMod, keyMod, now
	return nil
}

func (f *certFiles) modTimes() (cert, key time.Time, err error) {
	ci, err := os.Stat(f.certPath)
	if err != nil {
		return cert, key, fmt.Errorf("-tls-cert: %w", err)
	}
	ki, err := os.Stat(f.keyPath)
	if err != nil {
		return cert, key, fmt.Errorf("-tls-key: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate is the tls.Config hook.
func (f *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.lookedAt) < f.recheck {
		return f.cert, nil
	}
	f.lookedAt = now
	certMod, keyMod, err := f.modTimes()
	if err == nil && certMod.Equal(f.certMod) && keyMod.Equal(f.keyMod) {
		return f.cert, nil
	}
	if err == nil {
		err = f.load(now)
	}
	if err != nil {
		if msg := err.Error(); msg != f.lastError {
			f.lastError = msg
			f.log.Warn("cannot reload the TLS certificate; still serving the one loaded before (fix the files: they are read again within a minute)", "err", err)
		}
		return f.cert, nil
	}
	f.lastError = ""
	f.log.Info("TLS certificate reloaded", "cert", f.certPath, "not_after", f.cert.Leaf.NotAfter)
	return f.cert, nil
}
