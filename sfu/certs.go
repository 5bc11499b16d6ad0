package sfu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// The relay's DTLS certificate. Given none, pion makes a new ECDSA P-256
// key and a self-signed certificate for every peer connection: a key
// generation and a signature, 6.5% of the relay's CPU per audience join
// (docs/performance.md, "A join's CPU"). A relay is a server, not a user
// whose connections should not be linked: one certificate serves every
// connection it makes, as in other SFUs, and is renewed once a day so
// that it never nears the month pion gives it (a connection keeps the
// certificate it was made with).

// certLifetime is how long one certificate is given to new connections.
const certLifetime = 24 * time.Hour

// dtlsCert hands out the relay's current certificate.
type dtlsCert struct {
	mu   sync.Mutex
	cert []webrtc.Certificate // nil until the first connection
	made time.Time
	now  func() time.Time // time.Now; a test's clock
}

// current returns the certificate for a new connection, making a new one
// on first use and once the current one is certLifetime old.
func (c *dtlsCert) current() ([]webrtc.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.cert != nil && now().Sub(c.made) < certLifetime {
		return c.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("DTLS certificate key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("DTLS certificate: %w", err)
	}
	c.cert, c.made = []webrtc.Certificate{*cert}, now()
	return c.cert, nil
}

// connConfig is the configuration of a new peer connection of the relay:
// its DTLS certificate.
func (s *SFU) connConfig() (webrtc.Configuration, error) {
	certs, err := s.cert.current()
	if err != nil {
		return webrtc.Configuration{}, err
	}
	return webrtc.Configuration{Certificates: certs}, nil
}
