#!/usr/bin/env bash
# Writes target/lambda.env for `make lambda-watch`: deploy/lambda.env (no secrets in it)
# plus fresh random secrets, unless it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/lambda.env
[ -f "$out" ] && exit 0
mkdir -p target
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
{ cat deploy/lambda.env; echo "JWT_SECRET=$(rand 32)"; echo "WORKER_TOKEN=$(rand 24)"; } > "$out"
echo "make-lambda-env: wrote $out with fresh secrets"
