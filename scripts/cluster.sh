#!/usr/bin/env bash
# Runs a relay cluster on this machine (`make cluster`, docs/cluster.md):
# a NATS server with JetStream (internal/cmd/natsdev: the real nats-server,
# embedded, so nothing to install) and three relays on it, each with its
# page: http://localhost:8081, :8082, :8083. Join a room as host on one
# and as audience on another: the listener is served by its own relay over
# one link to the room's relay (an edge), and a host or guest who opens
# another relay is redirected to the room's without noticing. Ctrl-C stops
# everything.
#
# Settings (environment): CLUSTER_NATS (127.0.0.1:4222), CLUSTER_HTTP_BASE
# (8080: relays on BASE+1..BASE+3), CLUSTER_UDP_BASE (50000), CLUSTER_BIN
# (bin/cluster). Extra arguments go to every relay (e.g. -log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_debs gcc pkg-config libopus-dev
need_go

nats_addr=${CLUSTER_NATS:-127.0.0.1:4222}
http_base=${CLUSTER_HTTP_BASE:-8080}
udp_base=${CLUSTER_UDP_BASE:-50000}
bin=${CLUSTER_BIN:-bin/cluster}
mkdir -p "$bin"
echo "building the relay and natsdev into $bin/ ..." >&2
go build -tags nolibopusfile -o "$bin/relay" ./cmd/relay
go build -o "$bin/natsdev" ./internal/cmd/natsdev

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$bin/natsdev" -addr "$nats_addr" &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/${nats_addr%:*}/${nats_addr##*:}") 2>/dev/null && break
  sleep 0.1
done

for i in 1 2 3; do
  port=$((http_base + i))
  "$bin/relay" -nats "nats://$nats_addr" -node-id "relay-$i" -node-url "ws://localhost:$port/ws" \
    -http "127.0.0.1:$port" -udp "127.0.0.1:$((udp_base + i))" -loopback -drain-timeout 5s "$@" &
  pids+=($!)
done
echo "cluster up: pages at http://localhost:$((http_base + 1)) :$((http_base + 2)) :$((http_base + 3)); metrics at /metrics (relay_cluster_*); Ctrl-C stops it" >&2
wait -n "${pids[@]}" || true
echo "a process of the cluster exited; stopping the others" >&2
