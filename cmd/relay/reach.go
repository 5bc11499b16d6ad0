package main

import (
	"errors"
	"flag"
	"time"

	"github.com/lianmai/relay/server"
)

// reachConfig is how clients reach the relay besides the UDP media port:
// ICE-TCP. docs/configuration.md, "Deployment", says which to open.
type reachConfig struct {
	// TCPAddr is the ICE-TCP port; empty: off.
	TCPAddr string
	// HTTPS and WSS: certificate files, or ACME (tls.go).
	TLSCert, TLSKey string
	ACMEDomain      string
	ACMECache       string
	ACMEHTTP        string
	ACMEEmail       string
	ACMEDirectory   string
	// TURN: the embedded TURN server (server.TURNConfig), if TURN.
	TURN                      bool
	TURNUDP, TURNTCP, TURNTLS string
	TURNHost                  string
	TURNSecret                string
	TURNTTL                   time.Duration
}

// reachFlags are the flags of reachConfig that need work after parsing.
type reachFlags struct {
	tcp, turnTLS setString
}

// setString is a string flag that knows whether it was given (on the
// command line or in the environment), so that an explicit empty value
// can mean off while the default follows another flag.
type setString struct {
	val string
	set bool
}

func (s *setString) String() string     { return s.val }
func (s *setString) Set(v string) error { s.val, s.set = v, true; return nil }

func defineReachFlags(fs *flag.FlagSet, c *reachConfig) *reachFlags {
	rf := &reachFlags{}
	fs.Var(&rf.tcp, "tcp", "TCP listen `address` for ICE-TCP media, for clients whose networks block UDP (default: the -udp address, the same port number on TCP); empty: off")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file (PEM, full chain) for HTTPS and WSS on -http; with -tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "private key file (PEM) of -tls-cert")
	fs.StringVar(&c.ACMEDomain, "acme-domain", "", "get and renew the HTTPS certificate for this domain from an ACME CA (Let's Encrypt); the domain must resolve to this relay, and -http should be :443 (TLS-ALPN-01) or -acme-http reachable on port 80 (HTTP-01)")
	fs.StringVar(&c.ACMECache, "acme-cache", "", "directory keeping the ACME account and certificates across restarts (needed with -acme-domain)")
	fs.StringVar(&c.ACMEHTTP, "acme-http", ":80", "HTTP listen address for ACME HTTP-01 challenges (other requests are redirected to https); empty: off, TLS-ALPN-01 on -http only")
	fs.StringVar(&c.ACMEEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices); optional")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", "", "ACME directory URL; empty: Let's Encrypt's production CA (https://acme-v02.api.letsencrypt.org/directory); its staging CA for trials")
	fs.BoolVar(&c.TURN, "turn", false, "run the embedded TURN server, for clients that reach neither the UDP nor the TCP media port; clients get its URLs with credentials in joined")
	fs.StringVar(&c.TURNUDP, "turn-udp", ":3478", "TURN over UDP listen address (with -turn); empty: off")
	fs.StringVar(&c.TURNTCP, "turn-tcp", ":3478", "TURN over TCP listen address (with -turn); empty: off")
	fs.Var(&rf.turnTLS, "turn-tls", "TURN over TLS listen `address` (with -turn), with the HTTPS certificate (default :5349 when the relay has one, else off; :443 passes most firewalls, if -http is elsewhere); empty: off")
	fs.StringVar(&c.TURNHost, "turn-host", "", "name or IP clients reach the TURN server at, put in its URLs (default: the first -announce-ip, else -acme-domain, else 127.0.0.1 with -loopback); for TURN over TLS, a name the certificate is for")
	fs.StringVar(&c.TURNSecret, "turn-secret", "", "secret that signs TURN credentials (HMAC-SHA1, the TURN REST API scheme); empty: random per process. Prefer RELAY_TURN_SECRET: flags show in ps")
	fs.DurationVar(&c.TURNTTL, "turn-ttl", 12*time.Hour, "how long a participant's TURN credentials stay valid; its allocation ends when they expire")
	return rf
}

// turnConfig is the TURN server's configuration, nil without -turn;
// main adds the certificate.
func (c reachConfig) turnConfig() *server.TURNConfig {
	if !c.TURN {
		return nil
	}
	return &server.TURNConfig{UDPAddr: c.TURNUDP, TCPAddr: c.TURNTCP, TLSAddr: c.TURNTLS, Host: c.TURNHost,
		Secret: []byte(c.TURNSecret), TTL: c.TURNTTL}
}

// apply fills c's reach settings once every flag is parsed.
func (rf *reachFlags) apply(c *Config) error {
	c.TCPAddr = c.UDPAddr
	if rf.tcp.set {
		c.TCPAddr = rf.tcp.val
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	hasCert := c.TLSCert != "" || c.ACMEDomain != ""
	switch {
	case rf.turnTLS.set:
		c.TURNTLS = rf.turnTLS.val
	case hasCert:
		c.TURNTLS = ":5349"
	}
	if !c.TURN {
		return nil
	}
	if c.TURNTLS != "" && !hasCert {
		return errors.New("-turn-tls needs a certificate: give -tls-cert/-tls-key or -acme-domain, or leave -turn-tls empty")
	}
	if c.TURNUDP == "" && c.TURNTCP == "" && c.TURNTLS == "" {
		return errors.New("-turn with -turn-udp, -turn-tcp and -turn-tls all empty listens nowhere")
	}
	if c.TURNTTL <= 0 {
		return errors.New("-turn-ttl must be positive")
	}
	if c.TURNHost == "" {
		switch {
		case len(c.AnnounceIPs) > 0:
			c.TURNHost = c.AnnounceIPs[0]
		case c.ACMEDomain != "":
			c.TURNHost = c.ACMEDomain
		case c.Loopback:
			c.TURNHost = "127.0.0.1"
		default:
			return errors.New("-turn needs -turn-host: the name or public IP clients reach this machine at (or set -announce-ip)")
		}
	}
	return nil
}
