package client

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// rtcConfig is the configuration of the client's peer connections: the
// relay's ice_servers from joined (those Config.ICEServerURLs keeps) and
// Config.ICETransportPolicy.
func (c *Client) rtcConfig() webrtc.Configuration {
	return webrtc.Configuration{ICEServers: c.iceServers(), ICETransportPolicy: c.cfg.ICETransportPolicy}
}

func (c *Client) iceServers() []webrtc.ICEServer {
	if c.cfg.IgnoreICEServers {
		return nil
	}
	var out []webrtc.ICEServer
	for _, s := range c.joined.ICEServers {
		var urls []string
		for _, u := range s.URLs {
			if c.cfg.ICEServerURLs == nil || c.cfg.ICEServerURLs(u) {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			out = append(out, webrtc.ICEServer{URLs: urls, Username: s.Username, Credential: s.Credential})
		}
	}
	return out
}

// turnDialer opens the TCP connections to TURN servers when Config.TLSConfig
// is set: TLS with it to a turns: server (pion's own TLS trusts the
// system's roots only), plain TCP to the others.
type turnDialer struct {
	tls   *tls.Config
	turns map[string]string // host:port of each turns: URL -> its host (the TLS server name)
}

func newTURNDialer(cfg *tls.Config, servers []protocol.ICEServer) *turnDialer {
	d := &turnDialer{tls: cfg, turns: make(map[string]string)}
	for _, s := range servers {
		for _, raw := range s.URLs {
			if !strings.HasPrefix(raw, "turns:") {
				continue
			}
			u, err := stun.ParseURI(raw)
			if err != nil {
				continue
			}
			d.turns[net.JoinHostPort(u.Host, strconv.Itoa(u.Port))] = u.Host
		}
	}
	return d
}

// Dial implements golang.org/x/net/proxy.Dialer, which pion asks for.
func (d *turnDialer) Dial(network, addr string) (net.Conn, error) {
	host, ok := d.turns[addr]
	if !ok {
		return net.Dial(network, addr)
	}
	cfg := d.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return tls.Dial(network, addr, cfg)
}
