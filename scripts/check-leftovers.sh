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
# A dead container whose removal the engine gave up on (Docker 20.10 under load:
# "unable to remove filesystem"): the product's reaper removes these in a running worker,
# and none runs now, so do what it does.
for id in $(docker ps -aq --filter label=codebox.role); do
  if docker inspect --format '{{.State.Dead}} {{.State.Error}}' "$id" 2>/dev/null |
    grep -q '^true .*unable to remove'; then
    echo "check-leftovers: removing $id, whose removal the engine had failed" >&2
    docker rm -f "$id" >/dev/null || true
  fi
done
left=$(docker ps -aq --filter label=codebox.role | wc -l)
if [ "$left" -ne 0 ]; then
  echo "check-leftovers: $left sandbox container(s) left behind:" >&2
  docker ps -a --filter label=codebox.role >&2
  exit 1
fi
# The runc engine's containers end with their worker too (the agent sees its stdin close,
# and runc or crun deletes a container whose first process ended).
run_dir=${CODEBOX_RUN_DIR:-/run/codebox}
for runtime in runc crun; do
  root=$run_dir/$runtime
  [ -d "$root" ] || continue
  for _ in $(seq 1 20); do
    [ "$($runtime --root "$root" list -q | wc -l)" -eq 0 ] && break
    sleep 0.5
  done
  if [ "$($runtime --root "$root" list -q | wc -l)" -ne 0 ]; then
    echo "check-leftovers: $runtime sandboxes left behind:" >&2
    $runtime --root "$root" list >&2
    exit 1
  fi
done
# A suite's own run directory (make test gives each its own) goes with it.
if [ "$run_dir" != /run/codebox ] && [ -d "$run_dir" ]; then
  rm -rf "$run_dir"
fi
echo "check-leftovers: no sandbox container left behind"
