// Command natsdev runs a NATS server with JetStream for trying the relay
// cluster on one machine (`make cluster`, scripts/cluster.sh): the real
// nats-server, embedded, so that nothing needs installing. Not for
// production: run nats-server itself there (docs/cluster.md).
//
//	go run ./internal/cmd/natsdev -addr 127.0.0.1:4222
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr *os.File) int {
	fs := flag.NewFlagSet("natsdev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4222", "host:port to listen on")
	store := fs.String("store", "", "JetStream store directory; empty: a new temporary one, removed at exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, portStr, err := net.SplitHostPort(*addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		fmt.Fprintf(stderr, "natsdev: -addr %q: want host:port\n", *addr)
		return 2
	}
	dir := *store
	if dir == "" {
		if dir, err = os.MkdirTemp("", "natsdev-"); err != nil {
			fmt.Fprintf(stderr, "natsdev: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
	}
	srv, err := server.NewServer(&server.Options{ServerName: "natsdev", Host: host, Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		fmt.Fprintf(stderr, "natsdev: %v\n", err)
		return 1
	}
	srv.ConfigureLogger()
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintf(stderr, "natsdev: not ready within 10 s (is %s taken?)\n", *addr)
		srv.Shutdown()
		return 1
	}
	fmt.Fprintf(stderr, "natsdev: NATS with JetStream at nats://%s (store %s); Ctrl-C stops it\n", *addr, dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
