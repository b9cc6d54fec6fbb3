#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs docker.io and starts dockerd when run as
# root on a machine without them; otherwise says in one line what to do.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-docker: the Docker engine is not reachable; start it (e.g. 'sudo systemctl start docker') or run as root" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd ..."
  setsid nohup dockerd >/tmp/codebox-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      exit 0
    fi
    sleep 0.5
  done
  echo "ensure-docker: dockerd did not answer within 60 s; see /tmp/codebox-dockerd.log" >&2
  exit 1
fi
