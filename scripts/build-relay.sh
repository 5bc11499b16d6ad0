#!/usr/bin/env bash
# Builds the relay binary exactly as the Dockerfile does: one static file
# that runs on a bare image (distroless/static), with libopus linked in
# statically for the audience mix (cgo; needs gcc, pkg-config and
# libopus-dev, whose libopus.a Debian ships).
# Usage: scripts/build-relay.sh [OUTPUT]   (default bin/relay)
#
# Without cgo (no C toolchain at hand) the relay still builds, without the
# mix (it says so at start-up and serves separate tracks):
#   CGO_ENABLED=0 go build -tags nolibopusfile -trimpath -ldflags='-s -w' -o bin/relay ./cmd/relay
set -euo pipefail
out=${1:-bin/relay}
for tool in gcc pkg-config; do
  command -v "$tool" >/dev/null || { echo "build-relay: $tool is missing; install it (apt-get install -y gcc pkg-config libopus-dev)" >&2; exit 1; }
done
pkg-config --exists opus || { echo "build-relay: pkg-config finds no opus; install libopus-dev" >&2; exit 1; }
# netgo, osusergo: Go's own resolver and user lookup, so the static binary
# needs no glibc NSS modules at run time. nolibopusfile: hraban/opus
# without libopusfile (the relay decodes no files). cgo asks pkg-config
# for the shared link (-lopus); a static link also needs what libopus.a
# depends on (-lm), which --static adds at the end of the link line.
static_libs=$(pkg-config --static --libs opus)
CGO_ENABLED=1 go build -trimpath -tags 'nolibopusfile netgo osusergo' \
  -ldflags="-s -w -linkmode external -extldflags '-static $static_libs'" -o "$out" ./cmd/relay
# A dynamic binary would fail on distroless/static at start: refuse it here.
# ldd (libc-bin, always there) must find no dynamic section; file, when
# installed, must say so too.
static=yes
ldd_says=$(ldd "$out" 2>&1 || true) # ldd exits 1 on a static binary
case $ldd_says in *'not a dynamic executable'*) ;; *) static=no ;; esac
if command -v file >/dev/null; then
  case $(file -b "$out") in *'statically linked'*) ;; *) static=no ;; esac
fi
if [ "$static" != yes ]; then
  echo "build-relay: $out is dynamically linked; it would not run on distroless/static:" >&2
  echo "$ldd_says" >&2
  echo "build-relay: check that libopus-dev's libopus.a is installed (pkg-config --static --libs opus)." >&2
  exit 1
fi
