#!/usr/bin/env bash
# Fails when a sandbox container outlived the test suite.
set -euo pipefail
left=$(docker ps -aq --filter label=codebox.role=sandbox | wc -l)
if [ "$left" -ne 0 ]; then
  echo "check-leftovers: $left sandbox container(s) left behind:" >&2
  docker ps -a --filter label=codebox.role=sandbox >&2
  exit 1
fi
echo "check-leftovers: no sandbox container left behind"
