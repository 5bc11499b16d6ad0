#!/usr/bin/env bash
# The flood (issue 17): builds the relay and the load generator, starts a
# fresh relay pinned to CPU 0, runs `loadtest flood` pinned to CPU 1
# against it (idle WebSockets and joins from 127.0.0.2, a legitimate
# client from 127.0.0.3), stops the relay and prints the summary.
# docs/loadtest.md ("The flood") explains every figure.
#
# Settings (environment):
#   FLOOD_ARGS      flags for loadtest flood (default: -idle 3000 -duration 20s -legit 20)
#   FLOOD_OUT       where results go (default bin/flood/<date>)
#   FLOOD_HTTP      relay HTTP address (default 127.0.0.1:18084)
#   FLOOD_UDP       relay UDP address (default 127.0.0.1:18085)
#   FLOOD_DEADLINE  bound on the flood, seconds (default 600)
#   RELAY_FLAGS     extra relay flags (e.g. "-join-timeout 5s")
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

args=${FLOOD_ARGS:--idle 3000 -duration 20s -legit 20}
out=${FLOOD_OUT:-bin/flood/$(date -u +%Y%m%dT%H%M%SZ)}
http=${FLOOD_HTTP:-127.0.0.1:18084}
udp=${FLOOD_UDP:-127.0.0.1:18085}
deadline=${FLOOD_DEADLINE:-600}
relay_flags=${RELAY_FLAGS:-}
# The flood meets the relay's own per-address limits (relayctl.sh turns
# them off for the benchmark's single-address peers).
relay_limits=""

die() { echo "flood: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
pkg-config --exists opus 2>/dev/null || die "libopus is missing: apt-get install -y libopus-dev pkg-config"
[[ "$deadline" =~ ^[1-9][0-9]*$ ]] || die "FLOOD_DEADLINE=$deadline: want a positive number of seconds"

me=flood ports_hint="FLOOD_HTTP / FLOOD_UDP"
. loadtest/relayctl.sh
pin_cpus "the relay's CPU figures include the flood's"
mkdir -p "$out" bin
build_bins
trap 'stop_relay || true' EXIT
trap 'echo "flood: interrupted" >&2; exit 130' INT TERM

start_relay "$out/relay.log"
echo "flood: relay pid $relay_pid on $http; loadtest flood $args"
rc=0
# shellcheck disable=SC2086
timeout --kill-after=10 "$deadline" "${pin_lg[@]}" bin/loadtest flood -url "ws://$http/ws" -relay-pid "$relay_pid" \
  -wait-ready 10s -json "$out/flood.json" $args >"$out/flood.txt" 2>"$out/flood.err" || rc=$?
if ! stop_relay; then
  echo "flood: the relay did not exit cleanly; see $out/relay.log" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
cat "$out/flood.txt"
if [ "$rc" -ne 0 ]; then
  echo "flood: loadtest flood failed (exit $rc):" >&2
  cat "$out/flood.err" >&2
  exit "$rc"
fi
echo "flood: results in $out (summary, JSON, progress log, the relay's log)"
