#!/usr/bin/env bash
# Runs every test of the relay, as CI does: vet, the whole suite with the
# race detector, a short run of every benchmark, and the static build of the
# relay binary the Dockerfile ships.
#
# Needs Go (1.26+, on PATH or at /usr/local/go), gcc, pkg-config and
# libopus-dev (the tests encode real Opus), and chromium for the page's
# browser test. Missing Debian packages are
# installed when running as root (or with sudo), else named.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

need=()
for pkg in gcc pkg-config libopus-dev chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing packages: ${need[*]}; install them with: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
command -v go >/dev/null || { echo "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/" >&2; exit 1; }

# hraban/opus also links libopusfile unless told not to.
tags=nolibopusfile
set -x
go vet -tags "$tags" ./...
go test -race -tags "$tags" -count=1 -timeout 15m ./...
go test -tags "$tags" -run '^$' -bench . -benchtime 100x ./...
scripts/build-relay.sh bin/relay
