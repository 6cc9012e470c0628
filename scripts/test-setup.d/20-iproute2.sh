# Sourced by scripts/test.sh (bash, set -euo pipefail): the access tests
# (test/e2e/access.test.ts) reach turnout from a network namespace of their
# own over a veth pair, which needs `ip` from iproute2 (and root, as the
# tests run here). Installs it from Debian's packages on a fresh machine.

_turnout_ip_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi
}

if ! command -v ip >/dev/null 2>&1; then
  echo "turnout: iproute2 is missing; installing it from Debian's packages" >&2
  _turnout_ip_sudo apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive _turnout_ip_sudo apt-get install -y -qq iproute2 >&2 ||
    echo "turnout: could not install iproute2; the access tests will fail" >&2
fi
