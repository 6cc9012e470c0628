# Sourced by scripts/test.sh (bash, set -euo pipefail): builds the Kafka test
# broker, test/kafka/mock-cluster (librdkafka's mock cluster behind a tiny
# launcher). The tests start and stop it themselves
# (test/integration/kafka/cluster.ts). Exports nothing.

_turnout_kafka_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi
}

_turnout_kafka_setup() {
  local root src bin
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  src="$root/test/kafka/mock-cluster.c"
  bin="$root/test/kafka/mock-cluster"
  if [ ! -f /usr/include/librdkafka/rdkafka_mock.h ]; then
    echo "turnout: librdkafka-dev is missing; installing it from Debian's packages" >&2
    _turnout_kafka_sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive _turnout_kafka_sudo apt-get install -y -qq librdkafka-dev >&2 || {
      echo "turnout: could not install librdkafka-dev; the Kafka tests will fail" >&2
      return 0
    }
  fi
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    echo "turnout: building $bin" >&2
    cc -O2 -Wall -o "$bin" "$src" -lrdkafka >&2 || {
      echo "turnout: could not build the Kafka mock cluster; the Kafka tests will fail" >&2
      return 0
    }
  fi
}

_turnout_kafka_setup
