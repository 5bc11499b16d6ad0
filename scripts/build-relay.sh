#!/usr/bin/env bash
# Builds the relay binary exactly as the Dockerfile does: static, no cgo.
# Usage: scripts/build-relay.sh [OUTPUT]   (default bin/relay)
set -euo pipefail
out=${1:-bin/relay}
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out" ./cmd/relay
