package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// health is `relay health`: it asks a running relay's /healthz and exits
// 0 if it answers 200, 1 otherwise. The container's HEALTHCHECK uses it,
// since the image has no shell or curl.
func health(args []string, getenv func(string) string, out io.Writer) int {
	fs := flag.NewFlagSet("relay health", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := getenv("RELAY_HTTP")
	if addr == "" {
		addr = ":8080"
	}
	url := fs.String("url", "", "URL to check (default: /healthz on the port of -http / RELAY_HTTP, on 127.0.0.1)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			fmt.Fprintf(out, "relay health: RELAY_HTTP=%q is not host:port; pass -url\n", addr)
			return 2
		}
		*url = "http://127.0.0.1:" + port + "/healthz"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(out, "relay health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
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
