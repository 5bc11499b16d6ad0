# Building, pinning, starting and stopping the relay under test, for
# bench.sh and soak.sh (sourced). The caller sets: me (its name, for
# messages), http, udp, relay_flags, ports_hint (which settings choose the
# ports) and die.

relay_pid=
pin_relay=() pin_lg=()

# pin_cpus [NOTE]: the relay on CPU 0, the load generator on CPU 1, or a
# warning (with NOTE appended) where taskset or a second CPU is missing.
# BENCH_PIN=0 pins neither: the relay then runs on every core (GOMAXPROCS
# = the CPU count), as the fanout2000 scenario needs.
pin_cpus() {
  if [ "${BENCH_PIN:-1}" = 0 ]; then
    echo "$me: BENCH_PIN=0: the relay and the load generator are not pinned and share every CPU" >&2
    return
  fi
  if command -v taskset >/dev/null && [ "$(nproc --all)" -ge 2 ]; then
    pin_relay=(taskset -c 0) pin_lg=(taskset -c 1)
  else
    echo "$me: WARNING: taskset or a second CPU is missing; running unpinned${1:+, $1}" >&2
  fi
}

# build_bins: bin/relay and bin/loadtest. GODEBUG given to the script is
# meant for the relay (e.g. gctrace=1); the compiler would print under it
# too, and Go's build cache would replay that output on every later build.
build_bins() {
  echo "$me: building bin/relay and bin/loadtest"
  env -u GODEBUG scripts/build-relay.sh bin/relay
  env -u GODEBUG go build -tags nolibopusfile -o bin/loadtest ./cmd/loadtest
}

# start_relay LOG: starts bin/relay and waits (10 s at most) until it serves.
start_relay() {
  # Every synthetic peer dials from 127.0.0.1: the per-address limits,
  # meant for the internet, are off unless the caller sets relay_limits
  # (flood.sh sets it empty: the relay's defaults).
  : >"$1" # exists before the wait below greps it, however late the relay starts
  # shellcheck disable=SC2086
  "${pin_relay[@]}" bin/relay -http "$http" -udp "$udp" -loopback -log-level info \
    ${relay_limits--max-pending-per-ip -1 -join-rate-per-ip -1 -max-joined-per-ip -1 -max-tcp-per-ip -1} $relay_flags 2>"$1" &
  relay_pid=$!
  for _ in $(seq 100); do
    grep -q "relay serving" "$1" && return 0
    kill -0 "$relay_pid" 2>/dev/null || { cat "$1" >&2; die "the relay exited at start (is $http or $udp in use? set $ports_hint)"; }
    sleep 0.1
  done
  die "the relay did not start serving within 10 s; see $1"
}

# stop_relay: SIGTERM, then SIGKILL after 10 s; returns the relay's exit status.
stop_relay() {
  [ -n "$relay_pid" ] || return 0
  if kill -0 "$relay_pid" 2>/dev/null; then
    kill -TERM "$relay_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$relay_pid" 2>/dev/null; then
      echo "$me: the relay did not stop within 10 s of SIGTERM; killing it" >&2
      kill -KILL "$relay_pid" 2>/dev/null || true
    fi
  fi
  local rc=0
  wait "$relay_pid" 2>/dev/null || rc=$?
  relay_pid=
  return "$rc"
}
