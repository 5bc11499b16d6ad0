#!/usr/bin/env bash
# The soak (`make soak`): builds the relay and the load generator, starts
# the relay pinned to CPU 0, runs loadtest/scenarios/soak.json (3 rooms
# with co-streamers, audience churn and mic cycling, about 25,000
# forwarded packets per second: half of one relay core) for SOAK_DURATION
# with the load generator pinned to CPU 1, then checks the report with
# `bin/loadtest soakcheck`: the relay's live heap and goroutines at the
# end must be within SOAK_TOLERANCE % of their level after SOAK_WARMUP,
# and listeners must have lost nothing. docs/loadtest.md explains it.
#
# Settings (environment):
#   SOAK_DURATION   the measurement window (default 30m; e.g. 4m to try it)
#   SOAK_WARMUP     when the warm-up level is taken, after the window opens (default 2m)
#   SOAK_SPAN       each level is taken over this much of the window (default 30s)
#   SOAK_TOLERANCE  percent the end level may differ from the warm-up level (default 10)
#   SOAK_INTERVAL   sampling interval of the relay's /metrics and /proc (default 5s)
#   SOAK_SCENARIO   scenario name in loadtest/scenarios (default soak)
#   SOAK_OUT        where reports go (default bin/soak/<date>)
#   SOAK_HTTP       relay HTTP address (default 127.0.0.1:18082)
#   SOAK_UDP        relay UDP address (default 127.0.0.1:18083)
#   RELAY_FLAGS     extra relay flags (e.g. "-gogc 200")
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

duration=${SOAK_DURATION:-30m}
warmup=${SOAK_WARMUP:-2m}
span=${SOAK_SPAN:-30s}
tolerance=${SOAK_TOLERANCE:-10}
interval=${SOAK_INTERVAL:-5s}
scenario=${SOAK_SCENARIO:-soak}
out=${SOAK_OUT:-bin/soak/$(date -u +%Y%m%dT%H%M%SZ)}
http=${SOAK_HTTP:-127.0.0.1:18082}
udp=${SOAK_UDP:-127.0.0.1:18083}
relay_flags=${RELAY_FLAGS:-}

die() { echo "soak: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
command -v curl >/dev/null || die "curl is missing: apt-get install -y curl"
pkg-config --exists opus 2>/dev/null || die "libopus is missing: apt-get install -y libopus-dev pkg-config"
[ -f "loadtest/scenarios/$scenario.json" ] || die "no scenario loadtest/scenarios/$scenario.json; have: $(cd loadtest/scenarios && ls *.json | sed 's/\.json//' | tr '\n' ' ')"

me=soak ports_hint="SOAK_HTTP / SOAK_UDP"
. loadtest/relayctl.sh
pin_cpus
mkdir -p "$out" bin
build_bins

check=(-warmup "$warmup" -span "$span" -tolerance "$tolerance")
# The window must hold the warm-up and both spans; -plan says so before
# the run rather than after it, and gives the window in seconds.
window=$(bin/loadtest soakcheck -plan "$duration" "${check[@]}") || die "bad SOAK_DURATION / SOAK_WARMUP / SOAK_SPAN / SOAK_TOLERANCE (see above)"

trap 'stop_relay || true' EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

start_relay "$out/relay.log"

echo "soak: $scenario for $duration (window ${window}s), relay pid $relay_pid on CPU 0; progress every 5 s below, reports in $out"
# The load generator bounds its own run (ramp, settle, window, teardown);
# timeout is the backstop.
rc=0
timeout --kill-after=10 $((window + 720)) "${pin_lg[@]}" bin/loadtest -scenario "loadtest/scenarios/$scenario.json" \
  -duration "$duration" -interval "$interval" \
  -url "ws://$http/ws" -relay-pid "$relay_pid" -wait-ready 10s \
  -json "$out/$scenario.json" -html "$out/$scenario.html" >"$out/$scenario.txt" 2> >(tee "$out/$scenario.err" >&2) || rc=$?

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
echo "soak: reports in $out (JSON, HTML, summary, soakcheck.txt, the relay's log)"
if [ "$failed" -ne 0 ]; then
  echo "soak: FAILED" >&2
fi
exit "$failed"
