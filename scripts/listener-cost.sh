#!/usr/bin/env bash
# What an audience listener costs the relay in memory and goroutines
# (issue 19, "a lighter listener"; docs/performance.md): for each run,
# a fresh relay (CPU 0) with one publishing host and one listener (the
# load generator refuses a room where nobody receives), then with N more
# audience listeners (the load generator on CPU 1); the relay's RSS,
# live heap and goroutines at the end of each window, and their growth
# per listener. Prints one line per run and the medians.
#
# Settings (environment):
#   LC_N     listeners (default 100)
#   LC_RUNS  runs (default 3)
#   LC_OUT   where reports go (default bin/listener-cost/<date>)
#   LC_HTTP, LC_UDP  relay addresses (default 127.0.0.1:18480, :18481)
#   LC_DEBUG  the relay's -debug-addr (default 127.0.0.1:18482): a heap
#            profile is taken near the end of each window, for
#            `go tool pprof -top -sample_index=inuse_space -diff_base
#            OUT/aud1-1.heap OUT/aud<N+1>-1.heap` (by allocation site),
#            a goroutine profile (OUT/aud<N+1>-1.goroutines) and the
#            runtime's memory statistics (OUT/aud<N+1>-1.memstats: heap,
#            goroutine stacks, GC metadata, as runtime.MemStats names them)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

n=${LC_N:-100}
runs=${LC_RUNS:-3}
out=${LC_OUT:-bin/listener-cost/$(date -u +%Y%m%dT%H%M%SZ)}
http=${LC_HTTP:-127.0.0.1:18480}
udp=${LC_UDP:-127.0.0.1:18481}
debug=${LC_DEBUG:-127.0.0.1:18482}
relay_flags="-debug-addr $debug"

die() { echo "listener-cost: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is missing: apt-get install -y jq"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "LC_N=$n: want a positive number"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "LC_RUNS=$runs: want a positive number"

me=listener-cost ports_hint="LC_HTTP / LC_UDP"
. loadtest/relayctl.sh
pin_cpus "the figures are not comparable"
mkdir -p "$out" bin
build_bins
trap 'stop_relay || true' EXIT

# scenario AUDIENCE: one host publishing, AUDIENCE listeners, a window
# long enough for the relay's heap to settle after the joins.
scenario() {
  cat >"$out/aud$1.json" <<JSON
{"name": "listeners$1", "rooms": 1, "hosts": 1, "guests": 0, "audience": $1,
 "join_rate": 20, "join_concurrency": 8, "join_timeout": "15s",
 "settle": "3s", "duration": "10s", "decode_per_room": 0, "seed": 1}
JSON
}

# measure AUDIENCE RUN: writes the relay's RSS, live heap and goroutines
# at the last sample of the window to $out/aud<AUDIENCE>-<RUN>.fig. Not
# in a subshell: the EXIT trap must see the relay it starts.
measure() {
  start_relay "$out/relay-$1-$2.log"
  # The window ends 3 s (settle) + 10 s after the last join, joins at 20/s.
  (sleep $(($1 / 20 + 12)) && curl -sf -o "$out/aud$1-$2.heap" "http://$debug/debug/pprof/heap?gc=1" &&
    curl -sf -o "$out/aud$1-$2.goroutines" "http://$debug/debug/pprof/goroutine?debug=1" &&
    curl -sf "http://$debug/debug/pprof/heap?debug=1" | grep '^# [A-Z]' >"$out/aud$1-$2.memstats") &
  local heap_pid=$!
  "${pin_lg[@]}" bin/loadtest -scenario "$out/aud$1.json" -url "ws://$http/ws" -relay-pid "$relay_pid" \
    -wait-ready 10s -quiet -json "$out/aud$1-$2.json" >"$out/aud$1-$2.txt" 2>"$out/aud$1-$2.err" ||
    { cat "$out/aud$1-$2.err" >&2; die "the load generator failed"; }
  wait "$heap_pid" || echo "listener-cost: no heap profile for run $2 with $1 listeners" >&2
  stop_relay || die "the relay did not exit cleanly; see $out/relay-$1-$2.log"
  jq -r '.series[-1] | "\(.relay_rss_bytes) \(.relay_heap_live_bytes) \(.relay_goroutines)"' \
    "$out/aud$1-$2.json" >"$out/aud$1-$2.fig"
}

scenario 1
scenario $((n + 1))
: >"$out/runs.txt"
for i in $(seq "$runs"); do
  measure 1 "$i"
  measure $((n + 1)) "$i"
  read -r rss0 heap0 g0 <"$out/aud1-$i.fig"
  read -r rss1 heap1 g1 <"$out/aud$((n + 1))-$i.fig"
  awk -v i="$i" -v n="$n" -v r0="$rss0" -v r1="$rss1" -v h0="$heap0" -v h1="$heap1" -v g0="$g0" -v g1="$g1" \
    'BEGIN { printf "%d %.1f %.1f %.2f\n", i, (r1-r0)/n/1000, (h1-h0)/n/1000, (g1-g0)/n }' >>"$out/runs.txt"
done
echo "run  rss/listener_kB  live_heap/listener_kB  goroutines/listener"
cat "$out/runs.txt"
sort -n -k2 "$out/runs.txt" | awk '{ r[NR]=$2 } END { printf "median rss/listener %.1f kB\n", r[int((NR+1)/2)] }'
sort -n -k3 "$out/runs.txt" | awk '{ h[NR]=$3 } END { printf "median live heap/listener %.1f kB\n", h[int((NR+1)/2)] }'
sort -n -k4 "$out/runs.txt" | awk '{ g[NR]=$4 } END { printf "median goroutines/listener %.2f\n", g[int((NR+1)/2)] }'
