package main

import (
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/auth"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.HTTPAddr != ":8080" || c.UDPAddr != ":50000" || c.Seats != 9 || c.Grace != 10*time.Second || c.Loopback {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "env fallback", env: map[string]string{"RELAY_HTTP": ":9000", "RELAY_SEATS": "4", "RELAY_LOOPBACK": "true", "RELAY_ANNOUNCE_IP": "203.0.113.7, 2001:db8::1"},
			check: func(t *testing.T, c Config) {
				if c.HTTPAddr != ":9000" || c.Seats != 4 || !c.Loopback || len(c.AnnounceIPs) != 2 || c.AnnounceIPs[0] != "203.0.113.7" {
					t.Errorf("env not applied: %+v", c)
				}
			}},
		{name: "flag beats env", args: []string{"-seats", "2"}, env: map[string]string{"RELAY_SEATS": "4"},
			check: func(t *testing.T, c Config) {
				if c.Seats != 2 {
					t.Errorf("seats %d, want 2", c.Seats)
				}
			}},
		{name: "memory limit", args: []string{"-gomemlimit", "512MiB"}, check: func(t *testing.T, c Config) {
			if c.MemoryLimit != 512<<20 {
				t.Errorf("memory limit %d", c.MemoryLimit)
			}
		}},
		{name: "no memory limit", args: []string{"-gomemlimit", "none"}, check: func(t *testing.T, c Config) {
			if c.MemoryLimit != -1 {
				t.Errorf("memory limit %d, want -1", c.MemoryLimit)
			}
		}},
		{name: "tcp follows udp", args: []string{"-udp", "127.0.0.1:50001"}, check: func(t *testing.T, c Config) {
			if c.TCPAddr != "127.0.0.1:50001" {
				t.Errorf("tcp %q, want the -udp address", c.TCPAddr)
			}
		}},
		{name: "tcp off", args: []string{"-tcp", ""}, check: func(t *testing.T, c Config) {
			if c.TCPAddr != "" {
				t.Errorf("tcp %q, want off", c.TCPAddr)
			}
		}},
		{name: "tcp from env", env: map[string]string{"RELAY_TCP": ":443"}, check: func(t *testing.T, c Config) {
			if c.TCPAddr != ":443" {
				t.Errorf("tcp %q, want :443", c.TCPAddr)
			}
		}},
		{name: "tls cert without key", args: []string{"-tls-cert", "c.pem"}, wantErr: "-tls-cert and -tls-key go together"},
		{name: "tls files and acme", args: []string{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-acme-domain", "relay.example"}, wantErr: "exclude each other"},
		{name: "acme without cache", args: []string{"-acme-domain", "relay.example"}, wantErr: "-acme-cache"},
		{name: "turn host from announce ip", args: []string{"-turn", "-announce-ip", "203.0.113.7"}, check: func(t *testing.T, c Config) {
			tc := c.turnConfig()
			if tc == nil || tc.Host != "203.0.113.7" || tc.UDPAddr != ":3478" || tc.TCPAddr != ":3478" || tc.TLSAddr != "" {
				t.Errorf("turn config %+v", tc)
			}
		}},
		{name: "turn tls follows the certificate", args: []string{"-turn", "-turn-host", "relay.example", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, check: func(t *testing.T, c Config) {
			if tc := c.turnConfig(); tc == nil || tc.TLSAddr != ":5349" || tc.Host != "relay.example" {
				t.Errorf("turn config %+v", tc)
			}
		}},
		{name: "no turn", check: func(t *testing.T, c Config) {
			if tc := c.turnConfig(); tc != nil {
				t.Errorf("turn config %+v without -turn", tc)
			}
		}},
		{name: "turn without host", args: []string{"-turn"}, wantErr: "-turn-host"},
		{name: "turn tls without certificate", args: []string{"-turn", "-turn-host", "x", "-turn-tls", ":5349"}, wantErr: "-turn-tls needs a certificate"},
		{name: "turn listens nowhere", args: []string{"-turn", "-loopback", "-turn-udp", "", "-turn-tcp", ""}, wantErr: "listens nowhere"},
		{name: "turn ttl", args: []string{"-turn", "-loopback", "-turn-ttl", "0s"}, wantErr: "-turn-ttl"},
		{name: "bad env value names the variable", env: map[string]string{"RELAY_SEATS": "many"}, wantErr: "RELAY_SEATS"},
		{name: "unknown flag", args: []string{"-colour"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected argument"},
		{name: "bad announce IP", args: []string{"-announce-ip", "relay.example"}, wantErr: "not an IP address"},
		{name: "bad memory limit", args: []string{"-gomemlimit", "lots"}, wantErr: "-gomemlimit"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: "-log-level"},
		{name: "zero seats", args: []string{"-seats", "0"}, wantErr: "at least one seat"},
		{name: "bad gogc", args: []string{"-gogc", "-5"}, wantErr: "-gogc"},
		{name: "bad fanout threshold", args: []string{"-fanout-threshold", "-2"}, wantErr: "-fanout-threshold"},
		{name: "direct send off", env: map[string]string{"RELAY_DIRECT_SEND": "false"}, check: func(t *testing.T, c Config) {
			if c.DirectSend || !c.relayConfig(nil).SFU.DisableDirectSend {
				t.Errorf("direct send %v (sfu's disable %v), want off", c.DirectSend, c.relayConfig(nil).SFU.DisableDirectSend)
			}
		}},
		{name: "direct send default", check: func(t *testing.T, c Config) {
			if !c.DirectSend || c.relayConfig(nil).SFU.DisableDirectSend {
				t.Errorf("direct send %v, want on by default", c.DirectSend)
			}
		}},
		{name: "bad direct send", args: []string{"-direct-send=maybe"}, wantErr: "direct-send"},
		{name: "fanout never", env: map[string]string{"RELAY_FANOUT_THRESHOLD": "-1"}, check: func(t *testing.T, c Config) {
			if c.FanoutThreshold != -1 || c.relayConfig(nil).FanoutThreshold != -1 {
				t.Errorf("fanout threshold %d (server's %d), want -1", c.FanoutThreshold, c.relayConfig(nil).FanoutThreshold)
			}
		}},
		{name: "direct ingest on by default", check: func(t *testing.T, c Config) {
			if !c.DirectIngest || c.relayConfig(nil).NoDirectIngest {
				t.Errorf("direct ingest %v (server's off: %v), want on", c.DirectIngest, c.relayConfig(nil).NoDirectIngest)
			}
		}},
		{name: "direct ingest off", env: map[string]string{"RELAY_DIRECT_INGEST": "false"}, check: func(t *testing.T, c Config) {
			if c.DirectIngest || !c.relayConfig(nil).NoDirectIngest {
				t.Errorf("direct ingest %v (server's off: %v), want off", c.DirectIngest, c.relayConfig(nil).NoDirectIngest)
			}
		}},
		{name: "bad direct ingest", args: []string{"-direct-ingest=maybe"}, wantErr: "direct-ingest"},
		{name: "takeover on by default", check: func(t *testing.T, c Config) {
			if !c.Takeover || c.relayConfig(nil).SFU.DisableTakeover {
				t.Errorf("takeover %v (sfu's disable %v), want on", c.Takeover, c.relayConfig(nil).SFU.DisableTakeover)
			}
		}},
		{name: "takeover off", env: map[string]string{"RELAY_TAKEOVER": "false"}, check: func(t *testing.T, c Config) {
			if c.Takeover || !c.relayConfig(nil).SFU.DisableTakeover {
				t.Errorf("takeover %v (sfu's disable %v), want off", c.Takeover, c.relayConfig(nil).SFU.DisableTakeover)
			}
		}},
		{name: "bad takeover", args: []string{"-takeover=maybe"}, wantErr: "takeover"},
		{name: "short secret", env: map[string]string{"RELAY_AUTH_SECRET": "short"}, wantErr: "-auth-secret"},
		{name: "trusted proxies", args: []string{"-trusted-proxies", "10.0.0.0/8, 192.0.2.7,fd00::/8"}, check: func(t *testing.T, c Config) {
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("fd00::/8")}
			if !slices.Equal(c.TrustedProxies, want) {
				t.Errorf("trusted proxies %v, want %v", c.TrustedProxies, want)
			}
		}},
		{name: "limits off", args: []string{"-max-pending-per-ip", "-1", "-join-rate-per-ip", "-1", "-max-joined-per-ip", "-1", "-max-connections", "-1"}, check: func(t *testing.T, c Config) {
			if c.MaxPendingPerIP != -1 || c.JoinRatePerIP != -1 || c.MaxJoinedPerIP != -1 || c.MaxConnections != -1 {
				t.Errorf("limits %d %g %d %d, want all -1", c.MaxPendingPerIP, c.JoinRatePerIP, c.MaxJoinedPerIP, c.MaxConnections)
			}
		}},
		{name: "bad trusted proxy", args: []string{"-trusted-proxies", "proxy.example"}, wantErr: "-trusted-proxies"},
		{name: "zero join burst", args: []string{"-join-burst-per-ip", "0"}, wantErr: "-join-burst-per-ip"},
		{name: "zero pending limit", args: []string{"-max-pending-per-ip", "0"}, wantErr: "-max-pending-per-ip"},
		{name: "TCP limit", env: map[string]string{"RELAY_MAX_TCP_PER_IP": "8"}, check: func(t *testing.T, c Config) {
			if rc := c.relayConfig(nil); rc.MaxTCPPerAddr != 8 {
				t.Errorf("MaxTCPPerAddr %d, want 8", rc.MaxTCPPerAddr)
			}
		}},
		{name: "zero TCP limit", args: []string{"-max-tcp-per-ip", "0"}, wantErr: "-max-tcp-per-ip"},
		{name: "negative TCP limit", args: []string{"-max-tcp-per-ip", "-2"}, wantErr: "-max-tcp-per-ip"},
		{name: "audience mix defaults", check: func(t *testing.T, c Config) {
			if c.AudienceListen != "tracks" || c.MixBitrate != 0 || c.MixComplexity != -1 {
				t.Errorf("audience listen %q, mix bitrate %d, complexity %d; want tracks, 0, -1 (the mixer's defaults)", c.AudienceListen, c.MixBitrate, c.MixComplexity)
			}
		}},
		{name: "audience mix from env and flags", args: []string{"-mix-bitrate", "48000"}, env: map[string]string{"RELAY_AUDIENCE_LISTEN": "mix", "RELAY_MIX_COMPLEXITY": "5"},
			check: func(t *testing.T, c Config) {
				if c.AudienceListen != "mix" || c.MixBitrate != 48000 || c.MixComplexity != 5 {
					t.Errorf("audience listen %q, mix bitrate %d, complexity %d; want mix, 48000, 5", c.AudienceListen, c.MixBitrate, c.MixComplexity)
				}
				rc := c.relayConfig(nil)
				if rc.SFU.AudienceListen != "mix" || rc.Mix.Bitrate != 48000 || rc.Mix.Complexity != 5 {
					t.Errorf("relay config: audience listen %q, mix %+v", rc.SFU.AudienceListen, rc.Mix)
				}
			}},
		{name: "bad audience listen", args: []string{"-audience-listen", "both"}, wantErr: "-audience-listen"},
		{name: "mix bitrate too low", args: []string{"-mix-bitrate", "1000"}, wantErr: "-mix-bitrate"},
		{name: "mix complexity too high", env: map[string]string{"RELAY_MIX_COMPLEXITY": "11"}, wantErr: "-mix-complexity"},
		{name: "single relay without nats", check: func(t *testing.T, c Config) {
			if c.NATS != "" || c.relayConfig(nil).Cluster != nil {
				t.Errorf("a relay without -nats got a cluster: %+v", c.relayConfig(nil).Cluster)
			}
		}},
		{name: "cluster flags", args: []string{"-nats", "nats://127.0.0.1:4222", "-node-id", "relay-1", "-node-url", "wss://relay-1.example.com/ws"},
			check: func(t *testing.T, c Config) {
				cc := c.relayConfig(nil).Cluster
				if cc == nil || cc.NATSURL != "nats://127.0.0.1:4222" || cc.NodeID != "relay-1" || cc.NodeURL != "wss://relay-1.example.com/ws" {
					t.Errorf("cluster config %+v", cc)
				}
			}},
		{name: "cluster from env", env: map[string]string{"RELAY_NATS": "nats://n:4222", "RELAY_NODE_ID": "r0", "RELAY_NODE_URL": "ws://10.0.0.5:8080/ws"},
			check: func(t *testing.T, c Config) {
				if c.NATS != "nats://n:4222" || c.NodeID != "r0" || c.NodeURL != "ws://10.0.0.5:8080/ws" {
					t.Errorf("cluster env not applied: %+v", c)
				}
			}},
		{name: "node id from host name", args: []string{"-nats", "nats://n:4222", "-node-url", "wss://x/ws"},
			check: func(t *testing.T, c Config) {
				if c.NodeID == "" {
					t.Error("no node id taken from the host name")
				}
			}},
		{name: "node url missing", args: []string{"-nats", "nats://n:4222", "-node-id", "a"}, wantErr: "-node-url"},
		{name: "node url not websocket", args: []string{"-nats", "nats://n:4222", "-node-id", "a", "-node-url", "https://x/ws"}, wantErr: "-node-url"},
		{name: "bad node id", args: []string{"-nats", "nats://n:4222", "-node-id", "a.b", "-node-url", "wss://x/ws"}, wantErr: "-node-id"},
		{name: "node id without nats", args: []string{"-node-id", "a"}, wantErr: "need -nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestHelpListsEveryFlagWithItsEnvVar(t *testing.T) {
	var out strings.Builder
	if _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &out); err != errHelp {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-http", "-udp", "-tcp", "-tls-cert", "-tls-key", "-acme-domain", "-acme-cache", "-acme-http", "-announce-ip", "-loopback", "-seats", "-max-participants", "-max-rooms", "-mic-timeout", "-auth-secret", "-grace", "-drain-timeout", "-allowed-origins", "-max-tracks", "-message-rate", "-gogc", "-gomemlimit", "-shutdown-timeout", "-log-level", "-log-format", "-fanout-threshold", "-direct-send", "-direct-ingest", "-takeover", "-max-pending-per-ip", "-join-rate-per-ip", "-max-joined-per-ip", "-max-tcp-per-ip", "-max-connections", "-trusted-proxies", "-nats", "-node-id", "-node-url", "RELAY_<FLAG>"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	env := func(k string) string { return map[string]string{"RELAY_AUTH_SECRET": "0123456789abcdef"}[k] }
	var out, errOut strings.Builder
	if code := token([]string{"-room", "r1", "-name", "Ann", "-role", "host", "-ttl", "1h"}, env, &out, &errOut); code != 0 {
		t.Fatalf("token = %d: %s", code, errOut.String())
	}
	c, err := auth.Verify([]byte("0123456789abcdef"), strings.TrimSpace(out.String()), time.Now())
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if c.Room != "r1" || c.Name != "Ann" || c.Role != "host" || c.ExpiresAt.Sub(time.Now()) > time.Hour {
		t.Errorf("claims %+v", c)
	}
	for _, args := range [][]string{
		{"-room", "r1", "-name", "Ann", "-role", "king"},
		{"-room", "bad room", "-name", "Ann"},
		{"-name", "Ann"},
	} {
		errOut.Reset()
		if code := token(args, env, io.Discard, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("token %v = %d (%q), want 2 with a message", args, code, errOut.String())
		}
	}
	if code := token([]string{"-room", "r", "-name", "n"}, func(string) string { return "" }, io.Discard, &errOut); code != 2 {
		t.Errorf("token without a secret = %d, want 2", code)
	}
}
