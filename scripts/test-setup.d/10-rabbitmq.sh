# Sourced by scripts/test.sh (bash, set -euo pipefail): makes sure a RabbitMQ
# broker runs on 127.0.0.1:5672 for the integration tests, installing it from
# Debian's packages on a fresh machine. Fast and idempotent when it runs.

_turnout_rabbit_port_open() {
  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null
}

_turnout_rabbit_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else "$@"; fi
}

_turnout_rabbit_setup() {
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    echo "turnout: RabbitMQ is missing; installing rabbitmq-server from Debian's packages" >&2
    _turnout_rabbit_sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive _turnout_rabbit_sudo apt-get install -y -qq rabbitmq-server >&2 || {
      echo "turnout: could not install rabbitmq-server; the RabbitMQ tests will fail" >&2
      return 0
    }
  fi
  export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
  if ! _turnout_rabbit_port_open; then
    echo "turnout: starting RabbitMQ" >&2
    # The Debian package may have started it as a service already; start it detached otherwise.
    _turnout_rabbit_sudo rabbitmq-server -detached >&2 2>/dev/null || true
    local i
    for i in $(seq 1 60); do
      _turnout_rabbit_port_open && break
      sleep 1
    done
    _turnout_rabbit_sudo rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
  # A node that is up but whose app was stopped (e.g. an interrupted stop_app fault test)
  if ! _turnout_rabbit_port_open; then
    _turnout_rabbit_sudo rabbitmqctl start_app >/dev/null 2>&1 || true
    _turnout_rabbit_sudo rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
  # A memory alarm left by an interrupted alarm test (test/integration/amqp/rabbitmqctl.ts
  # withMemoryAlarm sets the watermark near zero; it lasts until the node restarts).
  if _turnout_rabbit_port_open && _turnout_rabbit_sudo rabbitmqctl eval 'rabbit_alarm:get_alarms().' 2>/dev/null | grep -q memory; then
    echo "turnout: RabbitMQ has a memory alarm; setting the watermark back to 0.4" >&2
    _turnout_rabbit_sudo rabbitmqctl set_vm_memory_high_watermark 0.4 >/dev/null 2>&1 || true
  fi
  # The management API gives the broker-wide unacked count for /v1/queues/{queue}; the tests check it.
  if _turnout_rabbit_port_open && ! grep -qs rabbitmq_management /etc/rabbitmq/enabled_plugins; then
    echo "turnout: enabling RabbitMQ's management plugin" >&2
    _turnout_rabbit_sudo rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
  fi
  if _turnout_rabbit_port_open; then
    echo "turnout: RabbitMQ is running on 127.0.0.1:5672" >&2
  else
    echo "turnout: RabbitMQ did not come up on 127.0.0.1:5672; the RabbitMQ tests will fail" >&2
  fi
}

_turnout_rabbit_setup
export TURNOUT_TEST_AMQP_URL="${TURNOUT_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}"
