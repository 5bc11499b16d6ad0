#!/usr/bin/env bash
# Runs every test of the relay, as CI does: vet, the whole suite with the
# race detector, a short run of every benchmark, and the static build of the
# relay binary the Dockerfile ships.
#
# Needs Go (1.26+, on PATH or at /usr/local/go), gcc, pkg-config and
# libopus-dev (the tests encode real Opus), chromium for the page's
# browser tests, and iproute2 and nftables for the blocked-UDP test (a
# network namespace; it runs as root only). Missing Debian packages are
# installed when running as root (or with sudo), else named.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_debs gcc pkg-config libopus-dev chromium iproute2 nftables
need_go

# hraban/opus also links libopusfile unless told not to.
tags=nolibopusfile
set -x
go vet -tags "$tags" ./...
go test -race -tags "$tags" -count=1 -timeout 15m ./...
go test -tags "$tags" -run '^$' -bench . -benchtime 100x ./...
scripts/build-relay.sh bin/relay
