package dtlskeys

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
	"go.uber.org/goleak"
)

// runHandshake runs a real pion/dtls handshake over loopback UDP and returns
// both ends. server and client are the configs; the certificates are
// filled in here.
func runHandshake(t *testing.T, server, client *dtls.Config) (srv, cli *dtls.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*dtls.Config{server, client} {
		c.Certificates = []tls.Certificate{cert}
		c.InsecureSkipVerify = true
	}
	srv, err = dtls.Server(sc, cc.LocalAddr(), server)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = dtls.Client(cc, sc.LocalAddr(), client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); _ = cli.Close() })
	errc := make(chan error, 1)
	go func() { errc <- srv.HandshakeContext(ctx) }()
	if err := cli.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return srv, cli
}

// TestKeysMatchPion derives the keys from the hooks and compares them with
// pion/srtp's own extraction from the same handshake, on both ends, for
// every SRTP profile the relay offers and each PRF hash.
func TestKeysMatchPion(t *testing.T) {
	defer goleak.VerifyNone(t)
	profiles := []dtls.SRTPProtectionProfile{
		dtls.SRTP_AEAD_AES_128_GCM,
		dtls.SRTP_AEAD_AES_256_GCM,
		dtls.SRTP_AES128_CM_HMAC_SHA1_80,
		dtls.SRTP_AES128_CM_HMAC_SHA1_32,
	}
	suites := []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	}
	for _, p := range profiles {
		for _, s := range suites {
			t.Run(srtp.ProtectionProfile(p).String()+"/"+dtls.CipherSuiteName(s), func(t *testing.T) {
				var c Capture
				srv, cli := runHandshake(t,
					&dtls.Config{
						SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{p},
						CipherSuites:           []dtls.CipherSuiteID{s},
						ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
						KeyLogWriter:           &c,
						ServerHelloMessageHook: c.ServerHelloHook,
					},
					&dtls.Config{
						SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{p},
						CipherSuites:           []dtls.CipherSuiteID{s},
						ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
					})
				got, err := c.Keys()
				if err != nil {
					t.Fatal(err)
				}
				if got.Profile != srtp.ProtectionProfile(p) {
					t.Fatalf("profile %v, want %v", got.Profile, p)
				}
				for _, end := range []struct {
					name     string
					conn     *dtls.Conn
					isClient bool
				}{{"server", srv, false}, {"client", cli, true}} {
					state, ok := end.conn.ConnectionState()
					if !ok {
						t.Fatal("no connection state")
					}
					cfg := srtp.Config{Profile: srtp.ProtectionProfile(p)}
					if err := cfg.ExtractSessionKeysFromDTLS(&state, end.isClient); err != nil {
						t.Fatal(err)
					}
					local, remote := got.ServerKey, got.ClientKey
					localSalt, remoteSalt := got.ServerSalt, got.ClientSalt
					if end.isClient {
						local, remote, localSalt, remoteSalt = remote, local, remoteSalt, localSalt
					}
					for _, k := range []struct {
						name      string
						got, want []byte
					}{
						{"local key", local, cfg.Keys.LocalMasterKey},
						{"local salt", localSalt, cfg.Keys.LocalMasterSalt},
						{"remote key", remote, cfg.Keys.RemoteMasterKey},
						{"remote salt", remoteSalt, cfg.Keys.RemoteMasterSalt},
					} {
						if !bytes.Equal(k.got, k.want) {
							t.Errorf("%s %s: %x, pion %x", end.name, k.name, k.got, k.want)
						}
					}
				}
			})
		}
	}
}

// TestKeysErrors: every way the capture cannot give keys is an error
// naming why, so that the caller keeps pion's path.
func TestKeysErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	srtpOnly := []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM}
	t.Run("relay is the DTLS client", func(t *testing.T) {
		// The client logs its secret too, but no server hello hook runs.
		var c Capture
		runHandshake(t,
			&dtls.Config{SRTPProtectionProfiles: srtpOnly},
			&dtls.Config{SRTPProtectionProfiles: srtpOnly, KeyLogWriter: &c})
		if _, err := c.Keys(); !errors.Is(err, ErrNoServerHello) {
			t.Fatalf("err %v, want ErrNoServerHello", err)
		}
	})
	t.Run("no SRTP negotiated", func(t *testing.T) {
		var c Capture
		runHandshake(t,
			&dtls.Config{KeyLogWriter: &c, ServerHelloMessageHook: c.ServerHelloHook},
			&dtls.Config{})
		if _, err := c.Keys(); !errors.Is(err, ErrNoSRTPProfile) {
			t.Fatalf("err %v, want ErrNoSRTPProfile", err)
		}
	})
	t.Run("unknown cipher suite", func(t *testing.T) {
		var c Capture
		c.Write([]byte("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n"))
		suite := uint16(0x00ff)
		c.ServerHelloHook(serverHello(suite))
		if _, err := c.Keys(); !errors.Is(err, ErrUnknownSuite) {
			t.Fatalf("err %v, want ErrUnknownSuite", err)
		}
	})
	t.Run("no key log yet", func(t *testing.T) {
		var c Capture
		c.ServerHelloHook(serverHello(uint16(dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)))
		if _, err := c.Keys(); !errors.Is(err, ErrNoMasterSecret) {
			t.Fatalf("err %v, want ErrNoMasterSecret", err)
		}
	})
	for _, line := range []string{
		"SERVER_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48),
		"CLIENT_RANDOM " + strings.Repeat("ab", 31) + " " + strings.Repeat("cd", 48),
		"CLIENT_RANDOM " + strings.Repeat("zz", 32) + " " + strings.Repeat("cd", 48),
		"CLIENT_RANDOM " + strings.Repeat("ab", 32) + " xyz",
		"CLIENT_RANDOM " + strings.Repeat("ab", 32),
	} {
		t.Run("malformed key log "+line[:16], func(t *testing.T) {
			var c Capture
			if n, err := c.Write([]byte(line + "\n")); n != len(line)+1 || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			c.ServerHelloHook(serverHello(uint16(dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)))
			if _, err := c.Keys(); !errors.Is(err, ErrBadKeyLog) {
				t.Fatalf("err %v, want ErrBadKeyLog", err)
			}
		})
	}
	t.Run("key log line in pieces", func(t *testing.T) {
		var c Capture
		line := "CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n"
		for i := range line {
			c.Write([]byte{line[i]})
		}
		c.ServerHelloHook(serverHello(uint16(dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)))
		if _, err := c.Keys(); err != nil {
			t.Fatalf("err %v, want keys", err)
		}
	})
}

// serverHello is a server hello with the given suite and AES-128-GCM SRTP,
// for the cases a real handshake cannot produce.
func serverHello(suite uint16) handshake.MessageServerHello {
	return handshake.MessageServerHello{
		CipherSuiteID: &suite,
		Extensions: []extension.Extension{&extension.UseSRTP{
			ProtectionProfiles: []extension.SRTPProtectionProfile{extension.SRTP_AEAD_AES_128_GCM},
		}},
	}
}
