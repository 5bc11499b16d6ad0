package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/loadtest/report"
	"go.uber.org/goleak"
)

func noEnv(string) string { return "" }

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.json")
	if err := os.WriteFile(file, []byte(`{"name": "file", "rooms": 3, "audience": 7, "duration": "9s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := relaytest.NewCert(t).CertFile
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o options)
		err   string
	}{
		{name: "defaults are the headline", args: nil, check: func(t *testing.T, o options) {
			if o.sc.Rooms != 1 || o.sc.Hosts != 1 || o.sc.Guests != 1 || o.sc.Audience != 50 || !o.cfg.Loopback {
				t.Fatalf("defaults %+v", o.sc)
			}
		}},
		{name: "file, then flags over it", args: []string{"-scenario", file, "-audience", "11"}, check: func(t *testing.T, o options) {
			if o.sc.Name != "file" || o.sc.Rooms != 3 || o.sc.Audience != 11 || o.sc.Duration.D() != 9*time.Second {
				t.Fatalf("scenario %+v", o.sc)
			}
			if o.sc.Hosts != 0 { // not in the file, not given: the scenario's own default applies later
				t.Fatalf("hosts %d taken from the flag default", o.sc.Hosts)
			}
		}},
		{name: "token from the environment", env: map[string]string{"LOADTEST_TOKEN_SECRET": "k"}, check: func(t *testing.T, o options) {
			if o.cfg.TokenSecret != "k" {
				t.Fatalf("token secret %q", o.cfg.TokenSecret)
			}
		}},
		{name: "audience on the mix over the file", args: []string{"-scenario", file, "-audience-listen", "mix"}, check: func(t *testing.T, o options) {
			if o.sc.AudienceListen != "mix" || o.sc.MixAudience != 0 || o.sc.Audience != 7 {
				t.Fatalf("scenario %+v", o.sc)
			}
		}},
		{name: "a split", args: []string{"-audience", "20", "-mix-audience", "5"}, check: func(t *testing.T, o options) {
			if o.sc.AudienceListen != "tracks" || o.sc.MixAudience != 5 || o.sc.MixListeners() != 5 {
				t.Fatalf("scenario %+v", o.sc)
			}
		}},
		{name: "transport over the file", args: []string{"-scenario", file, "-transport", "turn-tcp"}, check: func(t *testing.T, o options) {
			if o.sc.Transport != "turn-tcp" || o.sc.Rooms != 3 {
				t.Fatalf("scenario %+v", o.sc)
			}
		}},
		{name: "a CA to trust", args: []string{"-tls-ca", ca}, check: func(t *testing.T, o options) {
			if o.cfg.TLSConfig == nil || o.cfg.TLSConfig.RootCAs == nil {
				t.Fatalf("TLS config %+v", o.cfg.TLSConfig)
			}
		}},
		{name: "a cluster's relays", args: []string{"-relays", "ws://a:1/ws, ws://b:2/ws", "-relay-pids", "7,8"}, check: func(t *testing.T, o options) {
			if strings.Join(o.cfg.Relays, " ") != "ws://a:1/ws ws://b:2/ws" || len(o.cfg.RelayPIDs) != 2 || o.cfg.RelayPIDs[1] != 8 {
				t.Fatalf("relays %q, PIDs %v", o.cfg.Relays, o.cfg.RelayPIDs)
			}
		}},
		{name: "a PID that is no number", args: []string{"-relays", "ws://a:1/ws", "-relay-pids", "x"}, err: "-relay-pids"},
		{name: "missing CA file", args: []string{"-tls-ca", filepath.Join(dir, "none.pem")}, err: "-tls-ca"},
		{name: "CA file without a certificate", args: []string{"-tls-ca", file}, err: "no PEM certificate"},
		{name: "unknown flag", args: []string{"-romos", "2"}, err: "romos"},
		{name: "stray argument", args: []string{"headline"}, err: "unexpected argument"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, err: "log-level"},
		{name: "missing scenario file", args: []string{"-scenario", filepath.Join(dir, "none.json")}, err: "none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			var out strings.Builder
			o, err := parseFlags(tt.args, getenv, &out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error()+out.String(), tt.err) {
					t.Fatalf("parseFlags(%q) = %v, want an error about %q", tt.args, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestExitCodes(t *testing.T) {
	defer goleak.VerifyNone(t)
	dead := deadURL(t)
	saved := filepath.Join(t.TempDir(), "r.json")
	data, _ := json.Marshal(&report.Report{Scenario: json.RawMessage(`{"name": "x"}`)})
	if err := os.WriteFile(saved, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{"help", []string{"-h"}, exitOK, "Usage", ""},
		{"unknown flag", []string{"-nope"}, exitUsage, "nope", ""},
		{"impossible scenario", []string{"-hosts", "0", "-guests", "0"}, exitUsage, "nothing would be sent", ""},
		{"bad url", []string{"-url", "http://x"}, exitUsage, "ws://", ""},
		{"bad listen", []string{"-audience-listen", "both"}, exitUsage, `audience_listen = "both"`, ""},
		{"listencost help", []string{"listencost", "-h"}, exitOK, "Usage: loadtest listencost", ""},
		{"listencost nothing", []string{"listencost"}, exitUsage, "name the JSON reports", ""},
		{"unreachable relay", []string{"-url", dead, "-wait-ready", "200ms", "-quiet"}, exitFailed, "is the relay running", ""},
		{"summarize nothing", []string{"summarize"}, exitUsage, "name the JSON reports", ""},
		{"summarize", []string{"summarize", saved, saved}, exitOK, "", "relay CPU µs per forwarded packet"},
		{"idlemem help", []string{"idlemem", "-h"}, exitOK, "Usage: loadtest idlemem", ""},
		{"idlemem bad idle", []string{"idlemem", "-idle", "1s,soon"}, exitUsage, "want durations", ""},
		{"idlemem no pages", []string{"idlemem", "-pages", "0"}, exitUsage, "want at least 1", ""},
		{"idlemem", []string{"idlemem", "-pages", "16", "-idle", "1ms,2ms"}, exitOK, "", "  2ms "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, tt.args, noEnv, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) || !strings.Contains(stdout.String(), tt.stdout) {
				t.Fatalf("exit %d, want %d\nstderr: %s\nstdout: %s", code, tt.code, stderr.String(), stdout.String())
			}
		})
	}
}

// deadURL is a WebSocket URL on a loopback port nothing listens on any more.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "ws://" + ln.Addr().String() + "/ws"
}
