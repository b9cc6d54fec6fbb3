#!/usr/bin/env bash
# Fails when a sandbox container outlived the test suite.
set -euo pipefail
# Warm sandboxes of a test process that just ended remove themselves (their agent sees
# the worker's connection close); give the engine a few seconds for that.
for _ in $(seq 1 20); do
  left=$(docker ps -aq --filter label=codebox.role | wc -l)
  [ "$left" -eq 0 ] && break
  sleep 0.5
done
if [ "$left" -ne 0 ]; then
  echo "check-leftovers: $left sandbox container(s) left behind:" >&2
  docker ps -a --filter label=codebox.role >&2
  exit 1
fi
echo "check-leftovers: no sandbox container left behind"
