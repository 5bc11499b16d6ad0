#!/usr/bin/env bash
# The relay benchmark (`make bench`): builds the relay and the load
# generator, and for each scenario and run starts a fresh relay pinned to
# CPU 0 and the load generator pinned to CPU 1, then prints the medians of
# the headline figures. docs/loadtest.md explains the scenarios and every
# figure.
#
# Settings (environment):
#   BENCH_SCENARIOS  scenario names in loadtest/scenarios (default: headline costreaming)
#   BENCH_RUNS       runs per scenario (default 3; the table quotes medians)
#   BENCH_OUT        where reports go (default bin/bench/<date>)
#   BENCH_HTTP       relay HTTP address (default 127.0.0.1:18080)
#   BENCH_UDP        relay UDP address (default 127.0.0.1:18081)
#   BENCH_DEADLINE   bound on the whole benchmark, seconds (default 1800)
#   RELAY_FLAGS      extra relay flags (e.g. "-gogc 200")
#   BENCH_TRANSPORT  how the audience reaches the relay (the scenarios' transport field):
#                    udp (default), tcp (ICE-TCP), turn-udp, turn-tcp, turn-tls (through the
#                    relay's TURN server, which the script turns on; for turn-tls it also
#                    makes a self-signed certificate in BENCH_OUT and serves HTTPS with it)
#   BENCH_TURN       the TURN server's UDP and TCP address (default 127.0.0.1:18082)
#   BENCH_TURN_TLS   its TLS address, for turn-tls (default 127.0.0.1:18083)
#   BENCH_PIN        0 runs the relay and the load generator unpinned (the relay on every
#                    core: the fanout2000 scenario); default 1 (CPU 0 and CPU 1)
#   BENCH_LOADTEST_FLAGS  extra load generator flags for every run (they override the
#                    scenario's fields), e.g. "-sink-audience 492" for a 500-listener fanout2000
#   BENCH_LISTENCOST_BASE  the baseline of the listen-cost comparison (default pubs9):
#                    when it runs with other scenarios of its room shape (mix9, tracks9),
#                    `loadtest listencost` prints relay CPU per listener, mix against tracks
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scenarios=${BENCH_SCENARIOS:-headline costreaming}
runs=${BENCH_RUNS:-3}
out=${BENCH_OUT:-bin/bench/$(date -u +%Y%m%dT%H%M%SZ)}
http=${BENCH_HTTP:-127.0.0.1:18080}
udp=${BENCH_UDP:-127.0.0.1:18081}
deadline=${BENCH_DEADLINE:-1800}
relay_flags=${RELAY_FLAGS:-}
listencost_base=${BENCH_LISTENCOST_BASE:-pubs9}
transport=${BENCH_TRANSPORT:-udp}
turn_addr=${BENCH_TURN:-127.0.0.1:18082}
turn_tls_addr=${BENCH_TURN_TLS:-127.0.0.1:18083}

die() { echo "bench: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
pkg-config --exists opus 2>/dev/null || die "libopus is missing: apt-get install -y libopus-dev pkg-config"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$runs: want a positive number"
for s in $scenarios; do
  [ -f "loadtest/scenarios/$s.json" ] || die "no scenario loadtest/scenarios/$s.json; have: $(cd loadtest/scenarios && ls *.json | sed 's/\.json//' | tr '\n' ' ')"
done

me=bench ports_hint="BENCH_HTTP / BENCH_UDP"
. loadtest/relayctl.sh
pin_cpus "the figures are not comparable"
mkdir -p "$out" bin
# The transport: the relay's ICE-TCP listens on the -udp address by
# default; TURN is turned on here, on loopback (-turn-host defaults to
# 127.0.0.1 with -loopback).
scheme=ws lg_flags=(-transport "$transport")
# shellcheck disable=SC2206
lg_flags+=(${BENCH_LOADTEST_FLAGS:-})
case "$transport" in
  udp | tcp) ;;
  turn-udp | turn-tcp) relay_flags="$relay_flags -turn -turn-udp $turn_addr -turn-tcp $turn_addr" ;;
  turn-tls)
    command -v openssl >/dev/null || die "BENCH_TRANSPORT=turn-tls needs openssl to make a test certificate: apt-get install -y openssl"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1 -keyout "$out/bench-key.pem" -out "$out/bench-cert.pem" 2>/dev/null ||
      die "openssl could not make the test certificate in $out"
    relay_flags="$relay_flags -tls-cert $out/bench-cert.pem -tls-key $out/bench-key.pem -turn -turn-udp $turn_addr -turn-tcp $turn_addr -turn-tls $turn_tls_addr"
    scheme=wss lg_flags+=(-tls-ca "$out/bench-cert.pem")
    ;;
  *) die "BENCH_TRANSPORT=$transport: want udp, tcp, turn-udp, turn-tcp or turn-tls" ;;
esac
echo "bench: audience transport $transport"
build_bins
trap 'stop_relay || true' EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

failed=0
all_reports=()
for s in $scenarios; do
  reports=()
  for i in $(seq "$runs"); do
    left=$((deadline - SECONDS))
    [ "$left" -gt 60 ] || die "the benchmark passed its deadline of ${deadline}s (BENCH_DEADLINE)"
    echo "bench: $s run $i/$runs"
    start_relay "$out/relay-$s-$i.log"
    rc=0
    timeout --kill-after=10 "$left" "${pin_lg[@]}" bin/loadtest -scenario "loadtest/scenarios/$s.json" \
      -url "$scheme://$http/ws" "${lg_flags[@]}" -relay-pid "$relay_pid" -wait-ready 10s -quiet \
      -json "$out/$s-$i.json" -html "$out/$s-$i.html" >"$out/$s-$i.txt" 2>"$out/$s-$i.err" || rc=$?
    if ! stop_relay; then
      echo "bench: the relay did not exit cleanly; see $out/relay-$s-$i.log" >&2
      failed=1
    fi
    if [ "$rc" -ne 0 ]; then
      echo "bench: $s run $i failed (exit $rc):" >&2
      cat "$out/$s-$i.err" >&2
      failed=1
      [ -f "$out/$s-$i.json" ] || continue
    fi
    reports+=("$out/$s-$i.json")
  done
  [ "${#reports[@]}" -gt 0 ] || continue
  all_reports+=("${reports[@]}")
  echo
  bin/loadtest summarize "${reports[@]}" | tee "$out/$s-summary.txt"
  echo
done
# Relay CPU per listener, mix against tracks (issue 12): one run's CPU
# cannot be split between listeners, so it is each scenario's minus the
# baseline's (same room, no audience), per listener. docs/loadtest.md.
if [[ " $scenarios " == *" $listencost_base "* ]] && [ "$(wc -w <<<"$scenarios")" -gt 1 ]; then
  if ! bin/loadtest listencost -base "$listencost_base" "${all_reports[@]}" | tee "$out/listencost.txt"; then
    echo "bench: listencost failed" >&2
    failed=1
  fi
  echo
fi
echo "bench: reports in $out (JSON, HTML, summaries, relay logs)"
exit "$failed"
