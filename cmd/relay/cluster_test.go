package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/natstest"
	"github.com/lianmai/relay/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// TestRunCluster runs the relay binary's main with -nats against a real
// NATS server: it joins the cluster (its metrics say so), a join claims
// the room in the directory, and on SIGTERM the last node of the cluster
// releases the room (nobody to hand it to), tells the client it drains,
// and exits 0.
func TestRunCluster(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	args := []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-loopback", "-shutdown-timeout", "3s", "-drain-timeout", "2s",
		"-nats", srv.URL(), "-node-id", "relay-0", "-node-url", "ws://relay-0.test/ws"}
	addr, signals, exit, logs := startRun(ctx, t, args)

	metric := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	natstest.Eventually(ctx, t, "the relay to join the cluster", func() bool {
		return strings.Contains(metric(), `relay_cluster_directory_ops_total{op="heartbeat",result="ok"} `) &&
			strings.Contains(metric(), "relay_cluster_nats_connected 1")
	})
	c, err := client.Dial(ctx, client.Config{URL: "ws://" + addr + "/ws", Room: "stage", Name: "Host", Role: protocol.RoleHost, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, "relay_rooms")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "stage"); err != nil || !strings.Contains(string(e.Value()), `"relay-0"`) {
		t.Fatalf("directory entry of stage: %v; want relay-0's", err)
	}

	signals <- syscall.SIGTERM
	waitDraining(ctx, t, c)
	natstest.Eventually(ctx, t, "the room released", func() bool {
		_, err := kv.Get(ctx, "stage")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
	case <-ctx.Done():
		t.Fatal("the relay did not exit")
	}
	if !strings.Contains(logs.String(), "cluster node started") {
		t.Errorf("no start-up log line of the cluster node:\n%s", logs.String())
	}
}
