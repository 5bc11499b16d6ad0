# Sourced by scripts/run-relay.sh and scripts/test.sh: installs the Debian
# packages named in "$@" that are missing, as root (or with sudo), else
# names them and fails. Also puts /usr/local/go/bin on PATH and checks Go.
export PATH="$PATH:/usr/local/go/bin"
need_debs() {
  local need=() pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  ((${#need[@]})) || return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing packages: ${need[*]}; install them with: apt-get install -y ${need[*]}" >&2
    return 1
  fi
}
need_go() {
  command -v go >/dev/null || { echo "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/" >&2; return 1; }
}
