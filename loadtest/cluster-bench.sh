#!/usr/bin/env bash
# The cluster benchmark (docs/loadtest.md#clusters): builds the relay, the
# load generator and natsdev (the real nats-server, embedded), and for
# each run starts a fresh NATS with JetStream and three relays on it, runs
# the `cluster` scenario with the audience spread over the three relays,
# stops everything and prints the medians, per node too.
#
# Two cores: NATS and the three relays share CPU 0 (each relay then has
# GOMAXPROCS 1, as bench.sh's one relay), the load generator has CPU 1.
#
# Settings (environment):
#   CLUSTER_BENCH_SCENARIO  scenario name in loadtest/scenarios (default: cluster)
#   CLUSTER_BENCH_RUNS      runs (default 3)
#   CLUSTER_BENCH_OUT       where reports go (default bin/cluster-bench/<date>)
#   CLUSTER_BENCH_NATS      NATS address (default 127.0.0.1:14222)
#   CLUSTER_BENCH_HTTP_BASE relays' HTTP ports are BASE+1..BASE+3 on 127.0.0.1 (default 18090)
#   CLUSTER_BENCH_UDP_BASE  relays' UDP ports likewise (default 18095)
#   CLUSTER_BENCH_DEADLINE  bound on the whole benchmark, seconds (default 1200)
#   RELAY_FLAGS             extra flags for every relay
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scenario=${CLUSTER_BENCH_SCENARIO:-cluster}
runs=${CLUSTER_BENCH_RUNS:-3}
out=${CLUSTER_BENCH_OUT:-bin/cluster-bench/$(date -u +%Y%m%dT%H%M%SZ)}
nats_addr=${CLUSTER_BENCH_NATS:-127.0.0.1:14222}
http_base=${CLUSTER_BENCH_HTTP_BASE:-18090}
udp_base=${CLUSTER_BENCH_UDP_BASE:-18095}
deadline=${CLUSTER_BENCH_DEADLINE:-1200}
base_flags=${RELAY_FLAGS:-}

die() { echo "cluster-bench: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
command -v curl >/dev/null || die "curl is missing (it checks each relay's NATS connection): apt-get install -y curl"
pkg-config --exists opus 2>/dev/null || die "libopus is missing: apt-get install -y libopus-dev pkg-config"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "CLUSTER_BENCH_RUNS=$runs: want a positive number"
[ -f "loadtest/scenarios/$scenario.json" ] || die "no scenario loadtest/scenarios/$scenario.json"

me=cluster-bench ports_hint="CLUSTER_BENCH_HTTP_BASE / CLUSTER_BENCH_UDP_BASE"
. loadtest/relayctl.sh
pin_cpus "the figures are not comparable"
mkdir -p "$out" bin
build_bins
env -u GODEBUG go build -o bin/natsdev ./internal/cmd/natsdev

nats_pid= relay_pids=()
# stop_all: the relays (SIGTERM, then SIGKILL after 10 s: relayctl's
# stop_relay), then NATS; returns non-zero if a relay did not exit cleanly.
stop_all() {
  local rc=0
  for pid in "${relay_pids[@]}"; do
    relay_pid=$pid
    stop_relay || rc=1
  done
  relay_pids=()
  if [ -n "$nats_pid" ]; then
    kill -TERM "$nats_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$nats_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
    nats_pid=
  fi
  return "$rc"
}
trap 'stop_all || true' EXIT
trap 'echo "cluster-bench: interrupted" >&2; exit 130' INT TERM

# start_cluster RUN: a fresh NATS (empty store: no directory left from the
# last run) and three relays, each connected to it.
start_cluster() {
  local i ok
  "${pin_relay[@]}" bin/natsdev -addr "$nats_addr" 2>"$out/nats-$1.log" &
  nats_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${nats_addr%:*}/${nats_addr##*:}") 2>/dev/null && break
    kill -0 "$nats_pid" 2>/dev/null || die "natsdev exited at start (is $nats_addr in use? set CLUSTER_BENCH_NATS); see $out/nats-$1.log"
    sleep 0.1
  done
  for i in 1 2 3; do
    http=127.0.0.1:$((http_base + i)) udp=127.0.0.1:$((udp_base + i))
    relay_flags="$base_flags -nats nats://$nats_addr -node-id bench-$i -node-url ws://$http/ws"
    start_relay "$out/relay-$1-$i.log"
    relay_pids+=("$relay_pid")
  done
  for i in 1 2 3; do
    ok=
    for _ in $(seq 100); do
      if curl -fsS "http://127.0.0.1:$((http_base + i))/metrics" 2>/dev/null | grep -q '^relay_cluster_nats_connected 1'; then
        ok=1
        break
      fi
      sleep 0.1
    done
    [ -n "$ok" ] || die "relay $i did not connect to NATS at $nats_addr within 10 s; see $out/relay-$1-$i.log"
  done
}

urls=()
for i in 1 2 3; do urls+=("ws://127.0.0.1:$((http_base + i))/ws"); done
failed=0
reports=()
for i in $(seq "$runs"); do
  left=$((deadline - SECONDS))
  [ "$left" -gt 60 ] || die "the benchmark passed its deadline of ${deadline}s (CLUSTER_BENCH_DEADLINE)"
  echo "cluster-bench: $scenario run $i/$runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  start_cluster "$i"
  rc=0
  timeout --kill-after=10 "$left" "${pin_lg[@]}" bin/loadtest -scenario "loadtest/scenarios/$scenario.json" \
    -url "${urls[0]}" -relays "${urls[1]},${urls[2]}" -relay-pid "${relay_pids[0]}" -relay-pids "${relay_pids[1]},${relay_pids[2]}" \
    -wait-ready 10s -quiet -json "$out/$scenario-$i.json" -html "$out/$scenario-$i.html" >"$out/$scenario-$i.txt" 2>"$out/$scenario-$i.err" || rc=$?
  if ! stop_all; then
    echo "cluster-bench: a relay did not exit cleanly; see $out/relay-$i-*.log" >&2
    failed=1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "cluster-bench: run $i failed (exit $rc):" >&2
    cat "$out/$scenario-$i.err" >&2
    failed=1
    [ -f "$out/$scenario-$i.json" ] || continue
  fi
  reports+=("$out/$scenario-$i.json")
done
if [ "${#reports[@]}" -gt 0 ]; then
  echo
  bin/loadtest summarize "${reports[@]}" | tee "$out/$scenario-summary.txt"
  echo
fi
echo "cluster-bench: reports in $out (JSON, HTML, summaries, relay and NATS logs)"
exit "$failed"
