#!/usr/bin/env bash
# Runs the relay from source with its page (README's first command):
# installs what the audience mix needs to build (gcc, pkg-config,
# libopus-dev) when missing, then `go run`s cmd/relay with the arguments
# given (e.g. -http :9000; `scripts/run-relay.sh -h` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_debs gcc pkg-config libopus-dev
need_go
# nolibopusfile: hraban/opus without libopusfile (the relay decodes no files).
exec go run -tags nolibopusfile ./cmd/relay "$@"
