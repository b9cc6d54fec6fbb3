#!/usr/bin/env bash
# Python tools the tests use: cfn-lint (validates infra/template.yaml offline).
set -euo pipefail
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "ensure-tools: installing cfn-lint ..."
  python3 -m pip install --quiet --disable-pip-version-check cfn-lint
fi
