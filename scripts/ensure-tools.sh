#!/usr/bin/env bash
# Python tools, each pinned. With no argument, what the tests use: cfn-lint, schemathesis,
# the judge0 SDK, the AWS SAM CLI and Playwright with Debian's chromium.
# With `lambda` or `sam`, only what building or deploying the functions needs, each in a
# virtualenv of its own (no system pip: Debian 12, Ubuntu 24.04 and Homebrew Pythons refuse
# it), and the directory of its programs printed on stdout for the Makefile's PATH:
#   lambda  cargo-lambda with zig (pip's ziglang), so `cargo lambda build` cross-builds
#           arm64 or x86_64 from any host (make lambda-build, make lambda-watch)
#   sam     the AWS SAM CLI (make deploy)
set -euo pipefail
# Where the virtualenvs live: user-writable by default, so a laptop needs no root.
TOOLS="${CODEBOX_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/codebox-tools}"
CARGO_LAMBDA_VERSION=1.9.2
SAM_VERSION=1.170.0

# venv DIR PACKAGE==VERSION: the package in a virtualenv of its own, unless it is there.
venv() {
  local home="$1" want="$2"
  local have
  have="$("$home/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
    "${want%%==*}" 2>/dev/null || true)"
  if [ "$have" != "${want#*==}" ]; then
    echo "ensure-tools: installing $want into $home ..." >&2
    mkdir -p "$(dirname "$home")"
    python3 -m venv "$home" >&2
    "$home/bin/pip" install --quiet --disable-pip-version-check "$want" >&2
  fi
}

case "${1:-}" in
  lambda)
    venv "$TOOLS/lambda" "cargo-lambda==$CARGO_LAMBDA_VERSION"
    echo "$TOOLS/lambda/bin"
    exit 0 ;;
  sam)
    venv "$TOOLS/sam" "aws-sam-cli==$SAM_VERSION"
    echo "$TOOLS/sam/bin"
    exit 0 ;;
esac
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
# The AWS SAM CLI, in a virtualenv of its own (its pins must not move the tools above):
# `sam validate --lint` in tests/tests/infra.rs.
sam_bin="$(bash "$0" sam)"
if ! command -v sam >/dev/null 2>&1 && [ -w /usr/local/bin ]; then
  ln -sf "$sam_bin/sam" /usr/local/bin/sam
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
