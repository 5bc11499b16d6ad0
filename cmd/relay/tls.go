package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// tlsSetup is the relay's certificate: from files, or from an ACME CA
// (Let's Encrypt) through autocert.
type tlsSetup struct {
	config *tls.Config // for the HTTP port (and TURN over TLS); nil: plain HTTP
	// acme answers HTTP-01 challenges (and redirects everything else to
	// https); nil without ACME or with -acme-http empty.
	acme http.Handler
}

// validateTLS checks the TLS flags' combinations; the files are read by
// setupTLS.
func (c reachConfig) validateTLS() error {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("-tls-cert and -tls-key go together: give both files (PEM), or neither")
	case c.TLSCert != "" && c.ACMEDomain != "":
		return errors.New("-tls-cert and -acme-domain exclude each other: use certificate files or ACME, not both")
	case c.ACMEDomain != "" && c.ACMECache == "":
		return errors.New("-acme-domain needs -acme-cache, a directory that outlives restarts (the CA limits how often a certificate may be issued)")
	}
	return nil
}

// setupTLS loads the certificate files (and reloads them when they are
// renewed: certreload.go) or prepares ACME.
func (c reachConfig) setupTLS(log *slog.Logger) (tlsSetup, error) {
	switch {
	case c.TLSCert != "":
		files, err := loadCertFiles(c.TLSCert, c.TLSKey, log)
		if err != nil {
			return tlsSetup{}, err
		}
		return tlsSetup{config: &tls.Config{GetCertificate: files.GetCertificate, MinVersion: tls.VersionTLS12}}, nil
	case c.ACMEDomain != "":
		if err := os.MkdirAll(c.ACMECache, 0o700); err != nil {
			return tlsSetup{}, fmt.Errorf("-acme-cache: %w", err)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(c.ACMEDomain),
			Cache:      autocert.DirCache(c.ACMECache),
			Email:      c.ACMEEmail,
		}
		if c.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: c.ACMEDirectory}
		}
		// TLSConfig answers TLS-ALPN-01 challenges on the HTTPS port
		// itself (ALPN acme-tls/1), so a relay on :443 needs no :80.
		s := tlsSetup{config: m.TLSConfig()}
		s.config.MinVersion = tls.VersionTLS12
		if c.ACMEHTTP != "" {
			s.acme = m.HTTPHandler(nil)
		}
		return s, nil
	}
	return tlsSetup{}, nil
}

// serveACME serves HTTP-01 challenges on addr until stop is called.
func serveACME(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("ACME HTTP-01 server failed", "err", err)
		}
	}()
	log.Info("ACME HTTP-01 challenges served", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
