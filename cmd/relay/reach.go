package main

import (
	"flag"
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
}

// reachFlags are the flags of reachConfig that need work after parsing.
type reachFlags struct {
	tcp setString
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
	fs.Var(&rf.tcp, "tcp", "TCP listen address for ICE-TCP media, for clients whose networks block UDP (default: the -udp address, the same port number on TCP); empty: off")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file (PEM, full chain) for HTTPS and WSS on -http; with -tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "private key file (PEM) of -tls-cert")
	fs.StringVar(&c.ACMEDomain, "acme-domain", "", "get and renew the HTTPS certificate for this domain from an ACME CA (Let's Encrypt); the domain must resolve to this relay, and -http should be :443 (TLS-ALPN-01) or -acme-http reachable on port 80 (HTTP-01)")
	fs.StringVar(&c.ACMECache, "acme-cache", "", "directory keeping the ACME account and certificates across restarts (needed with -acme-domain)")
	fs.StringVar(&c.ACMEHTTP, "acme-http", ":80", "HTTP listen address for ACME HTTP-01 challenges (other requests are redirected to https); empty: off, TLS-ALPN-01 on -http only")
	fs.StringVar(&c.ACMEEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices); optional")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", "", "ACME directory URL; empty: Let's Encrypt's production CA (https://acme-v02.api.letsencrypt.org/directory); its staging CA for trials")
	return rf
}

// apply fills c's reach settings once every flag is parsed.
func (rf *reachFlags) apply(c *Config) error {
	c.TCPAddr = c.UDPAddr
	if rf.tcp.set {
		c.TCPAddr = rf.tcp.val
	}
	return c.validateTLS()
}
