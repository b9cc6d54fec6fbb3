#!/usr/bin/env bash
# Python tools: cfn-lint (the tests validate infra/template.yaml offline) and, with the
# argument `lambda`, cargo-lambda (make lambda-build, make lambda-watch).
set -euo pipefail
if [ "${1:-}" = "lambda" ]; then
  if ! command -v cargo-lambda >/dev/null 2>&1; then
    echo "ensure-tools: installing cargo-lambda ..."
    python3 -m pip install --quiet --disable-pip-version-check cargo-lambda
  fi
  exit 0
fi
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "ensure-tools: installing cfn-lint ..."
  python3 -m pip install --quiet --disable-pip-version-check cfn-lint
fi
# schemathesis, pinned: the contract test (scripts/schemathesis.sh) must not change under us.
SCHEMATHESIS_VERSION=4.32.5
if [ "$(schemathesis --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "ensure-tools: installing schemathesis $SCHEMATHESIS_VERSION ..."
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
