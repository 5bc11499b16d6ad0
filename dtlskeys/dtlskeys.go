// Package dtlskeys derives the DTLS-SRTP keys of one pion connection
// through pion's public hooks, without forking pion: the DTLS key log
// (client random and master secret) and the server hello hook (server
// random, cipher suite, SRTP profile). With them the relay can encrypt
// (or decrypt) SRTP itself, in place in its own buffers, where pion's
// SRTP session would copy, lock and hand off per packet.
//
// It works where the relay is the DTLS server: the server hello hook only
// runs there, and the server random is in no other public place. The
// relay offers sub connections, and the clients that answer them take
// setup:active (browsers and pion clients do), so the relay is the server
// there. Anything else (the relay is the client, an unknown cipher suite
// or SRTP profile, a hook that never ran) is an error from [Capture.Keys],
// and the caller keeps pion's own SRTP path.
//
// Secrets stay in process memory: the key log writer is a [Capture], which
// parses what pion writes and keeps it in its fields; nothing is written to
// a file or a log (docs/security.md, "DTLS-SRTP keys in the relay").
package dtlskeys

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// Errors of [Capture.Keys]. Each means: keep pion's SRTP path for this
// connection.
var (
	// ErrNoServerHello: the server hello hook never ran; the relay was
	// not the DTLS server of this connection (or the handshake has not
	// reached the server hello).
	ErrNoServerHello = errors.New("dtlskeys: no DTLS server hello seen (the relay is not the DTLS server here)")
	// ErrNoMasterSecret: pion wrote no key log line for the handshake yet
	// (it writes one when the handshake's keys are known).
	ErrNoMasterSecret = errors.New("dtlskeys: no DTLS master secret logged yet")
	// ErrUnknownSuite: the negotiated cipher suite's PRF hash is unknown here.
	ErrUnknownSuite = errors.New("dtlskeys: unknown DTLS cipher suite")
	// ErrNoSRTPProfile: the server hello carried no use_srtp extension
	// with exactly one profile, or one pion/srtp does not support.
	ErrNoSRTPProfile = errors.New("dtlskeys: no usable SRTP protection profile in the server hello")
	// ErrBadKeyLog: a key log line did not parse.
	ErrBadKeyLog = errors.New("dtlskeys: malformed DTLS key log line")
)

// exporterLabel is RFC 5764's exporter label for DTLS-SRTP.
const exporterLabel = "EXTRACTOR-dtls_srtp"

// keyLogLabel is the only key log label pion/dtls (TLS 1.2) writes.
const keyLogLabel = "CLIENT_RANDOM"

// randomLen is the length of a TLS client or server random.
const randomLen = handshake.RandomLength

// Capture collects one DTLS handshake's secrets from pion's hooks. Give
// each connection its own (a SettingEngine copy per connection): its key
// log writer and server hello hook then see only that handshake. Safe for
// use by several goroutines (pion calls the hooks from its handshake
// goroutine, the caller reads from another).
type Capture struct {
	mu           sync.Mutex
	line         []byte // a key log line not yet ended by '\n'; guarded by mu
	clientRandom [randomLen]byte
	masterSecret []byte // nil until logged; guarded by mu
	serverRandom [randomLen]byte
	suite        dtls.CipherSuiteID
	profile      dtls.SRTPProtectionProfile
	hello        bool // the server hello was seen
	profileOK    bool // it carried exactly one SRTP profile
	err          error
}

// Write takes what pion's DTLS key log writer writes ("CLIENT_RANDOM
// <client random hex> <master secret hex>\n"). It keeps the line in
// memory only. A malformed line is remembered and returned by Keys (pion
// only logs a failed write at debug level).
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.line = append(c.line, p...)
	for {
		i := bytes.IndexByte(c.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := c.parseLocked(c.line[:i]); err != nil {
			c.err = err
		}
		c.line = c.line[:copy(c.line, c.line[i+1:])]
	}
}

// parseLocked reads one key log line; c.mu is held.
func (c *Capture) parseLocked(line []byte) error {
	fields := bytes.Fields(line)
	if len(fields) != 3 || string(fields[0]) != keyLogLabel {
		return fmt.Errorf("%w: want %q and two hex fields, got %d fields", ErrBadKeyLog, keyLogLabel, len(fields))
	}
	var random [randomLen]byte
	if n, err := hex.Decode(random[:], fields[1]); err != nil || n != randomLen || len(fields[1]) != 2*randomLen {
		return fmt.Errorf("%w: client random is not %d hex bytes", ErrBadKeyLog, randomLen)
	}
	secret := make([]byte, hex.DecodedLen(len(fields[2])))
	if _, err := hex.Decode(secret, fields[2]); err != nil || len(secret) == 0 {
		return fmt.Errorf("%w: master secret is not hex", ErrBadKeyLog)
	}
	c.clientRandom = random
	c.masterSecret = secret
	return nil
}

// ServerHelloHook is the hook for pion's SetDTLSServerHelloMessageHook:
// it records the server random, the cipher suite and the SRTP profile and
// returns the message unchanged.
func (c *Capture) ServerHelloHook(msg handshake.MessageServerHello) handshake.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hello = true
	c.serverRandom = msg.Random.MarshalFixed()
	c.suite = 0
	if msg.CipherSuiteID != nil {
		c.suite = dtls.CipherSuiteID(*msg.CipherSuiteID)
	}
	c.profileOK = false
	for _, ext := range msg.Extensions {
		if u, ok := ext.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			c.profile, c.profileOK = u.ProtectionProfiles[0], true
		}
	}
	return &msg
}

// Keys are one connection's SRTP master keys and salts, split as RFC 5764
// section 4.2 does (client write key, server write key, client salt,
// server salt).
type Keys struct {
	Profile    srtp.ProtectionProfile
	ClientKey  []byte
	ClientSalt []byte
	ServerKey  []byte
	ServerSalt []byte
}

// Keys derives the SRTP keys of the captured handshake (RFC 5705's
// exporter with RFC 5764's label). It fails, with one of the errors
// above, until both hooks have run for the same handshake.
func (c *Capture) Keys() (Keys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return Keys{}, c.err
	case !c.hello:
		return Keys{}, ErrNoServerHello
	case c.masterSecret == nil:
		return Keys{}, ErrNoMasterSecret
	case !c.profileOK:
		return Keys{}, ErrNoSRTPProfile
	}
	h, err := prfHash(c.suite)
	if err != nil {
		return Keys{}, err
	}
	profile := srtp.ProtectionProfile(c.profile)
	keyLen, err := profile.KeyLen()
	if err != nil {
		return Keys{}, fmt.Errorf("%w: %v", ErrNoSRTPProfile, err)
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return Keys{}, fmt.Errorf("%w: %v", ErrNoSRTPProfile, err)
	}
	seed := make([]byte, 0, len(exporterLabel)+2*randomLen)
	seed = append(seed, exporterLabel...)
	seed = append(seed, c.clientRandom[:]...)
	seed = append(seed, c.serverRandom[:]...)
	m, err := prf.PHash(c.masterSecret, seed, 2*(keyLen+saltLen), h)
	if err != nil {
		return Keys{}, fmt.Errorf("dtlskeys: exporter: %w", err)
	}
	return Keys{
		Profile:    profile,
		ClientKey:  m[:keyLen],
		ServerKey:  m[keyLen : 2*keyLen],
		ClientSalt: m[2*keyLen : 2*keyLen+saltLen],
		ServerSalt: m[2*keyLen+saltLen:],
	}, nil
}

// prfHash is the TLS 1.2 PRF hash of a cipher suite: SHA-384 for the
// *_SHA384 suites, SHA-256 for every other suite pion/dtls implements
// (RFC 5246 section 5: SHA-256 unless the suite says otherwise).
func prfHash(id dtls.CipherSuiteID) (prf.HashFunc, error) {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384, nil
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8:
		return sha256.New, nil
	}
	return nil, fmt.Errorf("%w: %#04x (%s)", ErrUnknownSuite, uint16(id), dtls.CipherSuiteName(id))
}

// ServerSide returns the keys as the DTLS server (the relay) uses them:
// it encrypts with the server write key and decrypts with the client's.
func (k Keys) ServerSide() srtp.SessionKeys {
	return srtp.SessionKeys{
		LocalMasterKey:   k.ServerKey,
		LocalMasterSalt:  k.ServerSalt,
		RemoteMasterKey:  k.ClientKey,
		RemoteMasterSalt: k.ClientSalt,
	}
}
