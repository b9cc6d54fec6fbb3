#!/usr/bin/env bash
# Writes .env for docker compose with fresh random secrets, unless it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] && exit 0
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
sed -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(rand 16)/" \
    -e "s/^JWT_SECRET=.*/JWT_SECRET=$(rand 32)/" \
    -e "s/^WORKER_TOKEN=.*/WORKER_TOKEN=$(rand 24)/" .env.example > .env
echo "make-env: wrote .env with fresh secrets"
