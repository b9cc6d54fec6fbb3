#!/usr/bin/env bash
# `make bench-compose`: the compose profile as host processes (release gateway and
# WORKERS workers on the project's PostgreSQL, Redis and RabbitMQ), measured by the same
# load generator as the embedded stack. Figures in target/bench/compose.json. Its clients
# all register and submit from 127.0.0.1, so the per-address and per-user request limits
# are raised (the running cap, which shapes the queue, is not). The stack gets a database of
# its own, as a deployment has: other stacks' leftovers in the shared one (a conformance
# suite's outbox) would reach its sweeper, its queue and its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${WORKERS:-2}"
bash scripts/services.sh up
eval "$(bash scripts/services.sh env)"
cargo build --release --locked -p codebox-functions --bin gateway -p codebox-worker --bin codebox-worker -p codebox-tests --bin bench
id=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
database="codebox_bench_$id"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  psql -q "$CODEBOX_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database" || true
  rm -rf "/tmp/codebox-bench-$id"
}
trap cleanup EXIT
psql -q "$CODEBOX_TEST_POSTGRES_URL" -c "CREATE DATABASE $database"
export BACKEND=local DATABASE_URL="${CODEBOX_TEST_POSTGRES_URL%/*}/$database" REDIS_URL="$CODEBOX_TEST_REDIS_URL" \
  AMQP_URL="$CODEBOX_TEST_AMQP_URL" TASK_QUEUE="codebox-bench-$id" BLOB_DIR="/tmp/codebox-bench-$id" \
  JWT_SECRET="bench-secret-$id-$id-$id" WORKER_TOKEN="bench-worker-$id" \
  TASK_QUEUE_EXPIRES_SECS=600 GATEWAY_ADDR="127.0.0.1:$port" API_URL="http://127.0.0.1:$port" RUST_LOG=warn \
  LIMIT_AUTH_PER_MINUTE=1000000 LIMIT_SUBMIT_PER_MINUTE=1000000 LIMIT_ACTIVE_TASKS=1000000
target/release/gateway & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
# The first worker's metrics where the bench reads which engine its sandboxes run on.
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for i in $(seq 1 "$workers"); do
  addr="127.0.0.1:0"; [ "$i" = 1 ] && addr="127.0.0.1:$metrics_port"
  WORKER_METRICS_ADDR="$addr" target/release/codebox-worker & pids+=($!)
done
sleep 2
target/release/bench --url "http://127.0.0.1:$port" --worker-metrics "http://127.0.0.1:$metrics_port/metrics" \
  --out target/bench/compose.json "$@"
