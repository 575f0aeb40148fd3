#!/usr/bin/env bash
# Make this machine able to run bustap's tests and demo: Debian packages when
# missing, a virtualenv with the package and its extras, the local services.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # the tests need every one of these servers: none is skipped when missing
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
    || { echo "setup: could not install ${need[*]}" >&2; exit 1; }
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.bustap-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import bustap, nats, duckdb, psycopg, aio_pika, pytest" 
  touch "$stamp"
fi

# MQTT brokers other than Mosquitto for the interoperability tests, each in a
# place of its own (tests/fixtures/mqtt_brokers.py).
if [ ! -x "$VENV/amqtt/bin/amqtt" ]; then
  { "$PYTHON" -m venv "$VENV/amqtt" && "$VENV/amqtt/bin/pip" install -q "amqtt>=0.12.1"; } 2>&1 \
    | grep -v "^WARNING: Location" || true
  [ -x "$VENV/amqtt/bin/amqtt" ] || { echo "setup: could not install amqtt" >&2; exit 1; }
fi
if [ ! -d "$VENV/aedes/node_modules/aedes" ]; then
  mkdir -p "$VENV/aedes"
  npm install --prefix "$VENV/aedes" --no-audit --no-fund --silent "aedes@^1.2.0" >/dev/null 2>&1 \
    || { echo "setup: could not install aedes" >&2; exit 1; }
fi

# Services the end-to-end tests share (brokers with special configs are
# started by the tests themselves on free ports).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! port_open 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
  rabbitmq-server -detached || true
  for _ in $(seq 30); do port_open 5672 && break; sleep 1; done
fi
if ! port_open 1883 && [ -x /usr/sbin/mosquitto ] && [ -f /etc/mosquitto/mosquitto.conf ]; then
  /usr/sbin/mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
if ! port_open 4222 && [ -x /usr/sbin/nats-server ]; then
  mkdir -p /tmp/bustap-nats-js
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /tmp/bustap-nats-js || true
fi
exit 0
