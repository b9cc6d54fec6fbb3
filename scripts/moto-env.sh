#!/usr/bin/env bash
# Provisions codebox's AWS resources on moto (scripts/services.sh up) with the LocalStack
# init hook and prints the environment of a gateway, Lambda function or worker using them
# (BACKEND=aws, QUEUE=sqs), one KEY=VALUE per line: `make lambda-watch-aws` uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
endpoint="${AWS_ENDPOINT_URL:-http://127.0.0.1:${CODEBOX_MOTO_PORT:-55500}}"
AWS_ENDPOINT_URL="$endpoint" CODEBOX_PREFIX="${CODEBOX_PREFIX:-codebox-dev}" \
  python3 localstack/init/ready.d/codebox.py
cat <<VARS
BACKEND=aws
QUEUE=sqs
AWS_ENDPOINT_URL=$endpoint
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_EC2_METADATA_DISABLED=true
BCRYPT_COST=4
VARS
