# Sourced by scripts/test.sh (bash, set -euo pipefail): makes sure Debian's
# prometheus package (prometheus and promtool) is installed for the rollout
# tests and the alert-rule tests. The system service is not started: every
# test starts its own prometheus on a free loopback port with its own scrape
# configuration and storage directory, and kills it by PID afterwards.

_turnout_prom_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi
}

_turnout_prom_setup() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "turnout: $(prometheus --version 2>&1 | head -1)" >&2
    return 0
  fi
  echo "turnout: prometheus is missing; installing it from Debian's packages (the service stays stopped)" >&2
  # policy-rc.d answering 101 keeps the package's postinst from starting the service.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | _turnout_prom_sudo tee "$policy" >/dev/null && _turnout_prom_sudo chmod +x "$policy" && created=1
  fi
  _turnout_prom_sudo apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive _turnout_prom_sudo apt-get install -y -qq --no-install-recommends prometheus >&2 || \
    echo "turnout: could not install prometheus; the rollout and alert-rule tests will fail" >&2
  if [ "$created" -eq 1 ]; then _turnout_prom_sudo rm -f "$policy"; fi
  # Where systemd runs, the package enables and may start its service anyway: stop it, the tests need none.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    _turnout_prom_sudo systemctl stop prometheus >/dev/null 2>&1 || true
  fi
}

_turnout_prom_setup
