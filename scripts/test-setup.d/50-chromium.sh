# Sourced by scripts/test.sh (bash, set -euo pipefail): the status page tests
# (test/page/) drive Debian's chromium with playwright-core. Installs it from
# Debian's packages on a fresh machine; fast and idempotent when it is there.

_turnout_chromium_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi
}

if [ ! -x /usr/bin/chromium ]; then
  echo "turnout: chromium is missing; installing it from Debian's packages (the status page tests need it)" >&2
  _turnout_chromium_sudo apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive _turnout_chromium_sudo apt-get install -y -qq --no-install-recommends chromium >&2 || {
    echo "turnout: could not install chromium; the status page tests will fail" >&2
  }
fi
