#!/usr/bin/env bash
# The soak (`make soak`): builds the relay and the load generator, starts
# the relay pinned to CPU 0, runs loadtest/scenarios/soak.json (3 rooms
# with co-streamers, audience churn and mic cycling, about 25,000
# forwarded packets per second: half of one relay core) for SOAK_DURATION
# with the load generator pinned to CPU 1, then checks the report with
# `bin/loadtest soakcheck`: the slopes of the relay's live heap and
# goroutines, fitted to medians of SOAK_TREND_WINDOW windows after
# SOAK_WARMUP, must not lie above SOAK_MAX_GROWTH / SOAK_MAX_GOROUTINE_GROWTH
# percent of their level per hour with 95% confidence, and listeners must
# have lost nothing. With SOAK_PROFILE=1 it also saves the relay's heap
# profiles at the end of warm-up and of the window, to diff with pprof.
# docs/loadtest.md explains it.
#
# Settings (environment):
#   SOAK_DURATION     the measurement window (default 30m; e.g. 4m with SOAK_TREND_WINDOW=30s to try it)
#   SOAK_WARMUP       the trend starts at least this long after the window opens (default 2m)
#   SOAK_TREND_WINDOW the trend is fitted to medians of windows this long; at least 4 must fit (default 5m)
#   SOAK_MAX_GROWTH   live heap growth, % of its level per hour, above which it is a leak (default 10)
#   SOAK_MAX_GOROUTINE_GROWTH  the same for goroutines (default 10)
#   SOAK_INTERVAL     sampling interval of the relay's /metrics and /proc (default 5s)
#   SOAK_PROFILE      1: heap profiles from the relay's -debug-addr into the output folder; 0: none (default 1)
#   SOAK_DEBUG        the relay's private profiling address (default 127.0.0.1:18086)
#   SOAK_SCENARIO     scenario name in loadtest/scenarios (default soak)
#   SOAK_OUT          where reports go (default bin/soak/<date>)
#   SOAK_HTTP         relay HTTP address (default 127.0.0.1:18082)
#   SOAK_UDP          relay UDP address (default 127.0.0.1:18083)
#   RELAY_FLAGS       extra relay flags (e.g. "-gogc 200")
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

duration=${SOAK_DURATION:-30m}
warmup=${SOAK_WARMUP:-2m}
trend_window=${SOAK_TREND_WINDOW:-5m}
max_growth=${SOAK_MAX_GROWTH:-10}
max_gor_growth=${SOAK_MAX_GOROUTINE_GROWTH:-10}
interval=${SOAK_INTERVAL:-5s}
profile=${SOAK_PROFILE:-1}
debug=${SOAK_DEBUG:-127.0.0.1:18086}
scenario=${SOAK_SCENARIO:-soak}
out=${SOAK_OUT:-bin/soak/$(date -u +%Y%m%dT%H%M%SZ)}
http=${SOAK_HTTP:-127.0.0.1:18082}
udp=${SOAK_UDP:-127.0.0.1:18083}
relay_flags=${RELAY_FLAGS:-}

die() { echo "soak: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
command -v curl >/dev/null || die "curl is missing: apt-get install -y curl"
pkg-config --exists opus 2>/dev/null || die "libopus is missing: apt-get install -y libopus-dev pkg-config"
[ -z "${SOAK_SPAN:-}${SOAK_TOLERANCE:-}" ] || echo "soak: WARNING: SOAK_SPAN and SOAK_TOLERANCE are gone (the soak judges trends now); see SOAK_TREND_WINDOW, SOAK_MAX_GROWTH and SOAK_MAX_GOROUTINE_GROWTH" >&2
case $profile in 0 | 1) ;; *) die "SOAK_PROFILE is 0 or 1, not '$profile'" ;; esac
[ -f "loadtest/scenarios/$scenario.json" ] || die "no scenario loadtest/scenarios/$scenario.json; have: $(cd loadtest/scenarios && ls *.json | sed 's/\.json//' | tr '\n' ' ')"

me=soak ports_hint="SOAK_HTTP / SOAK_UDP / SOAK_DEBUG"
. loadtest/relayctl.sh
pin_cpus
mkdir -p "$out" bin
build_bins

check=(-warmup "$warmup" -trend-window "$trend_window" -max-growth "$max_growth" -max-goroutine-growth "$max_gor_growth")
# The window must hold the warm-up and 4 trend windows; -plan says so
# before the run rather than after it, and gives the window and the
# warm-up in seconds.
plan=$(bin/loadtest soakcheck -plan "$duration" "${check[@]}") || die "bad SOAK_DURATION / SOAK_WARMUP / SOAK_TREND_WINDOW / SOAK_MAX_GROWTH / SOAK_MAX_GOROUTINE_GROWTH (see above)"
read -r window warm_s <<<"$plan"

# Heap profiles (SOAK_PROFILE=1): the relay serves Go's profiling
# endpoints on a private loopback address; /debug/pprof/heap?gc=1 runs a
# GC first, so a profile shows what is live, by call site. The window
# opens with the load generator's first "measure" progress line (within
# 5 s); the first profile is taken SOAK_WARMUP later, the second 15 s
# before the window closes (before teardown). Every wait ends if the
# relay exits, and the whole watcher is stopped when the load generator
# returns.
prof_pid=
if [ "$profile" = 1 ]; then
  relay_flags="$relay_flags -debug-addr $debug"
fi

# wait_until SECONDS: until the script's clock ($SECONDS) reaches it, or
# fails at once if the relay is gone.
wait_until() {
  while [ "$SECONDS" -lt "$1" ]; do
    kill -0 "$relay_pid" 2>/dev/null || return 1
    sleep 1
  done
}

# grab_heap NAME: $out/heap-NAME.pb.gz, or a warning.
grab_heap() {
  if curl -sf --max-time 60 -o "$out/heap-$1.pb.gz.part" "http://$debug/debug/pprof/heap?gc=1"; then
    mv "$out/heap-$1.pb.gz.part" "$out/heap-$1.pb.gz"
    echo "soak: heap profile at the $2: $out/heap-$1.pb.gz" >&2
  else
    rm -f "$out/heap-$1.pb.gz.part"
    echo "soak: WARNING: could not fetch the relay's heap profile ($2) from http://$debug/debug/pprof/heap" >&2
  fi
}

# profile_heaps: the watcher (in the background).
profile_heaps() {
  local limit=$((SECONDS + window + 720)) opened
  until grep -q '] measure ' "$out/$scenario.err" 2>/dev/null; do
    [ "$SECONDS" -lt "$limit" ] && kill -0 "$relay_pid" 2>/dev/null || return 0
    sleep 1
  done
  opened=$SECONDS
  wait_until $((opened + warm_s)) && grab_heap warm "end of warm-up"
  wait_until $((opened + window - 15)) && grab_heap end "end of the window"
}

stop_profiler() {
  [ -n "$prof_pid" ] || return 0
  kill "$prof_pid" 2>/dev/null || true
  wait "$prof_pid" 2>/dev/null || true
  prof_pid=
}

trap 'stop_profiler; stop_relay || true' EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

start_relay "$out/relay.log"
if [ "$profile" = 1 ]; then
  rm -f "$out/heap-warm.pb.gz" "$out/heap-end.pb.gz" "$out/$scenario.err"
  profile_heaps &
  prof_pid=$!
fi

echo "soak: $scenario for $duration (window ${window}s), relay pid $relay_pid on CPU 0; progress every 5 s below, reports in $out"
# The load generator bounds its own run (ramp, settle, window, teardown);
# timeout is the backstop.
rc=0
timeout --kill-after=10 $((window + 720)) "${pin_lg[@]}" bin/loadtest -scenario "loadtest/scenarios/$scenario.json" \
  -duration "$duration" -interval "$interval" \
  -url "ws://$http/ws" -relay-pid "$relay_pid" -wait-ready 10s \
  -json "$out/$scenario.json" -html "$out/$scenario.html" >"$out/$scenario.txt" 2> >(tee "$out/$scenario.err" >&2) || rc=$?
stop_profiler

failed=0
if ! stop_relay; then
  echo "soak: the relay did not exit cleanly; see $out/relay.log" >&2
  failed=1
fi
cat "$out/$scenario.txt"
echo
if [ ! -f "$out/$scenario.json" ]; then
  die "the load generator failed (exit $rc) and wrote no report; see $out/$scenario.err"
fi
if [ "$rc" -ne 0 ]; then
  echo "soak: the load generator exited $rc (3: joins failed or a stream never flowed); see $out/$scenario.err" >&2
  failed=1
fi
crc=0
bin/loadtest soakcheck "${check[@]}" "$out/$scenario.json" >"$out/soakcheck.txt" 2>&1 || crc=$?
cat "$out/soakcheck.txt"
[ "$crc" -eq 0 ] || failed=1
if [ -f "$out/heap-warm.pb.gz" ] && [ -f "$out/heap-end.pb.gz" ]; then
  echo "soak: what the live heap gained between the end of warm-up and the end of the window, by call site:"
  echo "  go tool pprof -top -diff_base $out/heap-warm.pb.gz $out/heap-end.pb.gz"
elif [ "$profile" = 1 ]; then
  echo "soak: WARNING: no pair of heap profiles (see the messages above)" >&2
fi
echo "soak: reports in $out (JSON, HTML, summary, soakcheck.txt, heap profiles, the relay's log)"
if [ "$failed" -ne 0 ]; then
  echo "soak: FAILED" >&2
fi
exit "$failed"
