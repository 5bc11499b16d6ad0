# Starting and stopping the relay under test, for bench.sh and soak.sh
# (sourced). The caller sets: me (its name, for messages), http, udp,
# relay_flags, pin_relay (an array, maybe empty), ports_hint (which
# settings choose the ports) and die.

relay_pid=

# start_relay LOG: starts bin/relay and waits (10 s at most) until it serves.
start_relay() {
  # shellcheck disable=SC2086
  "${pin_relay[@]}" bin/relay -http "$http" -udp "$udp" -loopback -log-level info $relay_flags 2>"$1" &
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
