#!/usr/bin/env bash
# Project-owned PostgreSQL, Redis and RabbitMQ on loopback, for the tests and the compose
# profile run as host processes, and moto's server standing in for SQS, DynamoDB, S3 and
# Secrets Manager (the AWS profile's tests). Installs Debian's packages and moto (PyPI)
# when missing.
#   scripts/services.sh up      start whatever is not running (idempotent)
#   scripts/services.sh down    stop them
#   scripts/services.sh env     print the URLs as shell exports
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
base="${CODEBOX_SERVICES_DIR:-/tmp/codebox-services}"
pg_port="${CODEBOX_PG_PORT:-55432}"
redis_port="${CODEBOX_REDIS_PORT:-56379}"
amqp_port="${CODEBOX_AMQP_PORT:-55672}"
moto_port="${CODEBOX_MOTO_PORT:-55500}"
moto_version="moto[server]>=5.1,<6"
rabbit_node="codebox@localhost"

urls() {
  echo "export CODEBOX_TEST_POSTGRES_URL=postgres://codebox@127.0.0.1:${pg_port}/codebox"
  echo "export CODEBOX_TEST_REDIS_URL=redis://127.0.0.1:${redis_port}"
  echo "export CODEBOX_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:${amqp_port}/%2f"
  echo "export CODEBOX_TEST_AWS_ENDPOINT_URL=http://127.0.0.1:${moto_port}"
}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "services: $1 is missing; install it with 'sudo apt-get install $1' (or run as root)" >&2
    exit 1
  fi
}

install() {
  local missing=()
  for pkg in postgresql redis-server rabbitmq-server docker-compose; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    need_root "${missing[*]}"
    echo "services: installing ${missing[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1; }

as_user() { # user, command...
  local user="$1"; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

up_postgres() {
  local bin; bin="$(pg_bin)"
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then return; fi
  local dir="$base/postgres"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_user postgres "$bin/initdb" -D "$dir/data" -A trust -U codebox >/dev/null
  fi
  as_user postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
    -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U codebox codebox 2>/dev/null || true
  echo "services: postgres on 127.0.0.1:$pg_port"
}

up_redis() {
  if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then return; fi
  mkdir -p "$base/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --dir "$base/redis" \
    --save "" --appendonly no --pidfile "$base/redis/redis.pid" --logfile "$base/redis/log" >/dev/null
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "services: redis on 127.0.0.1:$redis_port"
}

rabbit_env() {
  export RABBITMQ_NODENAME="$rabbit_node" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$amqp_port" RABBITMQ_DIST_PORT=$((amqp_port + 1000)) \
    RABBITMQ_MNESIA_BASE="$base/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$base/rabbitmq/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/rabbitmq/enabled_plugins" \
    RABBITMQ_PID_FILE="$base/rabbitmq/pid" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$base/rabbitmq/advanced.config"
}

# The broker's settings the stack relies on (deploy/rabbitmq/advanced.config), and the test
# broker's own, read back.
rabbit_configured() {
  [ "$(rabbitmqctl -q -n "$rabbit_node" eval \
    'application:get_env(rabbit, dead_letter_worker_publisher_confirm_timeout).' 2>/dev/null)" = "{ok,5000}" ] &&
  [ "$(rabbitmqctl -q -n "$rabbit_node" eval \
    'application:get_env(ra, wal_sync_method).' 2>/dev/null)" = "{ok,none}" ]
}

up_rabbitmq() {
  rabbit_env
  if rabbitmqctl -q -n "$rabbit_node" status >/dev/null 2>&1; then
    # Started by an older script without the stack's settings: again, with them.
    if rabbit_configured; then return; fi
    rabbitmqctl -q -n "$rabbit_node" stop >/dev/null 2>&1 || true
  fi
  mkdir -p "$base/rabbitmq/mnesia" "$base/rabbitmq/log"
  # The stack's settings, and like this PostgreSQL (`fsync=off`) and Redis (no persistence)
  # a throwaway broker: the quorum queues' Raft log is written without `fsync` (a stopped
  # or killed broker still finds it; a machine that loses power does not). A deployment
  # keeps the default (deploy/rabbitmq/advanced.config).
  sed '$ s/\]\.$/, {ra, [{wal_sync_method, none}]}]./' "$root/deploy/rabbitmq/advanced.config" \
    > "$base/rabbitmq/advanced.config"
  [ -f "$base/rabbitmq/enabled_plugins" ] || echo "[]." > "$base/rabbitmq/enabled_plugins"
  [ "$(id -u)" -eq 0 ] && chown -R rabbitmq:rabbitmq "$base/rabbitmq"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  # The node takes a few seconds to answer at all, then to finish booting.
  local up=0
  for _ in $(seq 1 90); do
    if rabbitmqctl -q -n "$rabbit_node" ping >/dev/null 2>&1; then up=1; break; fi
    sleep 1
  done
  if [ "$up" = 0 ] || ! timeout 60 rabbitmqctl -q -n "$rabbit_node" await_startup >/dev/null 2>&1; then
    echo "services: rabbitmq did not start; see $base/rabbitmq/log" >&2
    exit 1
  fi
  if ! rabbit_configured; then
    echo "services: rabbitmq did not take deploy/rabbitmq/advanced.config" >&2
    exit 1
  fi
  echo "services: rabbitmq on 127.0.0.1:$amqp_port"
}

moto_up() { curl -sf -o /dev/null "http://127.0.0.1:$moto_port/moto-api/data.json"; }

up_moto() {
  if moto_up; then return; fi
  if ! python3 -c "import moto.server, flask_cors" >/dev/null 2>&1; then
    echo "services: installing $moto_version (PyPI) ..."
    python3 -m pip install --quiet --disable-pip-version-check "$moto_version"
  fi
  mkdir -p "$base/moto"
  setsid python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$base/moto/log" 2>&1 < /dev/null &
  echo $! > "$base/moto/pid"
  for _ in $(seq 1 100); do moto_up && break; sleep 0.1; done
  if ! moto_up; then echo "services: moto did not start; see $base/moto/log" >&2; exit 1; fi
  echo "services: moto (SQS, DynamoDB, S3, Secrets Manager) on 127.0.0.1:$moto_port"
}

down() {
  [ -f "$base/moto/pid" ] && kill "$(cat "$base/moto/pid")" 2>/dev/null || true
  local bin; bin="$(pg_bin 2>/dev/null || true)"
  [ -n "$bin" ] && [ -d "$base/postgres/data" ] && as_user postgres "$bin/pg_ctl" -D "$base/postgres/data" -m fast stop >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rabbit_env; rabbitmqctl -q -n "$rabbit_node" stop >/dev/null 2>&1 || true
}

case "${1:-up}" in
  up) install; mkdir -p "$base"; [ "$(id -u)" -eq 0 ] && chmod 755 "$base"; up_postgres; up_redis; up_rabbitmq; up_moto ;;
  down) down ;;
  env) urls ;;
  # Stop one service (fault tests); `up` brings it back: postgres | redis | rabbitmq
  stop-*) svc="${1#stop-}"; case "$svc" in
      postgres) as_user postgres "$(pg_bin)/pg_ctl" -D "$base/postgres/data" -m fast -w stop >/dev/null ;;
      redis) redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true ;;
      rabbitmq) rabbit_env; rabbitmqctl -q -n "$rabbit_node" stop >/dev/null 2>&1 || true ;;
      moto) [ -f "$base/moto/pid" ] && kill "$(cat "$base/moto/pid")" 2>/dev/null || true ;;
      *) echo "services: unknown service $svc" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: scripts/services.sh up|down|env|stop-<service>" >&2; exit 2 ;;
esac
