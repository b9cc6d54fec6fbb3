#!/usr/bin/env bash
# Python tools: cfn-lint and the SAM CLI (the tests validate infra/template.yaml offline)
# and, with the argument `lambda`, cargo-lambda (make lambda-build, make lambda-watch).
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
# The official Judge0 Python SDK, pinned: tests/judge0/sdk_check.py runs it unchanged
# against the /judge0 API.
JUDGE0_SDK_VERSION=0.0.8
if [ "$(python3 -c 'import judge0.version as v; print(v.__version__)' 2>/dev/null)" != "$JUDGE0_SDK_VERSION" ]; then
  echo "ensure-tools: installing the judge0 SDK $JUDGE0_SDK_VERSION ..."
  python3 -m pip install --quiet --disable-pip-version-check "judge0==$JUDGE0_SDK_VERSION"
fi
# The AWS SAM CLI, pinned, in a virtualenv of its own (its pins must not move the tools
# above): `sam validate --lint` in tests/tests/infra.rs, `make deploy`.
SAM_VERSION=1.170.0
SAM_HOME="${CODEBOX_TOOLS_DIR:-/opt/codebox-tools}/sam"
if [ "$("$SAM_HOME/bin/sam" --version 2>/dev/null | awk '{print $NF}')" != "$SAM_VERSION" ]; then
  echo "ensure-tools: installing the AWS SAM CLI $SAM_VERSION into $SAM_HOME ..."
  mkdir -p "$(dirname "$SAM_HOME")"
  python3 -m venv "$SAM_HOME"
  "$SAM_HOME/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_VERSION"
fi
if ! command -v sam >/dev/null 2>&1 && [ -w /usr/local/bin ]; then
  ln -sf "$SAM_HOME/bin/sam" /usr/local/bin/sam
fi
# The web playground's browser test (tests/tests/playground.rs): Playwright from PyPI,
# pinned, driving Debian's chromium (no browser download: the test passes
# executable_path=/usr/bin/chromium).
PLAYWRIGHT_VERSION=1.65.2
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]; then
  echo "ensure-tools: installing playwright $PLAYWRIGHT_VERSION ..."
  python3 -m pip install --quiet --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-tools: installing Debian's chromium ..."
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-tools: chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
