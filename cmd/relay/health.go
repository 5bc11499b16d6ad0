package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// health is `relay health`: it asks a running relay's /healthz and exits
// 0 if it answers 200, 1 otherwise. The container's HEALTHCHECK uses it,
// since the image has no shell or curl.
//
// -url and -timeout are its own flags; any other arguments are the
// relay's flags, as the relay was started with, from which it takes the
// HTTP address and whether it serves TLS. With none, it reads them from
// the command line of process 1 when that is the relay (the container's
// entrypoint: `docker run image -http :9000` then needs nothing more), and
// from the RELAY_* environment.
func health(args []string, getenv func(string) string, out io.Writer) int {
	return healthCheck(args, getenv, out, "/proc/1/cmdline")
}

func healthCheck(args []string, getenv func(string) string, out io.Writer, initCmdline string) int {
	own, relayArgs := splitHealthArgs(args)
	fs := flag.NewFlagSet("relay health", flag.ContinueOnError)
	fs.SetOutput(out)
	url := fs.String("url", "", "URL to check (default: /healthz on the relay's -http port, on 127.0.0.1 unless -http names a host; https when the relay serves TLS)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: relay health [-url URL] [-timeout 3s] [relay flags]\n\nThe relay flags (e.g. -http :9000 -tls-cert ...) say where the relay serves; without any, those of process 1 if it is the relay, else RELAY_* and the defaults.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(own); err != nil {
		return 2
	}
	client := http.DefaultClient
	if *url == "" {
		if len(relayArgs) == 0 {
			relayArgs = initArgs(initCmdline)
		}
		cfg, err := parseConfig(relayArgs, getenv, io.Discard)
		if err != nil {
			fmt.Fprintf(out, "relay health: the relay's settings: %v; pass -url\n", err)
			return 2
		}
		host, port, err := net.SplitHostPort(cfg.HTTPAddr)
		if err != nil {
			fmt.Fprintf(out, "relay health: -http %q is not host:port; pass -url\n", cfg.HTTPAddr)
			return 2
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		scheme := "http"
		if cfg.TLSCert != "" || cfg.ACMEDomain != "" {
			// The check is of the local process, not of its certificate:
			// it names no domain the certificate was issued for, so the
			// certificate is not verified. With ACME the server name picks
			// the certificate.
			scheme = "https"
			client = &http.Client{Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: cfg.ACMEDomain}, //nolint:gosec // see above
			}}
		}
		*url = scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(out, "relay health: %v\n", err)
		return 2
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(out, "relay health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "relay health: %s answered %s\n", *url, resp.Status)
		return 1
	}
	return 0
}

// splitHealthArgs separates health's own flags (-url, -timeout, -h, with
// their values) from the relay's.
func splitHealthArgs(args []string) (own, relay []string) {
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		name, _, hasValue := strings.Cut(name, "=")
		switch {
		case !strings.HasPrefix(args[i], "-"):
			relay = append(relay, args[i])
		case name == "h" || name == "help":
			own = append(own, args[i])
		case name == "url" || name == "timeout":
			own = append(own, args[i])
			if !hasValue && i+1 < len(args) {
				i++
				own = append(own, args[i])
			}
		default:
			relay = append(relay, args[i])
		}
	}
	return own, relay
}

// initArgs is the relay's arguments from path (/proc/1/cmdline), if
// process 1 runs the same program as this one; else none.
func initArgs(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	argv := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	if filepath.Base(argv[0]) != filepath.Base(os.Args[0]) {
		return nil
	}
	return argv[1:]
}
